// The audit trail's durable half: an append-only, encrypted, hash-linked record list. Each record is one
// JSON line holding the SHA-256 of the line before it, so an edit, deletion or reordering breaks the
// chain; signed checkpoints (made by the audit adapter, kept here) also expose a truncated tail. Appends
// ride along with the next synced batch and never hold up a clinical write.
import { hash as sha256Once } from 'node:crypto';
import type { AuditEvent, AuditSink } from '../core/audit.ts';
import { type AuditCheckpoint, type AuditRecord, type AuditTrail, type ChainedRecord, GENESIS_HASH } from '../core/audit-trail.ts';
import type { Environment } from '../core/environment.ts';
import type { Logger } from '../core/log.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { Database } from './database.ts';
import { Prefix, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export type { AuditRecord } from '../core/audit-trail.ts';

const SEP = '\u0000';
const META_CURSOR = `${Prefix.meta}${SEP}audit.cursor${SEP}`;
const META_CHECKPOINT = `${Prefix.meta}${SEP}audit.checkpoint${SEP}`;
const META_ANCHOR = `${Prefix.meta}${SEP}audit.anchor`;
/** The damaged ranges found so far (sealed JSON list): bundles declare them, nothing re-reports them. */
const META_DAMAGED = `${Prefix.meta}${SEP}audit.damaged`;
/** How far the stored chain was read back and checked: {seq, hash} of the last record checked. */
const META_VERIFIED = `${Prefix.meta}${SEP}audit.verified`;
/** Damaged values, moved here byte for byte (never deleted): evidence for forensics. */
export const QUARANTINE_PREFIX = `${Prefix.meta}${SEP}audit.quarantine${SEP}`;
/** Records per read of the chain (bundle export reads millions). */
const READ_BATCH = 1000;
const pad = (seq: number): string => String(seq).padStart(15, '0');

export function auditKey(seq: number): string {
  return `${Prefix.audit}${SEP}${pad(seq)}`;
}

export function hashLine(line: string): string {
  // The one-shot form skips a Hash object per record (append and export hash every record).
  return sha256Once('sha256', line, 'hex');
}

/** The line a record is stored and hashed as (key order seq, prevHash, event, environment). */
export function recordLine(record: AuditRecord): string {
  return JSON.stringify({ seq: record.seq, prevHash: record.prevHash, event: record.event, environment: record.environment });
}

export function hashRecord(record: AuditRecord): string {
  return hashLine(recordLine(record));
}

/** Records found unreadable (or missing) in the stored chain, taken out of it and named. */
export interface DamagedRange {
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly problem: string;
}

/** What one verification pass over the stored chain found. */
export interface ChainVerification {
  /** The chain is checked through this seq. */
  readonly verifiedSeq: number;
  /** Newly found damaged ranges (already quarantined and recorded). */
  readonly damaged: readonly DamagedRange[];
  /** Records that decrypt but do not link to the record before (altered with the key): named, kept in place. */
  readonly brokenLinks: readonly number[];
  /** False when the time budget ran out before the durable head. */
  readonly done: boolean;
}

/** Consecutive seqs with the same problem, as ranges. */
function toRanges(found: ReadonlyArray<{ seq: number; problem: string }>): DamagedRange[] {
  const out: Array<{ fromSeq: number; toSeq: number; problem: string }> = [];
  for (const f of found) {
    const last = out.at(-1);
    if (last !== undefined && last.toSeq + 1 === f.seq && last.problem === f.problem) last.toSeq = f.seq;
    else out.push({ fromSeq: f.seq, toSeq: f.seq, problem: f.problem });
  }
  return out;
}

/** recordLine() always starts so; anything else gets a full parse. */
const LINE_HEAD = /^\{"seq":(\d{1,16}),"prevHash":"([0-9a-f]{64})"/;

/** The line of a stored record and the prevHash it names, or why it cannot be one. */
function openLine(codec: ValueCodec, key: string, value: Buffer, seq: number): { line: string; prevHash: string } | { problem: string } {
  let line: string;
  try {
    line = codec.open(key, value).toString('utf8');
  } catch (err) {
    return { problem: err instanceof Error && 'code' in err ? `unreadable (${String(err.code)})` : 'unreadable' };
  }
  const head = LINE_HEAD.exec(line);
  let r: { seq?: unknown; prevHash?: unknown };
  try {
    r = head === null ? (JSON.parse(line) as typeof r) : { seq: Number(head[1]), prevHash: head[2] };
  } catch {
    return { problem: 'not a JSON record' };
  }
  if (r.seq !== seq || typeof r.prevHash !== 'string') return { problem: 'names another seq than its key' };
  return { line, prevHash: r.prevHash };
}

export class LevelAuditLog implements AuditSink, AuditTrail {
  readonly #db: Database;
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #logger: Logger;
  readonly #environment: Environment | undefined;
  readonly #listeners = new Set<(seq: number) => void>();
  readonly #taps = new Set<(seq: number, event: AuditEvent) => void>();
  #seq = 0;
  #durableSeq = 0;
  #firstSeq = 1;
  #lastHash = GENESIS_HASH;
  #anchor: AuditCheckpoint | undefined;
  #damaged: DamagedRange[] = [];
  #damagedAtOpen: DamagedRange[] = [];
  #openedSeq = 0;
  #verifying: Promise<unknown> = Promise.resolve();
  #failedAppends = 0;
  /** Records sealed in this turn, staged together (one promise and one callback per turn, not per record). */
  #staged: { ops: Op[]; types: string[]; lastSeq: number } | undefined;

  private constructor(db: Database, queue: CommitQueue, codec: ValueCodec, logger: Logger, environment: Environment | undefined) {
    this.#db = db;
    this.#queue = queue;
    this.#codec = codec;
    this.#logger = logger;
    this.#environment = environment;
  }

  /** `environment` (the box's site.environment) goes into every record appended from now on. */
  static async open(
    db: Database,
    queue: CommitQueue,
    codec: ValueCodec,
    logger: Logger,
    environment?: Environment,
  ): Promise<LevelAuditLog> {
    const log = new LevelAuditLog(db, queue, codec, logger, environment);
    const anchor = await db.get(META_ANCHOR);
    if (anchor !== undefined) log.#anchor = JSON.parse(codec.open(META_ANCHOR, anchor).toString('utf8')) as AuditCheckpoint;
    const damaged = await db.get(META_DAMAGED);
    if (damaged !== undefined) log.#damaged = JSON.parse(codec.open(META_DAMAGED, damaged).toString('utf8')) as DamagedRange[];
    // The head: the newest record that opens. Unreadable ones above it are quarantined, and the chain
    // continues after them, linking to the last good record (one bad byte must not stop the box).
    const badHead: Array<{ seq: number; problem: string }> = [];
    for await (const [key, value] of db.iterator({ ...rangeOf(Prefix.audit), reverse: true })) {
      const seq = Number(key.slice(2));
      const opened = openLine(codec, key, value, seq);
      if ('problem' in opened) {
        badHead.unshift({ seq, problem: opened.problem });
        continue;
      }
      log.#seq = seq;
      log.#lastHash = hashLine(opened.line);
      break;
    }
    const lastBad = badHead.at(-1);
    if (lastBad !== undefined) {
      if (log.#seq === 0 && log.#anchor !== undefined) {
        log.#seq = log.#anchor.seq;
        log.#lastHash = log.#anchor.hash;
      }
      log.#damagedAtOpen = toRanges(badHead);
      await log.#quarantine(log.#damagedAtOpen);
    }
    for await (const key of db.keys({ ...rangeOf(Prefix.audit), limit: 1 })) log.#firstSeq = Number(key.slice(2));
    if (log.#seq === 0 && log.#anchor !== undefined) {
      // Everything up to the anchor was pruned and nothing came after: continue the chain from it.
      log.#seq = log.#anchor.seq;
      log.#lastHash = log.#anchor.hash;
    }
    if (log.#seq === 0) log.#firstSeq = 1;
    else if (log.#anchor !== undefined && log.#firstSeq <= log.#anchor.seq) log.#firstSeq = log.#anchor.seq + 1;
    // The next record takes the seq after the damaged ones (seqs are never reused) and links over them.
    if (lastBad !== undefined) log.#seq = Math.max(log.#seq, lastBad.seq);
    log.#durableSeq = log.#seq;
    log.#openedSeq = log.#seq;
    return log;
  }

  /**
   * After the store failed a write and was reopened: read the chain head from disk again and return the
   * synchronous step that adopts it (the commit queue runs it before it takes writes again). Records
   * appended since the failure were never written (each is already counted as a gap); numbering them on
   * would leave a hole in the chain, so the chain continues from the last durable record instead.
   */
  async prepareResume(): Promise<() => void> {
    let head: { seq: number; hash: string } | undefined;
    for await (const [key, value] of this.#db.iterator({ ...rangeOf(Prefix.audit), reverse: true })) {
      const seq = Number(key.slice(2));
      const opened = openLine(this.#codec, key, value, seq);
      // A damaged record is the read-back's to quarantine and name; the chain goes on from the last good one.
      if ('problem' in opened) continue;
      head = { seq, hash: hashLine(opened.line) };
      break;
    }
    head ??= this.#anchor === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: this.#anchor.seq, hash: this.#anchor.hash };
    return () => {
      const staged = this.#staged;
      this.#staged = undefined;
      for (const type of staged?.types ?? []) this.#gap(type, 'the store was recovering');
      this.#seq = head.seq;
      this.#lastHash = head.hash;
      this.#durableSeq = Math.max(this.#durableSeq, head.seq);
    };
  }

  /** The head as the store had it when opened, before this run appended anything. */
  get openedSeq(): number {
    return this.#openedSeq;
  }

  /** Damaged records found at the head when the store was opened (already quarantined). */
  get damagedAtOpen(): readonly DamagedRange[] {
    return this.#damagedAtOpen;
  }

  /** Every damaged range found so far (quarantined, left out of bundles, which declare them). */
  get damaged(): readonly DamagedRange[] {
    return this.#damaged;
  }

  /** Move damaged values under the quarantine prefix (byte for byte) and record their ranges. */
  async #quarantine(ranges: readonly DamagedRange[]): Promise<void> {
    if (ranges.length === 0) return;
    const ops: Op[] = [];
    for (const r of ranges) {
      for await (const [key, value] of this.#db.iterator({ gte: auditKey(r.fromSeq), lte: auditKey(r.toSeq) })) {
        ops.push({ type: 'put', key: `${QUARANTINE_PREFIX}${key.slice(2)}`, value }, { type: 'del', key });
      }
    }
    const all = [...this.#damaged, ...ranges].sort((a, b) => a.fromSeq - b.fromSeq);
    ops.push({ type: 'put', key: META_DAMAGED, value: this.#codec.seal(META_DAMAGED, Buffer.from(JSON.stringify(all), 'utf8')) });
    await this.#queue.commit(async () => ({ ops, result: undefined }));
    this.#damaged = all;
  }

  /**
   * Read the stored chain back from where the last pass stopped and check every record: it opens
   * (AES-GCM authenticates it), says the seq its key says, and links to the record before. Unreadable
   * or missing records are quarantined and recorded as damaged; a record that opens but does not link is
   * named (only someone holding the data key could write it). Stops after `budgetMs` (start-up stays
   * fast; the rest runs in the background) or at `throughSeq`.
   */
  verifyStored(options: { budgetMs?: number; throughSeq?: number } = {}): Promise<ChainVerification> {
    // One pass at a time: the background pass and a bundle's pass must not both quarantine a record.
    const run = this.#verifying.then(() => this.#verifyPass(options));
    this.#verifying = run.catch(() => undefined);
    return run;
  }

  async #verifyPass(options: { budgetMs?: number; throughSeq?: number }): Promise<ChainVerification> {
    const started = performance.now();
    const last = Math.min(options.throughSeq ?? Number.MAX_SAFE_INTEGER, this.#durableSeq);
    const cursorValue = await this.#queue.get(META_VERIFIED);
    let cursor =
      cursorValue === undefined
        ? undefined
        : (JSON.parse(this.#codec.open(META_VERIFIED, cursorValue).toString('utf8')) as { seq: number; hash: string | null });
    // No cursor, one behind what pruning left, or one beyond the chain (its tail was cut, and new records
    // now take those seqs): read back from the start of what is held.
    if (cursor === undefined || cursor.seq < this.#firstSeq - 1 || cursor.seq > this.#durableSeq)
      cursor = { seq: this.#firstSeq - 1, hash: this.anchorHash };
    let expected = cursor.seq + 1;
    let prevHash: string | null = cursor.hash;
    const found: Array<{ seq: number; problem: string }> = [];
    const brokenLinks: number[] = [];
    const known = (seq: number): boolean => this.#damaged.some((d) => d.fromSeq <= seq && seq <= d.toSeq);
    let done = true;
    if (expected <= last) {
      const it = this.#db.iterator({ gte: auditKey(expected), lte: auditKey(last), highWaterMarkBytes: READ_BATCH * 1024 });
      try {
        for (;;) {
          const entries = await it.nextv(READ_BATCH);
          if (entries.length === 0) break;
          for (const [key, value] of entries) {
            const seq = Number(key.slice(2));
            for (; expected < seq; expected++) {
              if (!known(expected)) found.push({ seq: expected, problem: 'missing from the store' });
              prevHash = null;
            }
            const opened = openLine(this.#codec, key, value, seq);
            if ('problem' in opened) {
              found.push({ seq, problem: opened.problem });
              prevHash = null;
            } else {
              if (prevHash !== null && opened.prevHash !== prevHash) brokenLinks.push(seq);
              prevHash = hashLine(opened.line);
            }
            expected = seq + 1;
          }
          if (options.budgetMs !== undefined && performance.now() - started > options.budgetMs) {
            done = expected > last;
            break;
          }
        }
      } finally {
        await it.close();
      }
      if (done) {
        // Records missing at the very end of the checked span (not yet seen by the iterator).
        for (; expected <= last; expected++) {
          if (!known(expected)) found.push({ seq: expected, problem: 'missing from the store' });
          prevHash = null;
        }
      }
    }
    const ranges = toRanges(found);
    await this.#quarantine(ranges);
    const verified = { seq: expected - 1, hash: prevHash };
    await this.#queue.commit(async () => ({
      ops: [{ type: 'put', key: META_VERIFIED, value: this.#codec.seal(META_VERIFIED, Buffer.from(JSON.stringify(verified), 'utf8')) }],
      result: undefined,
    }));
    return { verifiedSeq: verified.seq, damaged: ranges, brokenLinks, done };
  }

  get lastSeq(): number {
    return this.#seq;
  }

  get durableSeq(): number {
    return this.#durableSeq;
  }

  get firstSeq(): number {
    return this.#firstSeq;
  }

  get anchorHash(): string {
    return this.#anchor?.hash ?? GENESIS_HASH;
  }

  get anchor(): AuditCheckpoint | undefined {
    return this.#anchor;
  }

  /** Appends that could not be sealed or written since start (a gap the box reports). */
  get failedAppends(): number {
    return this.#failedAppends;
  }

  record(event: AuditEvent): void {
    try {
      const seq = this.#seq + 1;
      const line = recordLine({ seq, prevHash: this.#lastHash, event, environment: this.#environment });
      const key = auditKey(seq);
      const value = this.#codec.seal(key, Buffer.from(line, 'utf8'));
      this.#seq = seq;
      this.#lastHash = hashLine(line);
      let staged = this.#staged;
      if (staged === undefined) {
        staged = this.#staged = { ops: [], types: [], lastSeq: seq };
        // Staged in a microtask: it still runs before the commit queue's flush (a setImmediate), so the
        // records join the synced batch of this turn, as if each had been staged on its own.
        queueMicrotask(() => this.#stageTurn());
      }
      staged.ops.push({ type: 'put', key, value });
      staged.types.push(event.type);
      staged.lastSeq = seq;
      for (const tap of this.#taps) {
        try {
          tap(seq, event);
        } catch (err) {
          this.#logger.error('audit.listener-failed', { error: err instanceof Error ? err.message : String(err) });
        }
      }
    } catch (err) {
      this.#gap(event.type, err instanceof Error ? err.message : String(err));
    }
  }

  #stageTurn(): void {
    const staged = this.#staged;
    this.#staged = undefined;
    if (staged === undefined) return;
    try {
      this.#queue.stageDetached(staged.ops, (durable) => this.#settled(staged.lastSeq, staged.types, durable));
    } catch (err) {
      for (const type of staged.types) this.#gap(type, err instanceof Error ? err.message : String(err));
    }
  }

  #settled(seq: number, types: readonly string[], durable: boolean): void {
    if (!durable) {
      for (const type of types) this.#gap(type, 'the store refused the write');
      return;
    }
    if (seq <= this.#durableSeq) return;
    this.#durableSeq = seq;
    for (const listener of this.#listeners) {
      try {
        listener(seq);
      } catch (err) {
        this.#logger.error('audit.listener-failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  #gap(type: string, error: string): void {
    // The clinical flow goes on; the gap is loud in the log and counted for the status page.
    this.#failedAppends++;
    this.#logger.error('audit.append-failed', { type, error, failedAppends: this.#failedAppends });
  }

  /**
   * Called synchronously with every record as it is sealed (before it is durable), on the clinical
   * path: a tap only queues the record for later work (the alert rules).
   */
  onRecorded(tap: (seq: number, event: AuditEvent) => void): () => void {
    this.#taps.add(tap);
    return () => this.#taps.delete(tap);
  }

  onDurable(listener: (durableSeq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async *read(fromSeq: number, toSeq?: number): AsyncIterable<ChainedRecord> {
    for await (const batch of this.readBatches(fromSeq, toSeq)) yield* batch;
  }

  async *readBatches(fromSeq: number, toSeq?: number): AsyncIterable<ChainedRecord[]> {
    const last = Math.min(toSeq ?? Number.MAX_SAFE_INTEGER, this.#durableSeq);
    const first = Math.max(fromSeq, 1);
    if (first > last) return;
    // nextv: one native call per thousand records instead of one per record.
    // highWaterMarkBytes: the default (16 KiB) cut every nextv to ~30 records, so the per-call cost
    // (a thread-pool hop and a promise) ran per 30 records instead of per thousand.
    const it = this.#db.iterator({ gte: auditKey(first), lte: auditKey(last), highWaterMarkBytes: READ_BATCH * 1024 });
    let next: Promise<Array<[string, Buffer]>> | undefined;
    try {
      for (;;) {
        const entries = await (next ?? it.nextv(READ_BATCH));
        next = undefined;
        if (entries.length === 0) break;
        // Read ahead: the next batch comes off the disk (in the thread pool) while this one is decrypted
        // and the caller works on it. One nextv at a time, as the iterator requires.
        next = it.nextv(READ_BATCH);
        // Awaited on the next round; a failure meanwhile must not count as an unhandled rejection.
        next.catch(() => undefined);
        yield entries.map(([key, value]) => {
          const line = this.#codec.open(key, value).toString('utf8');
          return { seq: Number(key.slice(2)), line, hash: hashLine(line) };
        });
      }
    } finally {
      if (next !== undefined) await next.catch(() => undefined);
      await it.close();
    }
  }

  /** Records in sequence order, decrypted. */
  async *records(): AsyncIterable<AuditRecord> {
    for await (const r of this.read(1)) yield JSON.parse(r.line) as AuditRecord;
  }

  async cursor(name: string): Promise<number> {
    const key = `${META_CURSOR}${name}`;
    const value = await this.#queue.get(key);
    return value === undefined ? 0 : Number(this.#codec.open(key, value).toString('utf8'));
  }

  async setCursor(name: string, seq: number): Promise<void> {
    const key = `${META_CURSOR}${name}`;
    await this.#queue.commit(async () => ({
      ops: [{ type: 'put', key, value: this.#codec.seal(key, Buffer.from(String(seq))) }],
      result: undefined,
    }));
  }

  async saveCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    const key = `${META_CHECKPOINT}${pad(checkpoint.seq)}`;
    const value = this.#codec.seal(key, Buffer.from(JSON.stringify(checkpoint), 'utf8'));
    await this.#queue.commit(async () => ({ ops: [{ type: 'put', key, value }], result: undefined }));
  }

  async checkpoints(): Promise<AuditCheckpoint[]> {
    const out: AuditCheckpoint[] = [];
    for await (const [key, value] of this.#db.iterator({ gte: META_CHECKPOINT, lt: `${META_CHECKPOINT}\uffff` })) {
      out.push(JSON.parse(this.#codec.open(key, value).toString('utf8')) as AuditCheckpoint);
    }
    return out;
  }

  /**
   * The chain's integrity against the latest checkpoint: a checkpoint beyond the last record, or whose
   * hash differs from the record it names, means records were removed or altered behind the box's back.
   */
  async checkAgainstCheckpoints(): Promise<string | undefined> {
    const all = await this.checkpoints();
    const latest = all.at(-1);
    if (latest === undefined) return undefined;
    if (latest.seq > this.#seq)
      return `the chain ends at seq ${this.#seq} but a signed checkpoint covers seq ${latest.seq} (tail truncated)`;
    if (latest.seq < this.#firstSeq) return undefined;
    if (this.#damaged.some((d) => d.fromSeq <= latest.seq && latest.seq <= d.toSeq)) return undefined;
    for await (const r of this.read(latest.seq, latest.seq)) {
      if (r.hash !== latest.hash) return `record seq ${latest.seq} does not match its signed checkpoint`;
      return undefined;
    }
    return `record seq ${latest.seq} named by a signed checkpoint is missing`;
  }

  async pruneThrough(checkpoint: AuditCheckpoint): Promise<number> {
    if (checkpoint.seq < this.#firstSeq) return 0;
    const from = this.#firstSeq;
    let deleted = 0;
    // In slices, so one prune never builds a giant batch; the anchor goes in with the last slice.
    for (let start = from; start <= checkpoint.seq; start += 10_000) {
      const end = Math.min(checkpoint.seq, start + 9_999);
      const ops: Op[] = [];
      for await (const key of this.#db.keys({ gte: auditKey(start), lte: auditKey(end) })) ops.push({ type: 'del', key });
      if (end === checkpoint.seq) {
        ops.push({ type: 'put', key: META_ANCHOR, value: this.#codec.seal(META_ANCHOR, Buffer.from(JSON.stringify(checkpoint), 'utf8')) });
        for await (const key of this.#db.keys({ gte: META_CHECKPOINT, lt: `${META_CHECKPOINT}${pad(checkpoint.seq)}` }))
          ops.push({ type: 'del', key });
      }
      await this.#queue.commit(async () => ({ ops, result: undefined }));
      deleted += ops.filter((o) => o.type === 'del' && o.key.startsWith(`${Prefix.audit}${SEP}`)).length;
      this.#firstSeq = end + 1;
    }
    this.#anchor = checkpoint;
    return deleted;
  }
}
