// The upstream worklist cache: on its interval (and at once on `edgectl worklist import`) the box asks
// the RIS's own Modality Worklist SCP for its items and merges the answer under the HL7-fed orders, so a
// RIS that cannot send HL7 during a downtime still gets its schedule onto the modalities. Only a complete
// answer may remove anything, and items leave only after `removeAfterMs`. The cache's age is a health
// value; at twice the interval the box raises an alarm and keeps serving what it holds.
import type { AuditParticipant } from '../core/audit.ts';
import { auditEvent, appActivity } from '../core/audit-event-builders.ts';
import { type ControlRoute, actorOf } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Service, ServiceHealth } from '../core/service.ts';
import {
  type PulledItem,
  type PulledItemProblem,
  type UpstreamMergeCounts,
  isPulledItemProblem,
  planUpstreamMerge,
  pulledItemOf,
  upstreamWorklistQuery,
} from '../core/upstream-worklist.ts';
import type { MwlUpstreamConfig } from '../config/index.ts';
import { findUpstreamWorklist, type WorklistFindAnswer } from '../dicom/find-scu.ts';
import { clientTls } from '../security/tls-material.ts';
import type { FlowContext } from './flow-context.ts';

/** The largest single identifier accepted from the provider. */
const MAX_IDENTIFIER_BYTES = 1024 * 1024;

export interface UpstreamImportResult {
  readonly dryRun: boolean;
  readonly complete: boolean;
  readonly incompleteBecause?: string;
  readonly answered: number;
  readonly counts: UpstreamMergeCounts;
  /** Items left out, with the attribute at fault (accession and step id for the operator, never logged). */
  readonly skipped: readonly PulledItemProblem[];
}

export interface UpstreamWorklistStatus {
  readonly configured: boolean;
  readonly provider?: string;
  readonly intervalMs?: number;
  /** When the last complete answer was merged (ms since epoch). */
  readonly lastCompleteAt?: number;
  /** Age of the cache: since the last complete answer, or since start when there has been none. */
  readonly cacheAgeMs?: number;
  readonly stale: boolean;
  readonly lastAttemptAt?: number;
  readonly lastError?: { readonly code: string; readonly message: string };
  readonly lastResult?: UpstreamImportResult;
}

export interface UpstreamWorklist extends Service {
  readonly routes: readonly ControlRoute[];
  status(): UpstreamWorklistStatus;
}

/** A service that does nothing when `upstream.mwl` is not configured (its routes then say so). */
export function upstreamWorklist(ctx: FlowContext): UpstreamWorklist {
  const mwl = ctx.config.upstream.mwl;
  if (mwl === undefined) {
    const status = (): UpstreamWorklistStatus => ({ configured: false, stale: false });
    return {
      name: 'upstream-worklist',
      start: async () => undefined,
      stop: async () => undefined,
      health: () => ({ status: 'ok' }),
      status,
      routes: routes(status, () => {
        throw new EdgeError(
          'EDGE_CONTROL_BAD_REQUEST',
          'upstream.mwl is not configured: there is no upstream worklist provider to import from',
        );
      }),
    };
  }
  return new UpstreamWorklistCache(ctx, mwl);
}

class UpstreamWorklistCache implements UpstreamWorklist {
  readonly name = 'upstream-worklist';
  readonly routes: readonly ControlRoute[];
  readonly #ctx: FlowContext;
  readonly #mwl: MwlUpstreamConfig;
  readonly #provider: AuditParticipant;
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #startedAt = Date.now();
  #lastCompleteAt: number | undefined;
  #lastAttemptAt: number | undefined;
  #lastError: { code: string; message: string } | undefined;
  #lastResult: UpstreamImportResult | undefined;
  #staleSince: number | undefined;

  constructor(ctx: FlowContext, mwl: MwlUpstreamConfig) {
    this.#ctx = ctx;
    this.#mwl = mwl;
    this.#provider = { kind: 'dicom', id: mwl.aeTitle, address: mwl.host, requestor: false };
    this.routes = routes(
      () => this.status(),
      (dryRun, user) => this.pull(dryRun, user),
    );
  }

  async start(): Promise<void> {
    this.#startedAt = Date.now();
    const tick = (): void => {
      this.pull(false, undefined).catch(() => undefined);
      this.#checkAge();
    };
    // The first pull right away: a box that starts during a downtime should not wait an interval.
    setImmediate(tick);
    this.#timer = setInterval(tick, this.#mwl.intervalMs);
    this.#timer.unref();
  }

  async stop(deadlineMs: number): Promise<void> {
    clearInterval(this.#timer);
    this.#abort.abort();
    await Promise.race([this.#running.catch(() => undefined), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  health(): ServiceHealth {
    const s = this.status();
    if (s.stale) {
      return {
        status: 'degraded',
        detail: `upstream worklist cache ${Math.round((s.cacheAgeMs ?? 0) / 1000)} s old (alarm above ${Math.round((2 * this.#mwl.intervalMs) / 1000)} s)${this.#lastError === undefined ? '' : `; last error ${this.#lastError.code}`}`,
      };
    }
    return { status: 'ok', detail: `upstream worklist cache ${Math.round((s.cacheAgeMs ?? 0) / 1000)} s old` };
  }

  status(): UpstreamWorklistStatus {
    const now = Date.now();
    const cacheAgeMs = now - (this.#lastCompleteAt ?? this.#startedAt);
    return {
      configured: true,
      provider: `${this.#mwl.aeTitle}@${this.#mwl.host}:${this.#mwl.port}`,
      intervalMs: this.#mwl.intervalMs,
      ...(this.#lastCompleteAt === undefined ? {} : { lastCompleteAt: this.#lastCompleteAt }),
      cacheAgeMs,
      stale: cacheAgeMs > 2 * this.#mwl.intervalMs,
      ...(this.#lastAttemptAt === undefined ? {} : { lastAttemptAt: this.#lastAttemptAt }),
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      ...(this.#lastResult === undefined ? {} : { lastResult: this.#lastResult }),
    };
  }

  /** One pull at a time: a pull asked for while another runs starts after it. */
  pull(dryRun: boolean, user: string | undefined): Promise<UpstreamImportResult> {
    const next = this.#running.catch(() => undefined).then(() => this.#pullNow(dryRun, user));
    this.#running = next;
    return next;
  }

  async #pullNow(dryRun: boolean, user: string | undefined): Promise<UpstreamImportResult> {
    const { config, store, audit, box, logger } = this.#ctx;
    const mwl = this.#mwl;
    const startedAt = Date.now();
    this.#lastAttemptAt = startedAt;
    let answer: WorklistFindAnswer;
    try {
      answer = await findUpstreamWorklist(
        {
          host: mwl.host,
          port: mwl.port,
          calledAeTitle: mwl.aeTitle,
          callingAeTitle: config.dicom.aeTitle,
          ...(mwl.tls ? { tls: clientTls(this.#ctx.tls) } : {}),
          connectTimeoutMs: mwl.connectTimeoutMs,
          responseTimeoutMs: mwl.responseTimeoutMs,
          maxResponses: mwl.maxItems,
          maxIdentifierBytes: MAX_IDENTIFIER_BYTES,
        },
        upstreamWorklistQuery(mwl.daysAhead === 0 ? {} : { startDateRange: dateRange(startedAt, mwl.daysAhead) }),
        this.#abort.signal,
      );
    } catch (err) {
      const e = isEdgeError(err) ? err : new EdgeError('EDGE_MWL_SCU_FAILED', (err as Error).message, { cause: err });
      this.#lastError = { code: e.code, message: e.message };
      logger.warn('worklist.upstream-failed', { code: e.code, message: e.message, provider: mwl.aeTitle });
      this.#checkAge();
      throw e;
    }
    const parsed: (PulledItem | PulledItemProblem)[] = answer.identifiers.map((f) =>
      'dataSet' in f
        ? pulledItemOf(f.dataSet, mwl.aeTitle, startedAt)
        : {
            problem: f.problem,
            attribute: f.problem === 'undecodable' ? 'identifier' : 'SpecificCharacterSet',
            accessionNumber: '',
            spsId: '',
          },
    );
    const pulled = parsed.filter((p): p is PulledItem => !isPulledItemProblem(p));
    const held = await store.orders.upstreamItems();
    const coveredByHl7 = await store.orders.coveredByHl7(
      pulled.map((p) => ({ accessionNumber: p.order.accessionNumber, spsId: p.order.steps[0]?.id ?? '' })),
    );
    const plan = planUpstreamMerge({
      answer: parsed,
      complete: answer.complete,
      held,
      coveredByHl7,
      now: startedAt,
      removeAfterMs: mwl.removeAfterMs,
    });
    if (!dryRun) await store.orders.applyUpstream(plan.changes);
    const result: UpstreamImportResult = {
      dryRun,
      complete: answer.complete,
      ...(answer.incompleteBecause === undefined ? {} : { incompleteBecause: answer.incompleteBecause }),
      answered: answer.identifiers.length,
      counts: plan.counts,
      skipped: plan.skipped,
    };
    const c = plan.counts;
    logger.info('worklist.upstream-merged', {
      provider: mwl.aeTitle,
      dryRun,
      complete: answer.complete,
      answered: answer.identifiers.length,
      ...c,
      ms: Date.now() - startedAt,
    });
    if (dryRun) return result;
    this.#lastResult = result;
    if (answer.complete) {
      this.#lastCompleteAt = startedAt;
      this.#lastError = undefined;
    } else {
      this.#lastError = { code: 'EDGE_MWL_SCU_FAILED', message: `incomplete answer: ${answer.incompleteBecause ?? 'unknown'}` };
      logger.warn('worklist.upstream-incomplete', {
        provider: mwl.aeTitle,
        why: answer.incompleteBecause ?? 'unknown',
        answered: answer.identifiers.length,
      });
    }
    const participants: AuditParticipant[] = [
      this.#provider,
      box,
      ...(user === undefined ? [] : [{ kind: 'user' as const, id: user, requestor: true }]),
    ];
    if (c.created + c.updated + c.removed > 0) {
      audit.record(
        auditEvent('worklist.upstream-imported', {
          at: Date.now(),
          participants,
          detail: `created ${c.created}, updated ${c.updated}, removed ${c.removed}, pending removal ${c.pendingRemoval}, shadowed by HL7 ${c.shadowed}, skipped ${c.skipped}; ${answer.complete ? 'complete answer' : `incomplete answer (${answer.incompleteBecause ?? 'unknown'})`}`,
        }),
      );
    }
    if (plan.skipped.length > 0) {
      const reasons = new Map<string, number>();
      for (const s of plan.skipped) reasons.set(`${s.attribute} ${s.problem}`, (reasons.get(`${s.attribute} ${s.problem}`) ?? 0) + 1);
      audit.record(
        auditEvent('worklist.upstream-item-skipped', {
          at: Date.now(),
          participants,
          detail: `${plan.skipped.length} item(s) left out: ${[...reasons].map(([r, n]) => `${r} ×${n}`).join(', ')}`,
        }),
      );
      logger.warn('worklist.upstream-items-skipped', { provider: mwl.aeTitle, count: plan.skipped.length });
    }
    this.#checkAge();
    return result;
  }

  /** Raise the alarm once when the cache passes twice the interval; clear it once when it is fresh again. */
  #checkAge(): void {
    const { audit, box, logger } = this.#ctx;
    const s = this.status();
    if (s.stale && this.#staleSince === undefined) {
      this.#staleSince = Date.now();
      const detail = `upstream worklist cache ${Math.round((s.cacheAgeMs ?? 0) / 1000)} s old, over twice upstream.mwl.intervalMs; last error ${this.#lastError?.code ?? 'none'}`;
      logger.warn('worklist.upstream-stale', {
        provider: this.#mwl.aeTitle,
        cacheAgeMs: s.cacheAgeMs ?? 0,
        code: this.#lastError?.code ?? 'none',
      });
      audit.record(appActivity('worklist.upstream-stale', [box, this.#provider], detail));
    } else if (!s.stale && this.#staleSince !== undefined) {
      const wasMs = Date.now() - this.#staleSince;
      this.#staleSince = undefined;
      logger.info('worklist.upstream-fresh', { provider: this.#mwl.aeTitle, staleMs: wasMs });
      audit.record(appActivity('worklist.upstream-fresh', [box, this.#provider], `stale for ${Math.round(wasMs / 1000)} s`));
    }
  }
}

/** YYYYMMDD-YYYYMMDD from yesterday to `daysAhead` days ahead (local dates, as the modalities schedule). */
function dateRange(now: number, daysAhead: number): string {
  const day = (offset: number): string => {
    const d = new Date(now + offset * 86_400_000);
    return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
  };
  return `${day(-1)}-${day(daysAhead)}`;
}

function routes(
  status: () => UpstreamWorklistStatus,
  pull: (dryRun: boolean, user: string | undefined) => Promise<UpstreamImportResult>,
): ControlRoute[] {
  return [
    { method: 'GET', path: '/v1/worklist/upstream', permission: 'viewer', handle: () => ({ status: 200, body: status() }) },
    {
      method: 'POST',
      path: '/v1/worklist/import',
      permission: 'operator',
      handle: async (req) => {
        const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as { dryRun?: unknown; user?: unknown };
        if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') {
          throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', '"dryRun" must be true or false');
        }
        const user = actorOf(req, body.user);
        return { status: 200, body: await pull(body.dryRun === true, user) };
      },
    },
  ];
}
