// The store: one database, one commit queue, the repositories on top. main.ts opens and closes it.
import type { KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { LevelAuditLog } from './audit-log.ts';
import { CommitQueue } from './commit-queue.ts';
import { type Database, openDatabase } from './database.ts';
import { LevelOrderRepository } from './order-repository.ts';
import { RecordKeys } from './record-keys.ts';
import { ValueCodec } from './value-codec.ts';

export { LevelAuditLog, hashRecord, auditKey, type AuditRecord } from './audit-log.ts';
export { LevelOrderRepository } from './order-repository.ts';
export { ValueCodec } from './value-codec.ts';

export interface StoreOptions {
  readonly dataDir: string;
  readonly keySource: KeySource;
  readonly replayWindowMs: number;
  readonly logger: Logger;
}

export interface Store {
  readonly db: Database;
  readonly orders: LevelOrderRepository;
  readonly audit: LevelAuditLog;
  readonly queue: CommitQueue;
  close(): Promise<void>;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  const ring = await options.keySource.load();
  const db = await openDatabase(options.dataDir);
  const codec = new ValueCodec(ring);
  const queue = new CommitQueue(db);
  const keys = new RecordKeys(ring.indexKey);
  const orders = new LevelOrderRepository(db, queue, codec, keys, { replayWindowMs: options.replayWindowMs });
  const audit = await LevelAuditLog.open(db, queue, codec, options.logger);
  let closed = false;
  return {
    db,
    orders,
    audit,
    queue,
    async close() {
      if (closed) return;
      closed = true;
      await queue.drain();
      await db.close();
      ring.destroy();
    },
  };
}
