import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataKeyRotation, KeyRing } from '../core/keys.ts';
import { CommitQueue } from './commit-queue.ts';
import { openDatabase } from './database.ts';
import { countByKeyId, rotateDataKey } from './rekey.ts';
import { ValueCodec } from './value-codec.ts';

const key = (b: number) => new Uint8Array(32).fill(b);

test('rotation re-encrypts every value while writers keep committing; the index key stays', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rekey-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = await openDatabase(dir);
  const ring = new KeyRing(key(9), [[1, key(1)]], 1);
  const indexKey = ring.indexKey;
  const queue = new CommitQueue(db);
  const codec = new ValueCodec(ring);
  const put = (k: string, v: string) =>
    queue.commit(async () => ({ ops: [{ type: 'put' as const, key: k, value: codec.seal(k, Buffer.from(v)) }], result: undefined }));
  for (let i = 0; i < 5000; i++) await put(`o\u0000${i}`, `v${i}`);
  await queue.commit(async () => ({ ops: [{ type: 'put' as const, key: 'p\u0000idx', value: Buffer.alloc(0) }], result: undefined }));
  const retired: number[] = [];
  const rotation: DataKeyRotation = {
    addDataKey: async (r) => (r.add(2, key(2)), 2),
    activate: async (r, id) => r.activate(id),
    retire: async (r, id) => (r.remove(id), void retired.push(id)),
  };
  let writes = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) await put(`o\u0000w${writes++}`, 'during');
  })();
  const result = await rotateDataKey({ db, queue, codec }, ring, rotation, { batchSize: 500 });
  stop = true;
  await writer;
  t.deepEqual(result.retiredKeyIds, [1]);
  t.deepEqual(retired, [1]);
  t.true(writes > 0);
  t.is(ring.indexKey, indexKey);
  t.deepEqual(ring.keyIds, [2]);
  const counts = await countByKeyId(db);
  t.is(counts.get(1), undefined);
  t.is(counts.get(2), 5000 + writes);
  t.is(codec.open('o\u00004999', (await db.get('o\u00004999'))!).toString(), 'v4999');
  t.is((await db.get('p\u0000idx'))!.length, 0);
  await db.close();
});

test('KeyRing refuses to remove the active key and zeroes removed keys', (t) => {
  const k1 = key(1);
  const ring = new KeyRing(
    key(9),
    [
      [1, k1],
      [2, key(2)],
    ],
    2,
  );
  t.throws(() => ring.remove(2));
  ring.remove(1);
  t.true(k1.every((b) => b === 0));
  t.is(ring.dataKey(1), undefined);
});
