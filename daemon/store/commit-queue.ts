// Group commit. Writers prepare their operations one at a time (so read-modify-write sees every earlier
// write, committed or not, through the overlay) and then wait for the next synced batch. One fsync
// covers every writer that joined the batch, which is what lets many connections share the disk's
// synced-write rate without ever acknowledging before the data is durable.
import { EdgeError } from '../core/errors.ts';
import type { Database } from './database.ts';

export type Op = { readonly type: 'put'; readonly key: string; readonly value: Buffer } | { readonly type: 'del'; readonly key: string };

/** Why the queue stopped taking writes, since when (its writers were told; nothing of it was acknowledged). */
export interface WriteFailure {
  readonly cause: unknown;
  readonly since: number;
}

interface Pending {
  readonly ops: Op[];
  readonly waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

export class CommitQueue {
  readonly #db: Database;
  /** Writes prepared but not yet known durable: key → value (null = deleted). */
  readonly #overlay = new Map<string, { value: Buffer | null; batch: number }>();
  #pending: Pending = { ops: [], waiters: [] };
  #batchNo = 0;
  #flushing = false;
  #failed: WriteFailure | undefined;
  #onFailure: ((failure: WriteFailure) => void) | undefined;
  /** When the batch being written started (undefined when none is): a write that never ends shows here. */
  #flushStartedAt: number | undefined;
  #prepareChain: Promise<unknown> = Promise.resolve();
  #idle: Promise<void> = Promise.resolve();
  #idleResolve: (() => void) | undefined;
  readonly #maxBatchOps: number;

  constructor(db: Database, options?: { maxBatchOps?: number }) {
    this.#db = db;
    this.#maxBatchOps = options?.maxBatchOps ?? 20_000;
  }

  /** Read through the overlay: a value prepared by an earlier writer wins over the database. */
  async get(key: string): Promise<Buffer | undefined> {
    const o = this.#overlay.get(key);
    if (o !== undefined) return o.value ?? undefined;
    // A synchronous read (LevelDB block cache, microseconds) saves two thread-pool hops on every
    // prepare, which is most of an HL7 message's latency.
    return this.#db.getSync(key);
  }

  /** Keys in [gte, lt) as the database will hold them once pending batches commit. */
  async keys(range: { gte: string; lt: string }): Promise<string[]> {
    const found = new Set<string>();
    for await (const k of this.#db.keys(range)) found.add(k);
    for (const [k, o] of this.#overlay) {
      if (k >= range.gte && k < range.lt) {
        if (o.value === null) found.delete(k);
        else found.add(k);
      }
    }
    return [...found].sort();
  }

  /**
   * Run `prepare` exclusively (no other prepare interleaves), stage the ops it returns, and resolve once
   * they are durably committed. `prepare` returning null stages nothing and resolves at once.
   */
  async commit<T>(prepare: () => Promise<{ ops: Op[]; result: T } | { ops: null; result: T }>): Promise<T> {
    const staged = this.#prepareChain.then(async () => {
      if (this.#failed !== undefined)
        throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'the store stopped after a failed write', { cause: this.#failed.cause });
      const prepared = await prepare();
      if (prepared.ops === null || prepared.ops.length === 0) return { result: prepared.result, durable: Promise.resolve() };
      return { result: prepared.result, durable: this.#stage(prepared.ops) };
    });
    this.#prepareChain = staged.catch(() => undefined);
    const { result, durable } = await staged;
    await durable;
    return result;
  }

  /** Stage ops without waiting for durability (audit records ride along with the next batch). */
  stageDetached(ops: Op[], onDone?: (durable: boolean) => void): void {
    this.#stage(ops).then(
      () => onDone?.(true),
      () => onDone?.(false),
    );
  }

  /** Set while writes are refused after a failed synced write, until recover() succeeds. */
  get failure(): WriteFailure | undefined {
    return this.#failed;
  }

  /** Milliseconds the current synced write has been running (0 when none is). */
  writeAgeMs(now = Date.now()): number {
    return this.#flushStartedAt === undefined ? 0 : now - this.#flushStartedAt;
  }

  /** Called once per failure, when the queue stops taking writes. */
  onFailure(listener: (failure: WriteFailure) => void): void {
    this.#onFailure = listener;
  }

  /**
   * Take writes again after a failure. `reopen` runs exclusively (no prepare runs and nothing is written
   * meanwhile): it reopens the database and returns a synchronous step that resets in-memory state
   * derived from writes that never became durable. Every writer of the failed batches was told, so their
   * overlay entries are dropped and reads go to the reopened database. On a throw the queue stays failed.
   */
  async recover(reopen: () => Promise<() => void>): Promise<void> {
    const run = this.#prepareChain.then(async () => {
      if (this.#failed === undefined) return;
      while (this.#flushing) await this.#idle;
      const resume = await reopen();
      resume();
      this.#overlay.clear();
      this.#failed = undefined;
    });
    this.#prepareChain = run.catch(() => undefined);
    await run;
  }

  /** Resolves when everything staged so far is committed (or failed). */
  async drain(): Promise<void> {
    await this.#prepareChain;
    while (this.#flushing || this.#pending.ops.length > 0) await this.#idle;
  }

  #stage(ops: Op[]): Promise<void> {
    // Nothing joins the overlay while failed: recover() must find only the failed batches' entries there.
    if (this.#failed !== undefined)
      return Promise.reject(
        new EdgeError('EDGE_STORE_WRITE_FAILED', 'the store stopped after a failed write', { cause: this.#failed.cause }),
      );
    const batch = this.#batchNo;
    for (const op of ops) this.#overlay.set(op.key, { value: op.type === 'put' ? op.value : null, batch });
    for (const op of ops) this.#pending.ops.push(op);
    const p = new Promise<void>((resolve, reject) => this.#pending.waiters.push({ resolve, reject }));
    this.#kick();
    return p;
  }

  #kick(): void {
    if (this.#flushing || this.#pending.ops.length === 0) return;
    this.#flushing = true;
    this.#idle = new Promise((r) => (this.#idleResolve = r));
    // Let every writer that is ready in this turn join the batch before the fsync.
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    while (this.#pending.ops.length > 0) {
      const batch = this.#pending;
      const batchNo = this.#batchNo++;
      this.#pending = { ops: [], waiters: [] };
      this.#flushStartedAt = Date.now();
      try {
        for (let i = 0; i < batch.ops.length; i += this.#maxBatchOps) {
          await this.#db.batch(batch.ops.slice(i, i + this.#maxBatchOps), { sync: true });
        }
        for (const [k, o] of this.#overlay) if (o.batch <= batchNo) this.#overlay.delete(k);
        for (const w of batch.waiters) w.resolve();
      } catch (cause) {
        // A failed synced write leaves the overlay ahead of the disk (and LevelDB refuses every later
        // write until it is reopened): stop taking writes rather than acknowledge anything prepared on
        // top of it, until recover().
        this.#failed = { cause, since: Date.now() };
        this.#onFailure?.(this.#failed);
        const err = new EdgeError('EDGE_STORE_WRITE_FAILED', undefined, { cause });
        for (const w of batch.waiters) w.reject(err);
        for (const w of this.#pending.waiters) w.reject(err);
        this.#pending = { ops: [], waiters: [] };
      } finally {
        this.#flushStartedAt = undefined;
      }
    }
    this.#flushing = false;
    this.#idleResolve?.();
  }
}
