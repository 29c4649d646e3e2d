// The store's health and its way back. A failed synced write (a full disk, an I/O error) stops the commit
// queue from taking writes: HL7 answers AE 207, C-STORE 0xA700, nothing is acknowledged that is not
// durable. The store is then `degraded` until a check finds room on the data directory's file system and
// the database, reopened, takes a synced write again; then it is `ok` without a restart. Each transition
// is logged and handed to the owner (who audits it); the state and its reason are in the status.
import { statfs } from 'node:fs/promises';
import { isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { CommitQueue, WriteFailure } from './commit-queue.ts';

const MiB = 1024 * 1024;

/** Between recovery attempts while degraded. */
export const RECOVERY_CHECK_MS = 2000;
/**
 * Free bytes the data directory's file system must have before a reopen is tried: reopening replays
 * LevelDB's log into a new table (up to its 4 MiB write buffer) and starts a new log, and a reopen that
 * fails for room leaves the database closed (reads fail too) until the next attempt.
 */
export const RECOVERY_MIN_FREE_BYTES = 8 * MiB;

export interface StoreHealth {
  readonly state: 'ok' | 'degraded';
  /** While degraded: the error code and a reason without patient data (an OS error and a file name). */
  readonly code?: string;
  readonly reason?: string;
  readonly since?: number;
  /** While degraded: what the last recovery attempt found. */
  readonly lastAttempt?: string;
  readonly lastRecoveredAt?: number;
}

export interface StoreRecoveryOptions {
  /** The store's commit queue (its failures) and its way back (assemble.ts: reopen, probe, resume). */
  readonly store: { readonly writes: Pick<CommitQueue, 'onFailure' | 'failure'>; recover(): Promise<void> };
  readonly dataDir: string;
  readonly logger: Logger;
  readonly onDegraded?: (health: StoreHealth) => void;
  /** `degraded` is the state that just ended. */
  readonly onRecovered?: (degraded: StoreHealth, degradedMs: number) => void;
  readonly checkIntervalMs?: number;
  readonly minFreeBytes?: number;
}

export class StoreRecovery {
  readonly #o: StoreRecoveryOptions;
  #degraded: (StoreHealth & { since: number }) | undefined;
  #lastRecoveredAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempting = false;
  #stopped = false;

  constructor(options: StoreRecoveryOptions) {
    this.#o = options;
    options.store.writes.onFailure((failure) => this.#failed(failure));
    const already = options.store.writes.failure;
    if (already !== undefined) this.#failed(already);
  }

  health(): StoreHealth {
    if (this.#degraded !== undefined) return this.#degraded;
    return { state: 'ok', ...(this.#lastRecoveredAt === undefined ? {} : { lastRecoveredAt: this.#lastRecoveredAt }) };
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #failed(failure: WriteFailure): void {
    if (this.#degraded !== undefined) return;
    this.#degraded = { state: 'degraded', code: 'EDGE_STORE_WRITE_FAILED', reason: describe(failure.cause), since: failure.since };
    this.#o.logger.error('store.degraded', { code: this.#degraded.code, reason: this.#degraded.reason });
    this.#o.onDegraded?.(this.#degraded);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#attempt(), this.#o.checkIntervalMs ?? RECOVERY_CHECK_MS);
    this.#timer.unref();
  }

  async #attempt(): Promise<void> {
    const degraded = this.#degraded;
    if (degraded === undefined || this.#attempting || this.#stopped) return;
    this.#attempting = true;
    try {
      const need = this.#o.minFreeBytes ?? RECOVERY_MIN_FREE_BYTES;
      const free = await freeBytes(this.#o.dataDir);
      if (free < need) {
        this.#degraded = { ...degraded, lastAttempt: `waiting for room: ${free} bytes free, ${need} needed` };
        return;
      }
      try {
        await this.#o.store.recover();
      } catch (err) {
        const why = describe(err);
        this.#degraded = { ...degraded, lastAttempt: `reopen failed: ${why}` };
        this.#o.logger.warn('store.recovery-failed', { reason: why, freeBytes: free });
        return;
      }
      const now = Date.now();
      this.#degraded = undefined;
      this.#lastRecoveredAt = now;
      this.#o.logger.warn('store.recovered', { degradedMs: now - degraded.since, freeBytes: free });
      this.#o.onRecovered?.(degraded, now - degraded.since);
    } finally {
      this.#attempting = false;
      if (this.#degraded !== undefined) this.#schedule();
    }
  }
}

async function freeBytes(dir: string): Promise<number> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return 0;
  }
}

/**
 * The innermost error's message: LevelDB's says what failed and on which file of the data directory
 * ("IO error: …/000012.log: No space left on device"); database values never appear in it.
 */
function describe(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  const code = isEdgeError(e) ? e.code : (e as { code?: unknown } | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return `${typeof code === 'string' && !message.includes(code) ? `${code}: ` : ''}${message}`.slice(0, 300);
}
