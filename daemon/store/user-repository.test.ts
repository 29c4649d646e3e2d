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
import { type UserRecord, userKey } from './user-repository.ts';

const secret = randomBytes(32);
const keySource: KeySource = { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) };

const admin: UserRecord = {
  username: 'field-admin',
  role: 'admin',
  password: { alg: 'scrypt', N: 32_768, r: 8, p: 1, salt: 'c2FsdA==', hash: 'aGFzaA==' },
  mustChange: true,
  createdAt: 1_700_000_000_000,
};

test('a user is written sealed, read back after a reopen, and a second one of the same name is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-users-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  await store.users.create(admin);
  await t.throwsAsync(store.users.create({ ...admin, role: 'viewer' }), { message: /exists/ });
  await store.close();
  const raw = await withDatabaseFiles(dir, (db) => db.get(userKey(admin.username)));
  t.truthy(raw, 'the record is in the database files');
  t.false(
    Buffer.from(raw as Uint8Array)
      .toString('latin1')
      .includes('scrypt'),
    'the record is sealed at rest',
  );

  const again = await openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  t.teardown(() => again.close());
  t.deepEqual(await again.users.get(admin.username), admin);
  t.is(await again.users.get('nobody'), undefined);
});
