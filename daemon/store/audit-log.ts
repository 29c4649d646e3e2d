// The audit trail's durable half: an append-only, encrypted, hash-linked record list. Each record holds
// the SHA-256 of the one before it, so an edit, deletion or reordering breaks the chain. Appends ride
// along with the next synced batch and never hold up a clinical write.
import { createHash } from 'node:crypto';
import type { AuditEvent, AuditSink } from '../core/audit.ts';
import type { Logger } from '../core/log.ts';
import type { CommitQueue } from './commit-queue.ts';
import type { Database } from './database.ts';
import { Prefix, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export interface AuditRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly event: AuditEvent;
}

const GENESIS = '0'.repeat(64);

export function auditKey(seq: number): string {
  return `${Prefix.audit}\u0000${String(seq).padStart(15, '0')}`;
}

export function hashRecord(record: AuditRecord): string {
  return createHash('sha256').update(JSON.stringify(record)).digest('hex');
}

export class LevelAuditLog implements AuditSink {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #logger: Logger;
  #seq = 0;
  #lastHash = GENESIS;

  private constructor(queue: CommitQueue, codec: ValueCodec, logger: Logger) {
    this.#queue = queue;
    this.#codec = codec;
    this.#logger = logger;
  }

  static async open(db: Database, queue: CommitQueue, codec: ValueCodec, logger: Logger): Promise<LevelAuditLog> {
    const log = new LevelAuditLog(queue, codec, logger);
    for await (const [key, value] of db.iterator({ ...rangeOf(Prefix.audit), reverse: true, limit: 1 })) {
      const last = JSON.parse(codec.open(key, value).toString('utf8')) as AuditRecord;
      log.#seq = last.seq;
      log.#lastHash = hashRecord(last);
    }
    return log;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  record(event: AuditEvent): void {
    try {
      const record: AuditRecord = { seq: this.#seq + 1, prevHash: this.#lastHash, event };
      const key = auditKey(record.seq);
      const value = this.#codec.seal(key, Buffer.from(JSON.stringify(record), 'utf8'));
      this.#seq = record.seq;
      this.#lastHash = hashRecord(record);
      this.#queue.stageDetached([{ type: 'put', key, value }]);
    } catch (err) {
      // The clinical flow goes on; the gap is loud in the log.
      this.#logger.error('audit.append-failed', { type: event.type, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Records in sequence order, decrypted (for verification and export). */
  async *records(db: Database): AsyncIterable<AuditRecord> {
    for await (const [key, value] of db.iterator(rangeOf(Prefix.audit))) {
      yield JSON.parse(this.#codec.open(key, value).toString('utf8')) as AuditRecord;
    }
  }
}
