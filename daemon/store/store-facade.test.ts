// The store's facade: what openStore hands out names what its users do, and none of the parts below it
// (the database, the commit queue, the codec, the key ring) is reachable from it.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { KeySource } from '../core/keys.ts';
import { silentLogger } from '../core/log.ts';
import { deriveKeyRing } from '../security/file-key-source.ts';
import { openStore } from './index.ts';
import { withDatabaseFiles } from './testing/store-internals.ts';

const secret = randomBytes(32);
const keySource: KeySource = { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) };

test('openStore exposes repositories and named operations, not the database, queue, codec or key ring', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-facade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  t.teardown(() => store.close());
  t.deepEqual(Object.keys(store).sort(), [
    'audit',
    'auditBytes',
    'breakGlass',
    'close',
    'flush',
    'mpps',
    'openSpool',
    'orders',
    'outbox',
    'rotateDataKey',
    'selfTest',
    'users',
    'watchRecovery',
    'writeAgeMs',
    'writeBackup',
  ]);
  const values = Object.values(store) as unknown[];
  for (const internal of ['ClassicLevel', 'CommitQueue', 'ValueCodec', 'KeyRing']) {
    t.false(
      values.some((v) => (v as object | null)?.constructor?.name === internal),
      `the facade hands out a ${internal}`,
    );
  }
});

test('the self-test round-trips a sealed value and leaves nothing behind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-facade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  await store.selfTest();
  await store.close();
  const keys = await withDatabaseFiles(dir, async (db) => {
    const out: string[] = [];
    for await (const k of db.keys()) out.push(k);
    return out;
  });
  t.false(
    keys.some((k) => k.includes('self-test')),
    'the probe value stayed in the database',
  );
});
