// A failed synced write, then recovery without a restart, on a real store: what failed is not visible,
// what was durable stays, the store takes writes again and the audit chain goes on without a hole.
import test from 'ava';
import { silentLogger } from '../core/log.ts';
import { GENESIS_HASH } from '../core/audit-trail.ts';
import { sampleEvent, tempStore } from '../../test/support/audit-store.ts';
import { poll } from '../../test/support/wait.ts';

const put = (key: string) => ({ type: 'put' as const, key, value: Buffer.from(key) });

test('a failed write degrades the store; once writes succeed again it recovers by itself and the audit chain has no hole', async (t) => {
  const ts = await tempStore();
  t.teardown(() => ts.cleanup());
  const { store } = ts;
  const { queue } = ts.internals;
  const recovered: number[] = [];
  const recovery = store.watchRecovery({
    dataDir: ts.dir,
    logger: silentLogger,
    checkIntervalMs: 50,
    minFreeBytes: 0,
    onRecovered: (_was, ms) => recovered.push(ms),
  });
  t.teardown(() => recovery.stop());

  for (let i = 0; i < 5; i++) store.audit.record(sampleEvent(i));
  await queue.commit(async () => ({ ops: [put('y\u0000before')], result: undefined }));

  // The disk fails: LevelDB answers every write with its sticky error until reopened.
  const db = ts.internals.db as unknown as Record<'batch' | 'del', (...args: unknown[]) => Promise<void>>;
  let diskFull = true;
  for (const method of ['batch', 'del'] as const) {
    const real = db[method].bind(db);
    db[method] = async (...args: unknown[]) => {
      if (diskFull) throw Object.assign(new Error('IO error: data/db/000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' });
      return real(...args);
    };
  }
  await t.throwsAsync(
    queue.commit(async () => ({ ops: [put('y\u0000failed')], result: undefined })),
    { code: 'EDGE_STORE_WRITE_FAILED' } as never,
  );
  for (let i = 5; i < 8; i++) store.audit.record(sampleEvent(i));
  await t.throwsAsync(
    queue.commit(async () => ({ ops: [put('y\u0000while-failed')], result: undefined })),
    { code: 'EDGE_STORE_WRITE_FAILED' } as never,
  );
  t.is(recovery.health().state, 'degraded');
  t.regex(recovery.health().reason ?? '', /LEVEL_IO_ERROR: IO error: .*No space left on device/);
  await new Promise((r) => setTimeout(r, 200));
  t.is(recovery.health().state, 'degraded', 'recovered while writes still fail');

  diskFull = false;
  await poll(() => recovery.health().state === 'ok', 5000, 20);
  t.is(recovery.health().state, 'ok');
  t.is(recovered.length, 1);
  await queue.commit(async () => ({ ops: [put('y\u0000after')], result: undefined }));
  t.truthy(await queue.get('y\u0000before'));
  t.is(await queue.get('y\u0000failed'), undefined, 'a write that failed became visible');
  t.truthy(await queue.get('y\u0000after'));

  for (let i = 8; i < 11; i++) store.audit.record(sampleEvent(i));
  await store.flush();
  const chain = async (): Promise<number[]> => {
    const seqs: number[] = [];
    let prev = GENESIS_HASH;
    for await (const r of ts.store.audit.read(1)) {
      t.is((JSON.parse(r.line) as { prevHash: string }).prevHash, prev, `record ${r.seq} does not link to the one before`);
      prev = r.hash;
      seqs.push(r.seq);
    }
    return seqs;
  };
  // The 3 records appended while failed are gaps (logged and counted), not holes in the numbering.
  t.deepEqual(await chain(), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.is(store.audit.failedAppends, 3);
  await ts.reopen();
  t.deepEqual(await chain(), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.truthy(await ts.internals.queue.get('y\u0000after'));
});
