// The store: one database, one commit queue, the repositories on top. flows/edge.ts opens it; it closes last.
import type { DataKeyRing, KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { LevelAuditLog } from './audit-log.ts';
import { CommitQueue } from './commit-queue.ts';
import { type Database, openDatabase } from './database.ts';
import { LevelOrderRepository } from './order-repository.ts';
import { LevelOutboxStore } from './outbox-store.ts';
import { LevelMppsRepository } from './mpps-repository.ts';
import { Prefix, RecordKeys, rangeOf } from './record-keys.ts';
import { ValueCodec } from './value-codec.ts';
import { LevelUserRepository } from './user-repository.ts';
import { Spool, type SpoolOptions } from './spool.ts';

export { LevelAuditLog, hashRecord, auditKey, type AuditRecord, type ChainVerification, type DamagedRange } from './audit-log.ts';
export { LevelOrderRepository } from './order-repository.ts';
export { LevelOutboxStore, type StagedEnqueue } from './outbox-store.ts';
export { LevelMppsRepository } from './mpps-repository.ts';
export { ValueCodec } from './value-codec.ts';
export { LevelUserRepository, type UserRecord } from './user-repository.ts';

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
  readonly outbox: LevelOutboxStore;
  readonly mpps: LevelMppsRepository;
  /** Local accounts of the admin page. */
  readonly users: LevelUserRepository;
  readonly queue: CommitQueue;
  /** For data-key rotation (rekey.ts). */
  readonly codec: ValueCodec;
  readonly keyRing: DataKeyRing;
  /**
   * Bytes the audit chain's records take in the database files: LevelDB's estimate from its table
   * index (no scan, cheap enough to ask every minute). The newest records still in the write buffer
   * (at most 4 MiB) are counted once they reach a table.
   */
  auditBytes(): Promise<number>;
  /**
   * Opens the encrypted spool of large DICOM objects beside the database (its entries are in the
   * database, staged with their outbox entries). A start step of its own: it reads the spool folder.
   */
  openSpool(options: SpoolOptions): Promise<Spool>;
  /**
   * After a failed synced write (disk full, I/O error): reopen the database (LevelDB refuses every write
   * after one failed, until it is reopened), prove with a synced write that it takes writes again, and
   * let the commit queue take writes again. Throws, and stays failed, when it does not.
   */
  recover(): Promise<void>;
  close(): Promise<void>;
}

/** Written (deleted: no value to seal) with sync to prove the reopened database takes writes. */
const PROBE_KEY = `${Prefix.meta}\u0000store.probe`;

export async function openStore(options: StoreOptions): Promise<Store> {
  const ring = await options.keySource.load();
  const db = await openDatabase(options.dataDir);
  const codec = new ValueCodec(ring);
  const queue = new CommitQueue(db);
  const keys = new RecordKeys(ring.indexKey);
  const orders = new LevelOrderRepository(db, queue, codec, keys, { replayWindowMs: options.replayWindowMs });
  const audit = await LevelAuditLog.open(db, queue, codec, options.logger);
  const outbox = await LevelOutboxStore.open(db, queue, codec, options.logger);
  const mpps = new LevelMppsRepository(queue, codec, keys, outbox);
  let closed = false;
  return {
    db,
    orders,
    audit,
    outbox,
    mpps,
    users: new LevelUserRepository(queue, codec),
    queue,
    codec,
    keyRing: ring,
    openSpool: (spoolOptions) => Spool.open(db, queue, codec, ring, keys, spoolOptions, outbox),
    auditBytes() {
      const range = rangeOf(Prefix.audit);
      return db.approximateSize(range.gte, range.lt);
    },
    recover: () =>
      queue.recover(async () => {
        await db.close();
        await db.open();
        await db.del(PROBE_KEY, { sync: true });
        return audit.prepareResume();
      }),
    async close() {
      if (closed) return;
      closed = true;
      await queue.drain();
      await db.close();
      ring.destroy();
    },
  };
}
