// Puts the store together: the database, the commit queue, the codec and the key ring, and the facade
// (index.ts) over them. Only store/ (and its test-only module, testing/store-internals.ts) sees the parts.
import { EdgeError } from '../core/errors.ts';
import { type DataKeyRing, KeyRing } from '../core/keys.ts';
import { LevelAuditLog } from './audit-log.ts';
import { writeBackup } from './backup.ts';
import { CommitQueue } from './commit-queue.ts';
import { type Database, openDatabase } from './database.ts';
import type { Store, StoreOptions } from './store.ts';
import { LevelMppsRepository } from './mpps-repository.ts';
import { LevelOrderRepository } from './order-repository.ts';
import { LevelOutboxStore } from './outbox-store.ts';
import { Prefix, RecordKeys, rangeOf } from './record-keys.ts';
import { rotateDataKey } from './rekey.ts';
import { Spool } from './spool.ts';
import { StoreRecovery } from './store-recovery.ts';
import { LevelBreakGlassLog } from './break-glass-repository.ts';
import { LevelUserRepository } from './user-repository.ts';
import { ValueCodec } from './value-codec.ts';

export interface StoreInternals {
  readonly db: Database;
  readonly queue: CommitQueue;
  readonly codec: ValueCodec;
  readonly keyRing: DataKeyRing;
}

/** Written (deleted: no value to seal) with sync to prove the reopened database takes writes. */
const PROBE_KEY = `${Prefix.meta}\u0000store.probe`;
/** Sealed, read back and deleted by the self-test (edgectl provision). */
const SELF_TEST_KEY = 'z\u0000provision-self-test';

export async function assembleStore(options: StoreOptions): Promise<{ store: Store; internals: StoreInternals }> {
  const ring = await options.keySource.load();
  const db = await openDatabase(options.dataDir);
  const codec = new ValueCodec(ring);
  const queue = new CommitQueue(db);
  const keys = new RecordKeys(ring.indexKey);
  const orders = new LevelOrderRepository(db, queue, codec, keys, { replayWindowMs: options.replayWindowMs });
  const audit = await LevelAuditLog.open(db, queue, codec, options.logger);
  const outbox = await LevelOutboxStore.open(db, queue, codec, options.logger);
  const mpps = new LevelMppsRepository(queue, codec, keys, outbox);
  // Throws, and the queue stays failed, when the reopened database does not take the probe write.
  const recover = (): Promise<void> =>
    queue.recover(async () => {
      await db.close();
      await db.open();
      await db.del(PROBE_KEY, { sync: true });
      return audit.prepareResume();
    });
  let closed = false;
  const store: Store = {
    orders,
    audit,
    outbox,
    mpps,
    users: new LevelUserRepository(queue, codec),
    breakGlass: new LevelBreakGlassLog(queue, codec),
    flush: () => queue.drain(),
    writeAgeMs: () => queue.writeAgeMs(),
    openSpool: (spoolOptions) => Spool.open(db, queue, codec, ring, keys, spoolOptions, outbox),
    auditBytes() {
      const range = rangeOf(Prefix.audit);
      return db.approximateSize(range.gte, range.lt);
    },
    writeBackup: (path, source) => writeBackup(path, { ...source, db, ring }),
    rotateDataKey(rotation, rekeyOptions = {}) {
      if (!(ring instanceof KeyRing)) throw new EdgeError('EDGE_KEYS_ROTATION_UNSUPPORTED', 'the data key ring cannot take a new key');
      rekeyOptions.onStarted?.(ring.keyIds);
      return rotateDataKey({ db, queue, codec }, ring, rotation, rekeyOptions);
    },
    async selfTest() {
      const payload = Buffer.from(`self-test ${Date.now()}`);
      await queue.commit(async () => ({
        ops: [{ type: 'put', key: SELF_TEST_KEY, value: codec.seal(SELF_TEST_KEY, payload) }],
        result: undefined,
      }));
      const back = await queue.get(SELF_TEST_KEY);
      if (back === undefined || !codec.open(SELF_TEST_KEY, back).equals(payload))
        throw new Error('store self-test: what was written does not read back');
      await queue.commit(async () => ({ ops: [{ type: 'del', key: SELF_TEST_KEY }], result: undefined }));
    },
    watchRecovery: (recoveryOptions) => new StoreRecovery({ ...recoveryOptions, store: { writes: queue, recover } }),
    async close() {
      if (closed) return;
      closed = true;
      await queue.drain();
      await db.close();
      ring.destroy();
    },
  };
  return { store, internals: { db, queue, codec, keyRing: ring } };
}
