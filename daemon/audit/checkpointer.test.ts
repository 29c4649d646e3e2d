// Checkpoints, retention and the store's tail check, on a real store.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import { auditKey } from '../store/audit-log.ts';
import { sampleEvent, tempStore } from '../../test/support/audit-store.ts';
import { exportBundle } from './bundle-export.ts';
import { verifyBundle } from './bundle-verify.ts';
import { AuditCheckpointer, type CheckpointerEvent, checkpointProblem } from './checkpointer.ts';
import { keyFileSigner } from './signer.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';

const pki = makeAuditTestPki();
test.after.always(() => pki.cleanup());
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const ca = new X509Certificate(readFileSync(pki.siteCa));
const DAY = 86_400_000;

test('retention prunes through a signed checkpoint; the rest stays verifiable from it', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  let now = Date.now();
  const events: CheckpointerEvent[] = [];
  const cp = new AuditCheckpointer({
    trail: ctx.store.audit,
    signer,
    site: 'edge-test',
    everyRecords: 1e9,
    everyMs: 3_600_000,
    retentionMs: 10 * DAY,
    logger: silentLogger,
    onEvent: (e) => events.push(e),
    now: () => now,
  });
  for (let i = 1; i <= 10; i++) ctx.store.audit.record(sampleEvent(i, now));
  await ctx.store.flush();
  const first = await cp.checkpoint();
  t.is(first?.seq, 10);
  t.is(checkpointProblem(first!, [ca]), undefined);
  now += 5 * DAY;
  for (let i = 11; i <= 20; i++) ctx.store.audit.record(sampleEvent(i, now));
  await ctx.store.flush();
  await cp.checkpoint();
  t.is(await cp.prune(), 0, 'nothing is older than 10 days yet');
  now += 6 * DAY;
  t.is(await cp.prune(), 10);
  t.deepEqual(
    events.map((e) => e.type),
    ['pruned'],
  );
  t.is(ctx.store.audit.firstSeq, 11);
  t.is(ctx.store.audit.anchorHash, first!.hash);

  // A bundle of what is left starts right after the anchor and carries it.
  const path = join(ctx.dir, 'after-prune.tar');
  const r = await exportBundle({
    trail: ctx.store.audit,
    signer,
    site: 'edge-test',
    fromSeq: 11,
    toSeq: 20,
    path,
    anchor: ctx.store.audit.anchor!,
  });
  t.is(r.manifest.previousHash, first!.hash);
  t.is(r.manifest.anchor?.seq, 10);
  t.true((await verifyBundle(path, { trustAnchors: [ca] })).ok);

  // Reopened, the chain continues from the last record; the anchor is remembered.
  const store = await ctx.reopen();
  t.is(store.audit.firstSeq, 11);
  t.is(store.audit.anchor?.seq, 10);
  t.is(await store.audit.checkAgainstCheckpoints(), undefined);
});

test('a failed retention prune is reported (for the audit trail), not swallowed, and the next prune goes on', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  let now = Date.now();
  let failing = true;
  // The real store, except that deleting fails while `failing` (a full or broken disk).
  const trail = new Proxy(ctx.store.audit, {
    get(target, key) {
      if (key === 'pruneThrough' && failing)
        return async () => {
          throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'disk');
        };
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const events: CheckpointerEvent[] = [];
  const cp = new AuditCheckpointer({
    trail,
    signer,
    site: 'edge-test',
    everyRecords: 1e9,
    everyMs: 3_600_000,
    retentionMs: DAY,
    pruneIntervalMs: 20,
    logger: silentLogger,
    onEvent: (e) => events.push(e),
    now: () => now,
  });
  for (let i = 1; i <= 5; i++) ctx.store.audit.record(sampleEvent(i, now));
  await ctx.store.flush();
  await cp.checkpoint();
  now += 2 * DAY;
  await cp.start();
  t.teardown(() => cp.stop());
  const deadline = Date.now() + 10_000;
  while (!events.some((e) => e.type === 'prune-failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(
    events.find((e) => e.type === 'prune-failed'),
    { type: 'prune-failed', code: 'EDGE_STORE_WRITE_FAILED' },
  );
  t.is(ctx.store.audit.firstSeq, 1, 'nothing was deleted');
  failing = false;
  while (!events.some((e) => e.type === 'pruned') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(
    events.some((e) => e.type === 'pruned'),
    'the next prune deletes what is due',
  );
});

test('a tail truncated behind the box is found against the latest checkpoint', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  const cp = new AuditCheckpointer({
    trail: ctx.store.audit,
    signer,
    site: 'edge-test',
    everyRecords: 1e9,
    everyMs: 3_600_000,
    retentionMs: 365 * DAY,
    logger: silentLogger,
    onEvent: () => undefined,
  });
  for (let i = 1; i <= 8; i++) ctx.store.audit.record(sampleEvent(i));
  await ctx.store.flush();
  await cp.checkpoint();
  t.is(await ctx.store.audit.checkAgainstCheckpoints(), undefined);
  // Someone with the data key deletes the last three records directly in the database.
  const store = await ctx.tamper((db) => db.batch([6, 7, 8].map((s) => ({ type: 'del' as const, key: auditKey(s) }))));
  t.regex((await store.audit.checkAgainstCheckpoints()) ?? '', /ends at seq 5 but a signed checkpoint covers seq 8/);
});

test('checkpoints follow the chain head by count', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  const cp = new AuditCheckpointer({
    trail: ctx.store.audit,
    signer,
    site: 'edge-test',
    everyRecords: 50,
    everyMs: 3_600_000,
    retentionMs: DAY,
    logger: silentLogger,
    onEvent: () => undefined,
  });
  await cp.start();
  // In three turns: records of one turn become durable (and are announced) together.
  for (let turn = 0; turn < 3; turn++) {
    for (let i = 1; i <= 40; i++) ctx.store.audit.record(sampleEvent(turn * 40 + i));
    await ctx.store.flush();
  }
  await cp.stop();
  const all = await ctx.store.audit.checkpoints();
  t.true(all.length >= 2);
  t.is(all.at(-1)?.seq, 120, 'stop signs the head');
  for (const c of all) t.is(checkpointProblem(c, [ca]), undefined);
});
