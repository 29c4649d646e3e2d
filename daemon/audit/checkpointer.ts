// Periodic signed checkpoints of the chain head, and retention. A checkpoint is the device's signed word
// that the chain held hash H at seq N; it exposes a truncated tail (the chain ends before N) and lets
// pruning delete old records while the rest stays verifiable from the checkpoint (the anchor).
import type { AuditCheckpoint, AuditHeadAnchor, AuditTrail } from '../core/audit-trail.ts';
import { isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { signDetached, verifyDetached } from './cms.ts';
import type { Signer } from './signer.ts';

export const CheckpointFormat = 'imaging-edge-audit-checkpoint/1';

export type CheckpointerEvent =
  | { readonly type: 'pruned'; readonly throughSeq: number; readonly records: number; readonly olderThan: string }
  | { readonly type: 'checkpoint-failed'; readonly code: string }
  | { readonly type: 'prune-failed'; readonly code: string };

export interface CheckpointerOptions {
  readonly trail: AuditTrail;
  readonly signer: Signer;
  readonly site: string;
  readonly everyRecords: number;
  readonly everyMs: number;
  readonly retentionMs: number;
  readonly pruneIntervalMs?: number;
  readonly logger: Logger;
  readonly onEvent: (event: CheckpointerEvent) => void;
  readonly now?: () => number;
  /** Keeps the head outside the store (TPM NV counter, head file); see docs/audit.md. */
  readonly headAnchor?: AuditHeadAnchor;
}

export class AuditCheckpointer {
  readonly #o: CheckpointerOptions;
  #lastSeq = 0;
  #timer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> = Promise.resolve();
  #busy = false;

  constructor(options: CheckpointerOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#lastSeq = (await this.#o.trail.checkpoints()).at(-1)?.seq ?? 0;
    this.#timer = setInterval(() => this.#kick(), this.#o.everyMs);
    this.#timer.unref();
    this.#pruneTimer = setInterval(() => void this.#scheduledPrune(), this.#o.pruneIntervalMs ?? 3_600_000);
    this.#pruneTimer.unref();
    this.#unsubscribe = this.#o.trail.onDurable((seq) => {
      if (seq - this.#lastSeq >= this.#o.everyRecords) this.#kick();
    });
  }

  /** Stop the timers and take a last checkpoint, so a clean stop leaves the head signed. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#pruneTimer);
    this.#unsubscribe?.();
    await this.#running;
    await this.checkpoint(true);
  }

  #kick(): void {
    if (this.#busy) return;
    this.#busy = true;
    this.#running = this.checkpoint()
      .then(() => undefined)
      .finally(() => (this.#busy = false));
  }

  /** Sign the durable head now (no-op when nothing new). */
  async checkpoint(final = false): Promise<AuditCheckpoint | undefined> {
    const seq = this.#o.trail.durableSeq;
    if (seq <= this.#lastSeq) return undefined;
    try {
      let hash: string | undefined;
      for await (const r of this.#o.trail.read(seq, seq)) hash = r.hash;
      if (hash === undefined) return undefined;
      // The counter moves before the checkpoint is saved: a crash in between leaves the counter one
      // ahead of the newest checkpoint (the lag the start check allows), never behind.
      const counter = await this.#o.headAnchor?.advance(final);
      const at = (this.#o.now ?? Date.now)();
      const statement = JSON.stringify({
        format: CheckpointFormat,
        site: this.#o.site,
        seq,
        hash,
        at: new Date(at).toISOString(),
        ...(counter === undefined ? {} : { counter }),
      });
      const cms = await signDetached(this.#o.signer, Buffer.from(statement, 'utf8'), new Date(at));
      const checkpoint: AuditCheckpoint = {
        seq,
        hash,
        at,
        statement,
        cms: cms.toString('base64'),
        ...(counter === undefined ? {} : { counter }),
      };
      await this.#o.trail.saveCheckpoint(checkpoint);
      await this.#o.headAnchor?.recorded(checkpoint);
      this.#lastSeq = seq;
      return checkpoint;
    } catch (err) {
      const code = isEdgeError(err) ? err.code : 'unexpected';
      this.#o.logger.error('audit.checkpoint-failed', { code, seq });
      this.#o.onEvent({ type: 'checkpoint-failed', code });
      return undefined;
    }
  }

  /** Retention on the timer: a failure is logged and reported (audited by the owner), then tried next time. */
  async #scheduledPrune(): Promise<void> {
    try {
      await this.prune();
    } catch (err) {
      const code = isEdgeError(err) ? err.code : 'unexpected';
      this.#o.logger.error('audit.prune-failed', {
        code,
        ...(isEdgeError(err) ? {} : { reason: err instanceof Error ? err.message : String(err) }),
      });
      this.#o.onEvent({ type: 'prune-failed', code });
    }
  }

  /**
   * Delete records older than the retention through the newest checkpoint made before the cutoff (every
   * record up to it was appended before it was signed, so all are older than the cutoff).
   */
  async prune(): Promise<number> {
    const cutoff = (this.#o.now ?? Date.now)() - this.#o.retentionMs;
    const candidates = (await this.#o.trail.checkpoints()).filter((c) => c.at <= cutoff && c.seq >= this.#o.trail.firstSeq);
    const through = candidates.at(-1);
    if (through === undefined) return 0;
    const deleted = await this.#o.trail.pruneThrough(through);
    if (deleted > 0) {
      this.#o.logger.info('audit.pruned', { throughSeq: through.seq, records: deleted });
      this.#o.onEvent({ type: 'pruned', throughSeq: through.seq, records: deleted, olderThan: new Date(cutoff).toISOString() });
    }
    return deleted;
  }
}

/** Check a checkpoint's signature and that its statement matches its fields. */
export function checkpointProblem(cp: AuditCheckpoint, trustAnchors?: Parameters<typeof verifyDetached>[2]): string | undefined {
  const v = verifyDetached(Buffer.from(cp.cms, 'base64'), Buffer.from(cp.statement, 'utf8'), trustAnchors);
  if (!v.ok) return v.problem ?? 'bad signature';
  const s = JSON.parse(cp.statement) as { seq?: unknown; hash?: unknown; counter?: unknown };
  if (s.seq !== cp.seq || s.hash !== cp.hash || s.counter !== cp.counter) return 'the signed statement does not match the checkpoint';
  return undefined;
}
