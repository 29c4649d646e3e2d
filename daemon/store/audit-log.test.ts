// The stored chain read back: damaged records are found, quarantined byte for byte, and the chain goes on.
import test from 'ava';
import { openDatabase } from './database.ts';
import { QUARANTINE_PREFIX, auditKey } from './audit-log.ts';
import { sampleEvent, tempStore } from '../../test/support/audit-store.ts';

async function flip(dir: string, seq: number): Promise<Buffer> {
  const db = await openDatabase(dir);
  try {
    const v = Buffer.from((await db.get(auditKey(seq)))!);
    v[v.length - 3]! ^= 0x80;
    await db.put(auditKey(seq), v);
    return v;
  } finally {
    await db.close();
  }
}

async function quarantined(dir: string, seq: number): Promise<Buffer | undefined> {
  const db = await openDatabase(dir);
  try {
    return await db.get(`${QUARANTINE_PREFIX}${String(seq).padStart(15, '0')}`);
  } finally {
    await db.close();
  }
}

test('a damaged middle record is found by the read-back, quarantined, and not reported twice', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  for (let i = 1; i <= 3000; i++) ctx.store.audit.record(sampleEvent(i));
  await ctx.store.flush();
  await ctx.store.close();
  const damaged = await flip(`${ctx.dir}/data`, 1500);
  const store = await ctx.reopen();
  t.deepEqual(store.audit.damagedAtOpen, []);
  const v = await store.audit.verifyStored();
  t.true(v.done);
  t.is(v.verifiedSeq, 3000);
  t.deepEqual(
    v.damaged.map((d) => [d.fromSeq, d.toSeq]),
    [[1500, 1500]],
  );
  t.regex(v.damaged[0]!.problem, /unreadable \(EDGE_STORE_DECRYPT_FAILED\)/);
  t.deepEqual(v.brokenLinks, []);
  // The read-back resumes from its cursor: nothing new, nothing re-reported.
  for (let i = 3001; i <= 3010; i++) store.audit.record(sampleEvent(i));
  await store.flush();
  const again = await store.audit.verifyStored();
  t.deepEqual(again.damaged, []);
  t.is(again.verifiedSeq, 3010);
  await ctx.store.close();
  t.deepEqual(await quarantined(`${ctx.dir}/data`, 1500), damaged);
  const reopened = await ctx.reopen();
  t.deepEqual(
    reopened.audit.damaged.map((d) => d.fromSeq),
    [1500],
  );
});

test('damaged newest records do not stop the store from opening; the next record takes the next seq and links over them', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  for (let i = 1; i <= 20; i++) ctx.store.audit.record(sampleEvent(i));
  await ctx.store.flush();
  await ctx.store.close();
  await flip(`${ctx.dir}/data`, 19);
  await flip(`${ctx.dir}/data`, 20);
  const store = await ctx.reopen();
  t.deepEqual(
    store.audit.damagedAtOpen.map((d) => [d.fromSeq, d.toSeq]),
    [[19, 20]],
  );
  t.is(store.audit.lastSeq, 20);
  let hash18 = '';
  for await (const r of store.audit.read(18, 18)) hash18 = r.hash;
  store.audit.record(sampleEvent(21));
  await store.flush();
  const records = [];
  for await (const r of store.audit.read(1)) records.push(JSON.parse(r.line) as { seq: number; prevHash: string });
  t.deepEqual(records.map((r) => r.seq).slice(-2), [18, 21]);
  t.is(records.at(-1)!.prevHash, hash18);
});
