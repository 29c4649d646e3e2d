// Store-and-forward: the one outbox dispatcher every outbound leg (procedure status to the RIS, images
// to the PACS) is a destination of, its retry policy from the config, and the queue routes of the
// control API (edgectl queue …; later the admin page).
import type { AuditParticipant } from '../core/audit.ts';
import type { Caller, ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import { type BackoffPolicy, type DestinationOptions, OutboxDispatcher } from '../core/outbox-dispatcher.ts';
import type { Service } from '../core/service.ts';
import type { EdgeConfig } from '../config/index.ts';
import type { FlowContext } from './flow-context.ts';

export const RIS_DESTINATION = 'ris';
export const PACS_DESTINATION = 'pacs';

export function backoffPolicy(o: EdgeConfig['outbox']): BackoffPolicy {
  return { initialDelayMs: o.initialDelayMs, maxDelayMs: o.maxDelayMs, multiplier: o.backoffMultiplier, jitter: o.jitterPercent / 100 };
}

/** What every destination takes from `outbox`: its timeout, retry policy, down threshold and dead-letter bound. */
export function destinationPolicy(
  o: EdgeConfig['outbox'],
): Pick<DestinationOptions, 'deliveryTimeoutMs' | 'backoff' | 'downAfterFailures' | 'refusalBound'> {
  return {
    deliveryTimeoutMs: o.deliveryTimeoutMs,
    backoff: backoffPolicy(o),
    downAfterFailures: o.downAfterFailures,
    refusalBound: { maxAttempts: o.deadLetterAfterRefusals, maxAgeMs: o.deadLetterAfterRefusedMs },
  };
}

export interface Outbox extends Service {
  readonly dispatcher: OutboxDispatcher;
  readonly routes: readonly ControlRoute[];
}

export function outbox(ctx: FlowContext, destinations: readonly DestinationOptions[]): Outbox {
  const dispatcher = new OutboxDispatcher({
    repository: ctx.store.outbox,
    destinations,
    audit: ctx.audit,
    logger: ctx.logger.child({ component: 'outbox' }),
    system: ctx.box,
  });
  return {
    name: 'outbox',
    dispatcher,
    routes: queueRoutes(dispatcher),
    start: async () => dispatcher.start(),
    // After the listeners (no new MPPS), before the store closes (settles its last batch).
    stop: (deadlineMs) => dispatcher.stop(deadlineMs),
    health: () => {
      const down = dispatcher
        .status()
        .filter((d) => d.state !== 'up')
        .map((d) => `${d.destination} ${d.state}`);
      return down.length === 0 ? { status: 'ok' } : { status: 'degraded', detail: down.join(', ') };
    },
  };
}

function queueRoutes(d: OutboxDispatcher): ControlRoute[] {
  // On the admin listener the signed-in user acted; on the console, the OS user edgectl names.
  const actorOf = (body: unknown, caller?: Caller): AuditParticipant => {
    if (caller?.kind === 'user')
      return { kind: 'user', id: caller.username, ...(caller.address === undefined ? {} : { address: caller.address }), requestor: true };
    const user =
      typeof body === 'object' && body !== null && typeof (body as { user?: unknown }).user === 'string'
        ? (body as { user: string }).user.slice(0, 64)
        : 'local-console';
    return { kind: 'user', id: user, requestor: true };
  };
  const field = (body: unknown, name: string): string => {
    const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
    if (typeof v !== 'string' || v === '' || v.length > 64) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `"${name}" is required`);
    return v;
  };
  const limit = (q: URLSearchParams): number => Math.min(10_000, Math.max(1, Number(q.get('limit') ?? 1000) || 1000));
  return [
    {
      method: 'GET',
      path: '/v1/queues',
      permission: 'viewer',
      handle: () => ({
        status: 200,
        body: {
          // The oldest entry of each destination: its age, and when the next try is due.
          destinations: d.status().map((s) => {
            const oldest = s.queued === 0 ? undefined : d.list(s.destination, 1)[0];
            return oldest === undefined ? s : { ...s, oldestEnqueuedAt: oldest.enqueuedAt, nextAttemptAt: oldest.nextAttemptAt };
          }),
        },
      }),
    },
    {
      method: 'GET',
      path: '/v1/queues/entries',
      permission: 'viewer',
      handle: (req) => {
        const destination = req.query.get('destination') ?? RIS_DESTINATION;
        return { status: 200, body: { destination, entries: d.list(destination, limit(req.query)) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/queues/dead',
      permission: 'viewer',
      handle: (req) => ({ status: 200, body: { deadLetters: d.deadLetters(req.query.get('destination') ?? undefined, limit(req.query)) } }),
    },
    {
      method: 'POST',
      path: '/v1/queues/retry-now',
      permission: 'operator',
      handle: async (req) => ({
        status: 200,
        body: { due: await d.retryNow(field(req.body, 'destination'), actorOf(req.body, req.caller)) },
      }),
    },
    {
      method: 'POST',
      path: '/v1/queues/retry-one',
      permission: 'operator',
      handle: async (req) => {
        await d.retryOne(field(req.body, 'id'), actorOf(req.body, req.caller));
        return { status: 200, body: { requeued: 1 } };
      },
    },
    {
      method: 'POST',
      path: '/v1/queues/retry-all',
      permission: 'operator',
      handle: async (req) => ({
        status: 200,
        body: { requeued: await d.retryAll(field(req.body, 'destination'), actorOf(req.body, req.caller)) },
      }),
    },
    {
      method: 'POST',
      path: '/v1/queues/discard',
      permission: 'operator',
      stepUp: true,
      handle: async (req) => {
        const why = (req.body as { reason?: unknown } | undefined)?.reason;
        await d.discard(
          field(req.body, 'id'),
          actorOf(req.body, req.caller),
          typeof why === 'string' && why.trim() !== '' ? why.trim().slice(0, 200) : undefined,
        );
        return { status: 200, body: { discarded: 1 } };
      },
    },
  ];
}
