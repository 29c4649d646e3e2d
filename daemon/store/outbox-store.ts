// The outbox's durable half (implements OutboxRepository from core/outbox.ts).
//
// API summary (for the engineers whose legs use the outbox):
//   const outbox = await LevelOutboxStore.open(db, queue, codec, logger)   // store/index.ts does this
//   await outbox.enqueue([{ destination: 'pacs', orderingKey, kind: 'dicom-instance', payload }])
//       → its own synced commit; entries are visible to the dispatcher once it resolves.
//   Atomically with another record (an MPPS and its status message, a spooled instance and its
//   forward entry), inside your own CommitQueue.commit(prepare):
//       const staged = outbox.stage(newEntries, Date.now());        // in prepare: ops to add to yours
//       return { ops: [...yourOps, ...staged.ops], result };
//       ...after `await queue.commit(...)` resolved:  outbox.publish(staged);
//   A crash between the commit and publish() loses nothing: open() rebuilds the index from disk.
//   queued(destination), deadLetters(), settle(), requeue(), hurry(), discard(): used by the dispatcher
//   (core/outbox-dispatcher.ts) and the control API; do not call settle() yourself.
//
// Layout: queued entries `q\0<destination>\0<id>`, dead letters `x\0<destination>\0<id>`; values are
// sealed JSON (ordering keys and payloads may name patients or orders, so they never appear in a key).
// Ids are 16-digit decimal strings from max(now·1000, last+1): unique, increasing in enqueue order, and
// still increasing after a restart with a clock that went back. The whole queue is indexed in memory
// (entries are small: large objects live in the spool and are referenced by id).
import type { Logger } from '../core/log.ts';
import { EdgeError } from '../core/errors.ts';
import type { DeadLetter, NewOutboxEntry, OutboxEntry, OutboxError, OutboxRepository, SettledEntry } from '../core/outbox.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { Database } from './database.ts';
import { Prefix, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

const SEP = '\u0000';
const ID_DIGITS = 16;

/** Entries staged inside another commit; hand it to publish() once that commit resolved. */
export interface StagedEnqueue {
  readonly ops: Op[];
  readonly entries: readonly OutboxEntry[];
}

interface DeadRecord {
  readonly entry: OutboxEntry;
  readonly reason: OutboxError;
  readonly deadAt: number;
}

export function queuedKey(destination: string, id: string): string {
  return `${Prefix.outboxQueued}${SEP}${destination}${SEP}${id}`;
}

export function deadKey(destination: string, id: string): string {
  return `${Prefix.outboxDead}${SEP}${destination}${SEP}${id}`;
}

export class LevelOutboxStore implements OutboxRepository {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #logger: Logger;
  readonly #queued = new Map<string, Map<string, OutboxEntry>>();
  readonly #dead = new Map<string, DeadLetter>();
  readonly #listeners: Array<(destination: string) => void> = [];
  #lastId = 0;

  private constructor(queue: CommitQueue, codec: ValueCodec, logger: Logger) {
    this.#queue = queue;
    this.#codec = codec;
    this.#logger = logger;
  }

  static async open(db: Database, queue: CommitQueue, codec: ValueCodec, logger: Logger): Promise<LevelOutboxStore> {
    const store = new LevelOutboxStore(queue, codec, logger);
    for await (const [key, value] of db.iterator(rangeOf(Prefix.outboxQueued))) {
      const entry = store.#read<OutboxEntry>(key, value);
      store.#index(entry);
    }
    for await (const [key, value] of db.iterator(rangeOf(Prefix.outboxDead))) {
      const dead = store.#read<DeadRecord>(key, value);
      store.#dead.set(dead.entry.id, dead);
      store.#seen(dead.entry.id);
    }
    let queued = 0;
    for (const m of store.#queued.values()) queued += m.size;
    logger.info('outbox.opened', { queued, deadLetters: store.#dead.size });
    return store;
  }

  /** Ops that enqueue `entries`, for a commit(prepare) of your own. Call publish() after it resolved. */
  stage(entries: readonly NewOutboxEntry[], now: number): StagedEnqueue {
    const ops: Op[] = [];
    const made: OutboxEntry[] = [];
    for (const e of entries) {
      const entry: OutboxEntry = {
        id: this.#nextId(now),
        destination: e.destination,
        orderingKey: e.orderingKey,
        kind: e.kind,
        payload: e.payload,
        enqueuedAt: now,
        attempts: 0,
        nextAttemptAt: now,
      };
      ops.push(this.#put(queuedKey(entry.destination, entry.id), entry));
      made.push(entry);
    }
    return { ops, entries: made };
  }

  /** Make staged entries visible to the dispatcher (their commit is durable). */
  publish(staged: StagedEnqueue): void {
    const touched = new Set<string>();
    for (const entry of staged.entries) {
      this.#index(entry);
      touched.add(entry.destination);
    }
    for (const d of touched) this.#notify(d);
  }

  async enqueue(entries: readonly NewOutboxEntry[]): Promise<readonly OutboxEntry[]> {
    if (entries.length === 0) return [];
    const staged = await this.#queue.commit(async () => {
      const s = this.stage(entries, Date.now());
      return { ops: s.ops, result: s };
    });
    this.publish(staged);
    return staged.entries;
  }

  queued(destination: string): readonly OutboxEntry[] {
    const m = this.#queued.get(destination);
    if (m === undefined) return [];
    return [...m.values()].sort(byId);
  }

  destinations(): readonly string[] {
    const all = new Set<string>();
    for (const [d, m] of this.#queued) if (m.size > 0) all.add(d);
    for (const dl of this.#dead.values()) all.add(dl.entry.destination);
    return [...all].sort();
  }

  queuedCount(destination: string): number {
    return this.#queued.get(destination)?.size ?? 0;
  }

  deadLetters(destination?: string): readonly DeadLetter[] {
    const all = [...this.#dead.values()].filter((d) => destination === undefined || d.entry.destination === destination);
    return all.sort((a, b) => byId(a.entry, b.entry));
  }

  async settle(outcomes: readonly SettledEntry[]): Promise<void> {
    if (outcomes.length === 0) return;
    const now = Date.now();
    await this.#queue.commit(async () => {
      const ops: Op[] = [];
      for (const o of outcomes) {
        const key = queuedKey(o.entry.destination, o.entry.id);
        switch (o.outcome) {
          case 'delivered':
            ops.push({ type: 'del', key });
            break;
          case 'retry':
            ops.push(this.#put(key, retried(o.entry, o.error, o.nextAttemptAt)));
            break;
          case 'rejected': {
            const record: DeadRecord = {
              entry: { ...o.entry, attempts: o.entry.attempts + 1, lastError: o.error },
              reason: o.error,
              deadAt: now,
            };
            ops.push({ type: 'del', key }, this.#put(deadKey(o.entry.destination, o.entry.id), record));
            break;
          }
        }
      }
      return { ops, result: undefined };
    });
    for (const o of outcomes) {
      const m = this.#queued.get(o.entry.destination);
      switch (o.outcome) {
        case 'delivered':
          m?.delete(o.entry.id);
          break;
        case 'retry':
          // A requeue or discard may have raced this batch; only update what is still queued.
          if (m?.has(o.entry.id) === true) m.set(o.entry.id, retried(o.entry, o.error, o.nextAttemptAt));
          break;
        case 'rejected':
          m?.delete(o.entry.id);
          this.#dead.set(o.entry.id, {
            entry: { ...o.entry, attempts: o.entry.attempts + 1, lastError: o.error },
            reason: o.error,
            deadAt: now,
          });
          break;
      }
    }
  }

  async requeue(selector: { readonly id: string } | { readonly destination: string }, now: number): Promise<number> {
    const picked =
      'id' in selector
        ? [this.#dead.get(selector.id)].filter((d): d is DeadLetter => d !== undefined)
        : [...this.#dead.values()].filter((d) => d.entry.destination === selector.destination);
    if ('id' in selector && picked.length === 0) throw new EdgeError('EDGE_OUTBOX_NOT_FOUND', `no dead letter ${selector.id}`);
    if (picked.length === 0) return 0;
    // The entry keeps its id, so it goes out before anything queued after it for the same key. A person
    // retried it: it gets a fresh refusal bound too.
    const revived = picked.map((d): OutboxEntry => {
      const { refusals: _refusals, firstRefusedAt: _firstRefusedAt, ...entry } = d.entry;
      return { ...entry, attempts: 0, nextAttemptAt: now };
    });
    await this.#queue.commit(async () => {
      const ops: Op[] = [];
      for (const e of revived) ops.push({ type: 'del', key: deadKey(e.destination, e.id) }, this.#put(queuedKey(e.destination, e.id), e));
      return { ops, result: undefined };
    });
    const touched = new Set<string>();
    for (const e of revived) {
      this.#dead.delete(e.id);
      this.#index(e);
      touched.add(e.destination);
    }
    for (const d of touched) this.#notify(d);
    return revived.length;
  }

  async hurry(destination: string, now: number): Promise<number> {
    const m = this.#queued.get(destination);
    if (m === undefined || m.size === 0) return 0;
    const due = [...m.values()].filter((e) => e.nextAttemptAt > now).map((e) => ({ ...e, nextAttemptAt: now }));
    if (due.length > 0) {
      await this.#queue.commit(async () => ({ ops: due.map((e) => this.#put(queuedKey(e.destination, e.id), e)), result: undefined }));
      for (const e of due) if (m.has(e.id)) m.set(e.id, e);
    }
    this.#notify(destination);
    return due.length;
  }

  async discard(id: string): Promise<boolean> {
    const d = this.#dead.get(id);
    if (d === undefined) return false;
    await this.#queue.commit(async () => ({ ops: [{ type: 'del', key: deadKey(d.entry.destination, id) }], result: undefined }));
    this.#dead.delete(id);
    return true;
  }

  onChange(listener: (destination: string) => void): void {
    this.#listeners.push(listener);
  }

  #notify(destination: string): void {
    for (const l of this.#listeners) {
      try {
        l(destination);
      } catch (err) {
        this.#logger.error('outbox.listener-failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  #index(entry: OutboxEntry): void {
    let m = this.#queued.get(entry.destination);
    if (m === undefined) {
      m = new Map();
      this.#queued.set(entry.destination, m);
    }
    m.set(entry.id, entry);
    this.#seen(entry.id);
  }

  #seen(id: string): void {
    const n = Number(id);
    if (Number.isSafeInteger(n) && n > this.#lastId) this.#lastId = n;
  }

  #nextId(now: number): string {
    this.#lastId = Math.max(now * 1000, this.#lastId + 1);
    return String(this.#lastId).padStart(ID_DIGITS, '0');
  }

  #put(key: string, value: unknown): Op {
    return { type: 'put', key, value: this.#codec.seal(key, Buffer.from(JSON.stringify(value), 'utf8')) };
  }

  #read<T>(key: string, value: Buffer): T {
    try {
      return JSON.parse(this.#codec.open(key, value).toString('utf8')) as T;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'an outbox record cannot be read', { cause });
    }
  }
}

function retried(entry: OutboxEntry, error: OutboxError, nextAttemptAt: number): OutboxEntry {
  return { ...entry, attempts: entry.attempts + 1, nextAttemptAt, lastError: error };
}

function byId(a: OutboxEntry, b: OutboxEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
