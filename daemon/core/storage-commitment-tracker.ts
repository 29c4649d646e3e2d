// The box's side of Storage Commitment: it commits each N-ACTION before it is answered, watches the
// requests it holds (at start, whenever the PACS confirms an instance, and at the nearest deadline), and
// queues each request's report in the same commit that marks it reported. The outbox then delivers the
// report to the modality, through outages and restarts.
import type { AuditParticipant, AuditSink } from './audit.ts';
import { auditEvent } from './audit-event-builders.ts';
import { isEdgeError } from './errors.ts';
import type { Logger } from './log.ts';
import {
  COMMITMENT_REPORT_KIND,
  type CommitmentReportPayload,
  type CommitmentRepository,
  type CommitmentRequest,
  type InstanceLedger,
  type ReferencedSop,
  evaluateCommitment,
} from './storage-commitment.ts';

export interface CommitmentRequester {
  readonly callingAeTitle: string;
  /** The modality's peer name in the config. */
  readonly modality: string;
  readonly remoteAddress: string;
  readonly associationId: string;
}

export interface StorageCommitmentTrackerOptions {
  readonly repository: CommitmentRepository;
  readonly ledger: InstanceLedger;
  /** Outbox destination of the reports. */
  readonly reportDestination: string;
  readonly deadlineMs: number;
  /** Reported requests and PACS confirmations are kept this long (repeated N-ACTIONs, late requests). */
  readonly retentionMs: number;
  readonly audit: AuditSink;
  readonly box: AuditParticipant;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** Evaluations triggered by confirmations are coalesced over this long (a study confirms many at once). */
const COALESCE_MS = 250;
/** At least this often the held requests are looked at again, whatever else happens. */
const SWEEP_MS = 60_000;

export class StorageCommitmentTracker {
  readonly #o: StorageCommitmentTrackerOptions;
  readonly #now: () => number;
  /** Pending requests by Transaction UID and AE; loaded at start, kept with the store. */
  readonly #pending = new Map<string, CommitmentRequest>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #lastPrune = 0;

  constructor(options: StorageCommitmentTrackerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    for (const r of await this.#o.repository.pending()) this.#pending.set(keyOf(r), r);
    this.#o.logger.info('commitment.started', { pending: this.#pending.size });
    this.poke(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Commit a modality's request (before its N-ACTION-RSP); then look at it at once. */
  async request(items: readonly ReferencedSop[], transactionUid: string, from: CommitmentRequester): Promise<'created' | 'exists'> {
    const now = this.#now();
    const request: CommitmentRequest = {
      transactionUid,
      callingAeTitle: from.callingAeTitle,
      modality: from.modality,
      remoteAddress: from.remoteAddress,
      items,
      receivedAt: now,
      deadlineAt: now + this.#o.deadlineMs,
      state: 'pending',
    };
    const outcome = await this.#o.repository.record(request);
    if (outcome === 'created') this.#pending.set(keyOf(request), request);
    this.#o.logger.info('commitment.requested', {
      associationId: from.associationId,
      instances: items.length,
      repeated: outcome === 'exists',
    });
    this.#o.audit.record(
      auditEvent('storage-commitment.requested', {
        at: now,
        participants: [this.#modality(from.callingAeTitle, from.remoteAddress, true), this.#o.box],
        controlId: from.associationId,
        detail: `Transaction UID ${transactionUid}; ${items.length} instance(s)${outcome === 'exists' ? '; repeated' : ''}`,
      }),
    );
    if (outcome === 'created') this.poke(0);
    return outcome;
  }

  /** Something changed (an instance was confirmed): evaluate soon. */
  poke(delayMs = COALESCE_MS): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#arm(delayMs);
  }

  /** Requests waiting for their report (tests, status). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  #arm(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#evaluateAll().finally(() => {
        this.#running = undefined;
        if (this.#stopped) return;
        if (this.#again) {
          this.#again = false;
          this.#arm(COALESCE_MS);
        } else {
          this.#arm(this.#nextDeadlineDelay());
        }
      });
    }, delayMs);
    this.#timer.unref();
  }

  #nextDeadlineDelay(): number {
    let next = this.#now() + SWEEP_MS;
    for (const r of this.#pending.values()) next = Math.min(next, r.deadlineAt);
    return Math.max(COALESCE_MS, next - this.#now() + 10);
  }

  async #evaluateAll(): Promise<void> {
    for (const [key, request] of [...this.#pending]) {
      if (this.#stopped) return;
      try {
        await this.#evaluate(key, request);
      } catch (err) {
        // The request stays pending and is looked at again on the next pass.
        this.#o.logger.warn('commitment.evaluate-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
      }
    }
    await this.#prune();
  }

  async #evaluate(key: string, request: CommitmentRequest): Promise<void> {
    const now = this.#now();
    const states = await this.#o.ledger.states(request.items.map((i) => i.sopInstanceUid));
    const verdict = evaluateCommitment(request, states, now);
    if (!verdict.ready) return;
    const { report } = verdict;
    const payload: CommitmentReportPayload = {
      report,
      modality: request.modality,
      callingAeTitle: request.callingAeTitle,
      remoteAddress: request.remoteAddress,
    };
    await this.#o.repository.complete(request, now, {
      destination: this.#o.reportDestination,
      orderingKey: key,
      kind: COMMITMENT_REPORT_KIND,
      payload,
    });
    this.#pending.delete(key);
    this.#o.logger.info('commitment.report-queued', {
      eventTypeId: report.eventTypeId,
      committed: report.success.length,
      failed: report.failed.length,
    });
    const participants = [this.#o.box, this.#modality(request.callingAeTitle, request.remoteAddress, false)];
    const detail = `Transaction UID ${request.transactionUid}; ${report.success.length} committed, ${report.failed.length} failed`;
    if (report.failed.length === 0) {
      this.#o.audit.record(auditEvent('storage-commitment.committed', { at: now, participants, detail }));
    } else {
      this.#o.audit.record(auditEvent('storage-commitment.failed', { at: now, participants, detail: `${detail}: ${report.why ?? ''}` }));
    }
  }

  async #prune(): Promise<void> {
    const now = this.#now();
    if (now - this.#lastPrune < SWEEP_MS) return;
    this.#lastPrune = now;
    const before = now - this.#o.retentionMs;
    try {
      const requests = await this.#o.repository.prune(before);
      const confirmations = await this.#o.ledger.prune(before);
      if (requests + confirmations > 0) this.#o.logger.info('commitment.pruned', { requests, confirmations });
    } catch (err) {
      this.#o.logger.warn('commitment.prune-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
    }
  }

  #modality(aeTitle: string, address: string, requestor: boolean): AuditParticipant {
    return { kind: 'dicom', id: aeTitle, address, requestor };
  }
}

function keyOf(r: Pick<CommitmentRequest, 'callingAeTitle' | 'transactionUid'>): string {
  return `${r.callingAeTitle}\u0000${r.transactionUid}`;
}
