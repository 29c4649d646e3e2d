// Test support: a spool (with its database and an outbox) in a temp dir, keys in memory.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type DataKeyRing, KeyRing } from '../../core/keys.ts';
import { silentLogger } from '../../core/log.ts';
import { CommitQueue } from '../commit-queue.ts';
import { type Database, openDatabase } from '../database.ts';
import { LevelOutboxStore } from '../outbox-store.ts';
import { RecordKeys } from '../record-keys.ts';
import { Spool, type SpoolOptions } from '../spool.ts';
import { ValueCodec } from '../value-codec.ts';

export function testKeyRing(): DataKeyRing {
  return new KeyRing(randomBytes(32), [[1, randomBytes(32)]], 1);
}

export interface TestSpool {
  readonly spool: Spool;
  readonly outbox: LevelOutboxStore;
  readonly db: Database;
  readonly ring: DataKeyRing;
  readonly spoolDir: string;
  close(): Promise<void>;
}

export async function openTestSpool(dataDir: string, options: Partial<SpoolOptions> = {}, ring = testKeyRing()): Promise<TestSpool> {
  const db = await openDatabase(dataDir);
  const queue = new CommitQueue(db);
  const codec = new ValueCodec(ring);
  const outbox = await LevelOutboxStore.open(db, queue, codec, silentLogger);
  const spoolDir = options.dir ?? join(dataDir, 'spool');
  const spool = await Spool.open(
    db,
    queue,
    codec,
    ring,
    new RecordKeys(ring.indexKey),
    {
      dir: spoolDir,
      highWaterBytes: 1024 * 1024 * 1024,
      minFreeBytes: 0,
      maxObjectBytes: 4 * 1024 * 1024 * 1024,
      destination: 'pacs',
      logger: silentLogger,
      ...options,
    },
    outbox,
  );
  return {
    spool,
    outbox,
    db,
    ring,
    spoolDir,
    async close() {
      await spool.close();
      await queue.drain();
      await db.close();
    },
  };
}
