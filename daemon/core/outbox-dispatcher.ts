// The outbox dispatcher: per destination, `concurrency` workers take batches of due entries from the
// durable store, hand them to the destination's OutboxSender and record every outcome durably.
//
// API summary:
//   const d = new OutboxDispatcher({ repository, audit, logger, destinations: [{ sender, batchSize,
//     concurrency, deliveryTimeoutMs, backoff: { initialDelayMs, maxDelayMs, multiplier, jitter },
//     downAfterFailures }] });
//   d.start();                    // workers run until stop(); entries enqueued later wake them
//   await d.stop(deadlineMs);     // aborts in-flight batches (their entries stay queued), waits ≤ deadline
//   d.status()                    // DestinationStatus[]: circuit up/degraded/down, queued, dead, last error
//   d.list(dest) / d.deadLetters(dest)          // summaries without payloads (no patient data)
//   d.retryNow(dest, actor) / d.retryOne(id, actor) / d.retryAll(dest, actor) / d.discard(id, actor)
//       operator actions; each is audited with the actor.
//   Senders: deliver(entries, signal) gets up to batchSize entries in id order; several entries may share
//   an ordering key, in order. Use deliverInOrder() below to get the "stop a key at its first failure"
//   rule for free.
//
// Rules: a key's entries are handed out one batch at a time, never to two workers at once, and never
// past an entry of the same key that is waiting for its retry time; `delivered` deletes the entry; a
// failure is decided on its code's kind (errors.ts): transient keeps it with capped exponential back-off
// with jitter, ambiguous the same (the copy goes out under the same identity, so the peer's duplicate
// check answers it), permanent moves it to the dead-letter list (the rest of its key goes on). A batch in which nothing reached the peer counts as a failure of
// the destination: after one it is degraded, after `downAfterFailures` in a row down, and the destination
// waits out its own back-off before the next attempt (one probe batch, not one per key). An entry the
// peer answered but refused (`reachedPeer`) backs off alone, so one stuck study never holds up the
// others, and after `refusalBound` it becomes a dead letter with the peer's reason.
import type { AuditParticipant, AuditSink } from './audit.ts';
import { appActivity, auditEvent } from './audit-event-builders.ts';
import { EdgeError, ErrorKind, kindOf, type ErrorCode } from './errors.ts';
import type { Logger } from './log.ts';
import {
  CircuitState,
  type DeadLetter,
  type DeliveryResult,
  type DestinationStatus,
  type OutboxEntry,
  type OutboxError,
  type OutboxRepository,
  type OutboxSender,
  type SettledEntry,
} from './outbox.ts';

export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /** 0..1: the share of each delay that is random (0.5 → between 50 % and 100 % of the delay). */
  readonly jitter: number;
}

/**
 * How long one entry may be refused by a destination that answers (e.g. C-STORE 0xA700 for that one
 * instance) before it becomes a dead letter: whichever bound is reached first. Attempts that never
 * reached the peer (it is down) do not count: an outage queues, it never dead-letters.
 */
export interface RefusalBound {
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
}

export const DEFAULT_REFUSAL_BOUND: RefusalBound = { maxAttempts: 10, maxAgeMs: 86_400_000 };

/** Delay before attempt `failures + 1` after `failures` (≥ 1) failures in a row. */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = policy.initialDelayMs * policy.multiplier ** Math.max(0, failures - 1);
  const capped = Math.min(policy.maxDelayMs, exp);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(capped * (1 - jitter) + capped * jitter * random());
}

export interface DestinationOptions {
  readonly sender: OutboxSender;
  readonly batchSize: number;
  /** Batches in flight at once (associations / connections). */
  readonly concurrency: number;
  /** A batch that takes longer is aborted; its entries are retried. */
  readonly deliveryTimeoutMs: number;
  readonly backoff: BackoffPolicy;
  /** Failed batches in a row after which the destination is `down`. */
  readonly downAfterFailures: number;
  readonly refusalBound?: RefusalBound;
}

export interface OutboxDispatcherOptions {
  readonly repository: OutboxRepository;
  readonly destinations: readonly DestinationOptions[];
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** The box, as the system participant of audit events. */
  readonly system?: AuditParticipant;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** What the control API shows of an entry: identifiers only, never the payload. */
export interface OutboxEntrySummary {
  readonly id: string;
  readonly destination: string;
  readonly kind: string;
  readonly enqueuedAt: number;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: OutboxError;
}

export interface DeadLetterSummary extends OutboxEntrySummary {
  readonly reason: OutboxError;
  readonly deadAt: number;
}

interface Destination {
  readonly name: string;
  readonly options: DestinationOptions;
  readonly claimedIds: Set<string>;
  readonly claimedKeys: Map<string, number>;
  state: CircuitState;
  consecutiveFailures: number;
  blockedUntil: number;
  lastError: OutboxError | undefined;
  lastDeliveredAt: number | undefined;
  waiters: Array<() => void>;
}

export class OutboxDispatcher {
  readonly #repo: OutboxRepository;
  readonly #audit: AuditSink;
  readonly #logger: Logger;
  readonly #system: AuditParticipant;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #destinations = new Map<string, Destination>();
  readonly #stop = new AbortController();
  #workers: Promise<void>[] = [];
  #started = false;

  constructor(options: OutboxDispatcherOptions) {
    this.#repo = options.repository;
    this.#audit = options.audit;
    this.#logger = options.logger;
    this.#system = options.system ?? { kind: 'system', id: 'edge', requestor: false };
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    for (const o of options.destinations) {
      if (o.batchSize < 1 || o.concurrency < 1) throw new TypeError('batchSize and concurrency must be at least 1');
      this.#destinations.set(o.sender.destination, {
        name: o.sender.destination,
        options: o,
        claimedIds: new Set(),
        claimedKeys: new Map(),
        state: CircuitState.Up,
        consecutiveFailures: 0,
        blockedUntil: 0,
        lastError: undefined,
        lastDeliveredAt: undefined,
        waiters: [],
      });
    }
    this.#repo.onChange((destination) => {
      const d = this.#destinations.get(destination);
      if (d !== undefined) wake(d);
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const d of this.#destinations.values()) {
      for (let slot = 0; slot < d.options.concurrency; slot++) {
        this.#workers.push(
          this.#run(d).catch((err: unknown) => {
            this.#logger.error('outbox.worker-stopped', { destination: d.name, error: err instanceof Error ? err.message : String(err) });
          }),
        );
      }
    }
    this.#logger.info('outbox.started', { destinations: [...this.#destinations.keys()].join(',') });
  }

  /** Abort in-flight batches and wait for the workers (at most `deadlineMs`). Entries stay queued. */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort(new EdgeError('EDGE_SHUTDOWN'));
    for (const d of this.#destinations.values()) wake(d);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
      timer.unref();
    });
    await Promise.race([Promise.all(this.#workers), deadline]);
    clearTimeout(timer);
    this.#logger.info('outbox.stopped', {});
  }

  status(): DestinationStatus[] {
    const names = new Set([...this.#destinations.keys(), ...this.#repo.destinations()]);
    return [...names].sort().map((name) => {
      const d = this.#destinations.get(name);
      return {
        destination: name,
        state: d?.state ?? CircuitState.Down,
        queued: this.#repo.queued(name).length,
        deadLetters: this.#repo.deadLetters(name).length,
        ...(d?.lastError === undefined ? {} : { lastError: d.lastError }),
        ...(d?.lastDeliveredAt === undefined ? {} : { lastDeliveredAt: d.lastDeliveredAt }),
      };
    });
  }

  list(destination: string, limit = 1000): OutboxEntrySummary[] {
    return this.#repo.queued(destination).slice(0, limit).map(summary);
  }

  deadLetters(destination?: string, limit = 1000): DeadLetterSummary[] {
    return this.#repo
      .deadLetters(destination)
      .slice(0, limit)
      .map((d: DeadLetter) => ({ ...summary(d.entry), reason: d.reason, deadAt: d.deadAt }));
  }

  /** Make every queued entry of a destination due now and lift the destination's back-off. */
  async retryNow(destination: string, actor: AuditParticipant): Promise<number> {
    const d = this.#known(destination);
    d.blockedUntil = 0;
    const n = await this.#repo.hurry(destination, this.#now());
    wake(d);
    this.#operatorAudit('outbox.retry-now', actor, `${destination}: ${n} queued entr${n === 1 ? 'y' : 'ies'} made due`);
    return n;
  }

  /** Put one dead letter back in the queue. */
  async retryOne(id: string, actor: AuditParticipant): Promise<void> {
    const dead = this.#repo.deadLetters().find((x) => x.entry.id === id);
    if (dead === undefined) throw new EdgeError('EDGE_OUTBOX_NOT_FOUND', `no dead letter ${id}`);
    await this.#repo.requeue({ id }, this.#now());
    this.#operatorAudit('outbox.retry-one', actor, `${dead.entry.destination}: dead letter ${id} (${dead.entry.kind}) requeued`);
  }

  /** Put every dead letter of a destination back in the queue. */
  async retryAll(destination: string, actor: AuditParticipant): Promise<number> {
    const n = await this.#repo.requeue({ destination }, this.#now());
    this.#operatorAudit('outbox.retry-all', actor, `${destination}: ${n} dead letter(s) requeued`);
    return n;
  }

  /** Delete one dead letter for good. */
  /** `why` is the person's own reason (the admin page asks for one); it goes into the audit record. */
  async discard(id: string, actor: AuditParticipant, why?: string): Promise<void> {
    const dead = this.#repo.deadLetters().find((x) => x.entry.id === id);
    if (dead === undefined || !(await this.#repo.discard(id))) throw new EdgeError('EDGE_OUTBOX_NOT_FOUND', `no dead letter ${id}`);
    this.#operatorAudit(
      'outbox.discarded',
      actor,
      `${dead.entry.destination}: dead letter ${id} (${dead.entry.kind}) discarded; reason was ${dead.reason.code}${why === undefined ? '' : `; because: ${why}`}`,
    );
  }

  #known(destination: string): Destination {
    const d = this.#destinations.get(destination);
    if (d === undefined) throw new EdgeError('EDGE_OUTBOX_NOT_FOUND', `no destination ${destination}`);
    return d;
  }

  async #run(d: Destination): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const now = this.#now();
      if (d.blockedUntil > now) {
        await this.#sleep(d, d.blockedUntil - now);
        continue;
      }
      const { batch, wakeAt } = this.#pick(d, now);
      if (batch.length === 0) {
        await this.#sleep(d, wakeAt - now);
        continue;
      }
      for (const e of batch) {
        d.claimedIds.add(e.id);
        d.claimedKeys.set(e.orderingKey, (d.claimedKeys.get(e.orderingKey) ?? 0) + 1);
      }
      try {
        const results = await this.#deliver(d, batch, signal);
        await this.#settle(d, batch, results);
      } finally {
        for (const e of batch) {
          d.claimedIds.delete(e.id);
          const n = (d.claimedKeys.get(e.orderingKey) ?? 1) - 1;
          if (n <= 0) d.claimedKeys.delete(e.orderingKey);
          else d.claimedKeys.set(e.orderingKey, n);
        }
        // Other workers may be waiting on keys this batch held.
        wake(d);
      }
    }
  }

  #pick(d: Destination, now: number): { batch: OutboxEntry[]; wakeAt: number } {
    const batch: OutboxEntry[] = [];
    const blocked = new Set(d.claimedKeys.keys());
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const e of this.#repo.queued(d.name)) {
      if (batch.length >= d.options.batchSize) break;
      if (d.claimedIds.has(e.id) || blocked.has(e.orderingKey)) {
        blocked.add(e.orderingKey);
        continue;
      }
      if (e.nextAttemptAt > now) {
        blocked.add(e.orderingKey);
        wakeAt = Math.min(wakeAt, e.nextAttemptAt);
        continue;
      }
      batch.push(e);
    }
    return { batch, wakeAt };
  }

  async #deliver(d: Destination, batch: readonly OutboxEntry[], stop: AbortSignal): Promise<readonly DeliveryResult[]> {
    const timeout = AbortSignal.timeout(d.options.deliveryTimeoutMs);
    const signal = AbortSignal.any([stop, timeout]);
    const failAll = (code: ErrorCode, message: string): DeliveryResult[] =>
      batch.map(() => ({ outcome: 'failed', error: { code, message, at: this.#now() } }) as const);
    let guard: NodeJS.Timeout | undefined;
    try {
      // A sender that ignores its signal must not hold the worker forever.
      const late = new Promise<readonly DeliveryResult[]>((resolve) => {
        guard = setTimeout(
          () => resolve(failAll('EDGE_OUTBOX_SENDER_FAILED', 'the sender did not return after its deadline')),
          d.options.deliveryTimeoutMs + 5000,
        );
      });
      const results = await Promise.race([d.options.sender.deliver(batch, signal), late]);
      if (results.length !== batch.length) return failAll('EDGE_OUTBOX_SENDER_FAILED', 'the sender returned a wrong number of results');
      return results;
    } catch (err) {
      this.#logger.error('outbox.sender-failed', { destination: d.name, error: err instanceof Error ? err.message : String(err) });
      return failAll('EDGE_OUTBOX_SENDER_FAILED', err instanceof Error ? err.message : 'sender failed');
    } finally {
      clearTimeout(guard);
    }
  }

  async #settle(d: Destination, batch: readonly OutboxEntry[], results: readonly DeliveryResult[]): Promise<void> {
    const now = this.#now();
    let delivered = 0;
    let rejected = 0;
    let retried = 0;
    let lastError: OutboxError | undefined;
    const decisions = results.map(decide);
    decisions.forEach((decision, i) => {
      const r = results[i]!;
      if (r.outcome === 'delivered') delivered++;
      else {
        if (decision === 'rejected') rejected++;
        else retried++;
        lastError = r.error;
      }
    });
    // Nothing reached the peer: the destination itself is failing (not one entry).
    const reached = results.some((r, i) => decisions[i] !== 'retry' || (r.outcome === 'failed' && r.reachedPeer === true));
    const destinationFailed = retried > 0 && !reached;
    let destinationDelay = 0;
    if (destinationFailed && !this.#stop.signal.aborted) {
      d.consecutiveFailures++;
      destinationDelay = backoffDelay(d.consecutiveFailures, d.options.backoff, this.#random);
      d.blockedUntil = Math.max(d.blockedUntil, now + destinationDelay);
    } else if (!destinationFailed) {
      d.consecutiveFailures = 0;
    }
    const settled: SettledEntry[] = batch.map((entry, i): SettledEntry => {
      const r = results[i]!;
      if (r.outcome === 'delivered') return { outcome: 'delivered', entry };
      if (decisions[i] === 'rejected') return { outcome: 'rejected', entry, error: r.error };
      if (kindOf(r.error.code) === ErrorKind.Ambiguous)
        this.#logger.info('outbox.ambiguous', { destination: d.name, id: entry.id, code: r.error.code });
      if (r.reachedPeer === true && !this.#stop.signal.aborted)
        return refused(entry, r.error, now, d.options.refusalBound ?? DEFAULT_REFUSAL_BOUND, d.options.backoff, this.#random);
      const own = backoffDelay(entry.attempts + 1, d.options.backoff, this.#random);
      const nextAttemptAt = this.#stop.signal.aborted ? entry.nextAttemptAt : now + Math.max(own, destinationDelay);
      return { outcome: 'retry', entry, error: r.error, nextAttemptAt };
    });
    try {
      await this.#repo.settle(settled);
    } catch (err) {
      // Not recorded: the entries stay as they were and go out again (at-least-once).
      this.#logger.error('outbox.settle-failed', { destination: d.name, error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (delivered > 0) d.lastDeliveredAt = now;
    if (lastError !== undefined) d.lastError = lastError;
    for (const s of settled) {
      if (s.outcome !== 'rejected') continue;
      this.#logger.warn('outbox.dead-lettered', {
        destination: d.name,
        id: s.entry.id,
        kind: s.entry.kind,
        code: s.error.code,
        ...(s.error.peerStatus === undefined ? {} : { peerStatus: s.error.peerStatus }),
      });
      this.#audit.record(
        auditEvent('outbox.dead-lettered', {
          eventId: s.entry.kind.startsWith('dicom') ? 'DicomInstancesTransferred' : 'ProcedureRecord',
          at: now,
          participants: [this.#system, { kind: 'system', id: d.name, requestor: false }],
          controlId: s.entry.id,
          detail:
            `${d.name} refused ${s.entry.kind} ${s.entry.id}: ${s.error.code}${s.error.peerStatus === undefined ? '' : ` (${s.error.peerStatus})`} ${s.error.message}`.slice(
              0,
              500,
            ),
        }),
      );
    }
    this.#logger.info('outbox.batch', {
      destination: d.name,
      size: batch.length,
      delivered,
      rejected,
      retried,
      ...(lastError === undefined ? {} : { code: lastError.code }),
    });
    this.#setState(d, this.#stop.signal.aborted ? d.state : nextState(d, retried > 0));
  }

  #setState(d: Destination, state: CircuitState): void {
    if (state === d.state) return;
    const from = d.state;
    d.state = state;
    this.#logger.warn('outbox.circuit', { destination: d.name, from, to: state, failures: d.consecutiveFailures, code: d.lastError?.code });
    if (state === CircuitState.Down || from === CircuitState.Down) {
      this.#audit.record(
        appActivity(
          state === CircuitState.Down ? 'outbox.destination-down' : 'outbox.destination-up',
          [this.#system, { kind: 'system', id: d.name, requestor: false }],
          `${d.name} ${from} → ${state}${d.lastError === undefined ? '' : `; last error ${d.lastError.code}`}`,
          this.#now(),
        ),
      );
    }
  }

  #sleep(d: Destination, ms: number): Promise<void> {
    if (this.#stop.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      // Capped so a clock jump or a missed wake-up never parks a worker for long.
      if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(1, Math.min(ms, 60_000)));
      else timer = setTimeout(done, 60_000);
      d.waiters.push(done);
    });
  }

  #operatorAudit(
    type: 'outbox.retry-now' | 'outbox.retry-one' | 'outbox.retry-all' | 'outbox.discarded',
    actor: AuditParticipant,
    detail: string,
  ): void {
    this.#logger.info(type, { actor: actor.id });
    this.#audit.record(auditEvent(type, { at: this.#now(), participants: [{ ...actor, requestor: true }, this.#system], detail }));
  }
}

/** The peer answered and refused `entry` once more: back it off alone, or dead-letter it past its bound. */
function refused(
  entry: OutboxEntry,
  error: OutboxError,
  now: number,
  bound: RefusalBound,
  backoff: BackoffPolicy,
  random: () => number,
): SettledEntry {
  const refusals = (entry.refusals ?? 0) + 1;
  const firstRefusedAt = entry.firstRefusedAt ?? now;
  const counted: OutboxEntry = { ...entry, refusals, firstRefusedAt };
  if (refusals >= bound.maxAttempts || now - firstRefusedAt >= bound.maxAgeMs) {
    const over = refusals >= bound.maxAttempts ? `${refusals} refusals` : `refused for ${Math.round((now - firstRefusedAt) / 1000)} s`;
    return {
      outcome: 'rejected',
      entry: counted,
      error: { ...error, message: `${error.message}; dead letter after ${over}`.slice(0, 500), at: now },
    };
  }
  return { outcome: 'retry', entry: counted, error, nextAttemptAt: now + backoffDelay(refusals, backoff, random) };
}

/** What the outbox does with one result: the sender reports what happened, the code's kind decides. */
export function decide(result: DeliveryResult): 'delivered' | 'retry' | 'rejected' {
  if (result.outcome === 'delivered') return 'delivered';
  return kindOf(result.error.code) === ErrorKind.Permanent ? 'rejected' : 'retry';
}

function nextState(d: Destination, anyRetry: boolean): CircuitState {
  if (d.consecutiveFailures >= d.options.downAfterFailures) return CircuitState.Down;
  if (d.consecutiveFailures > 0 || anyRetry) return CircuitState.Degraded;
  return CircuitState.Up;
}

function wake(d: Destination): void {
  const waiters = d.waiters;
  d.waiters = [];
  for (const w of waiters) w();
}

function summary(e: OutboxEntry): OutboxEntrySummary {
  return {
    id: e.id,
    destination: e.destination,
    kind: e.kind,
    enqueuedAt: e.enqueuedAt,
    attempts: e.attempts,
    nextAttemptAt: e.nextAttemptAt,
    ...(e.lastError === undefined ? {} : { lastError: e.lastError }),
  };
}

/**
 * Deliver a batch one entry at a time, in order, with the per-key rule: once an entry of a key is not
 * delivered and will be retried, later entries of that key are not attempted (EDGE_OUTBOX_NOT_ATTEMPTED).
 * When `deliverOne` answers a failure with `stopBatch` (the connection is gone), the rest is not attempted.
 */
export async function deliverInOrder(
  entries: readonly OutboxEntry[],
  signal: AbortSignal,
  deliverOne: (entry: OutboxEntry) => Promise<DeliveryResult & { readonly stopBatch?: boolean }>,
): Promise<DeliveryResult[]> {
  const results: DeliveryResult[] = [];
  const failedKeys = new Set<string>();
  let stopped: OutboxError | undefined;
  for (const entry of entries) {
    if (stopped === undefined && signal.aborted) stopped = { code: 'EDGE_SHUTDOWN', message: 'delivery aborted', at: Date.now() };
    if (stopped !== undefined) {
      results.push({
        outcome: 'failed',
        error: {
          code: stopped.code === 'EDGE_SHUTDOWN' ? stopped.code : 'EDGE_OUTBOX_NOT_ATTEMPTED',
          message: stopped.message,
          at: stopped.at,
        },
      });
      continue;
    }
    if (failedKeys.has(entry.orderingKey)) {
      results.push({
        outcome: 'failed',
        error: { code: 'EDGE_OUTBOX_NOT_ATTEMPTED', message: 'an earlier entry with the same key was not delivered', at: Date.now() },
      });
      continue;
    }
    const r = await deliverOne(entry);
    if (r.outcome === 'delivered') results.push({ outcome: 'delivered' });
    else {
      results.push({ outcome: 'failed', error: r.error, ...(r.reachedPeer === undefined ? {} : { reachedPeer: r.reachedPeer }) });
      // A dead letter does not hold up its key; an entry that will be retried does.
      if (decide(r) === 'retry') failedKeys.add(entry.orderingKey);
      if (r.stopBatch === true) stopped = r.error;
    }
  }
  return results;
}
