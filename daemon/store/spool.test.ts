// The spool's write path: prepared files (durable directory entries made ahead), large objects through
// the reused write buffers with background flushes, bounded memory, discard, and tamper detection.
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { SpooledInstanceMeta, SpoolWriter } from '../core/instance-spool.ts';
import { EARLY_SYNC_BYTES } from './spool-file.ts';
import { openTestSpool, testKeyRing } from './testing/test-spool.ts';
import { poll } from '../../test/support/wait.ts';

const meta = (uid: string): SpooledInstanceMeta => ({
  sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
  sopInstanceUid: uid,
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  callingAeTitle: 'CT01',
});

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-spool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Feed `total` bytes in fragments of uneven sizes (as PDVs arrive), honouring back-pressure; returns their SHA-256. */
async function feed(w: SpoolWriter, total: number, onWait?: () => void): Promise<string> {
  const hash = createHash('sha256');
  const block = randomBytes(1 << 20);
  let sent = 0;
  let i = 0;
  while (sent < total) {
    const size = Math.min(total - sent, [16_378, 65_530, 131_066, 7][i++ % 4]!);
    const fragment = Buffer.from(block.subarray(sent % (block.length - size), (sent % (block.length - size)) + size));
    hash.update(fragment);
    sent += size;
    const wait = w.write(fragment);
    if (wait !== undefined) {
      onWait?.();
      await wait;
    }
  }
  return hash.digest('hex');
}

test('prepared files: made when instances start arriving, taken by the next ones, removed when idle and at a restart', async (t) => {
  const dir = await tempDir(t);
  const ring = testKeyRing();
  let s = await openTestSpool(dir, { preparedFiles: 4, preparedIdleMs: 60_000 }, ring);
  t.deepEqual(await readdir(s.spoolDir), [], 'an idle spool holds instances only');
  // The first instance of a burst creates its own file and sets the preparation going.
  const first = s.spool.begin();
  await feed(first, 10_000);
  const one = await first.commit(meta('1.2.3.0'));
  await s.spool.whenPrepared();
  const prepared = new Set((await readdir(s.spoolDir)).filter((n) => n !== one.instance.fileId));
  t.is(prepared.size, 4);
  const w = s.spool.begin();
  const digest = await feed(w, 300_000);
  const { instance } = await w.commit(meta('1.2.3.1'));
  t.true(prepared.has(instance.fileId), 'the instance was written into a prepared file');
  const h = createHash('sha256');
  for await (const c of s.spool.read(instance)) h.update(c);
  t.is(h.digest('hex'), digest);
  // A discarded instance's prepared file is removed, not reused.
  const d = s.spool.begin();
  await feed(d, 5000);
  await d.discard();
  await s.spool.whenPrepared();
  // A crash leaves prepared files behind: records exist only for the two instances, the rest are orphans.
  const leftBehind = await readdir(s.spoolDir);
  t.true(leftBehind.length > 2);
  await s.close();
  t.deepEqual((await readdir(s.spoolDir)).sort(), [one.instance.fileId, instance.fileId].sort(), 'close removes the prepared files');

  s = await openTestSpool(dir, { preparedFiles: 2, preparedIdleMs: 50 }, ring);
  t.teardown(() => s.close());
  t.is(s.spool.usage().instances, 2);
  const again = s.spool.begin();
  await feed(again, 1000);
  await again.commit(meta('1.2.3.9'));
  await s.spool.whenPrepared();
  t.is((await readdir(s.spoolDir)).length, 3 + 2);
  // After the idle spell only the instances are left.
  await poll(async () => (await readdir(s.spoolDir)).length <= 3, 2000, 20);
  t.is((await readdir(s.spoolDir)).length, 3);
});

test('a restart removes prepared files a crash left behind', async (t) => {
  const dir = await tempDir(t);
  const ring = testKeyRing();
  const s = await openTestSpool(dir, { preparedFiles: 3, preparedIdleMs: 60_000 }, ring);
  const w = s.spool.begin();
  await feed(w, 10_000);
  const { instance } = await w.commit(meta('1.2.4.1'));
  await s.spool.whenPrepared();
  t.is((await readdir(s.spoolDir)).length, 4);
  // No s.close(): as after kill -9, the prepared files stay on disk (their handles are closed at the end).
  t.teardown(() => s.spool.close());
  await s.db.close();
  const reopened = await openTestSpool(dir, {}, ring);
  t.teardown(() => reopened.close());
  t.deepEqual(await readdir(reopened.spoolDir), [instance.fileId]);
});

test('without prepared files every instance creates its own file (and nothing is left after a discard)', async (t) => {
  const dir = await tempDir(t);
  const s = await openTestSpool(dir);
  t.teardown(() => s.close());
  t.deepEqual(await readdir(s.spoolDir), []);
  const w = s.spool.begin();
  await feed(w, 70_000);
  const { instance } = await w.commit(meta('1.2.3.2'));
  t.deepEqual(await readdir(s.spoolDir), [instance.fileId]);
  const d = s.spool.begin();
  await feed(d, 70_000);
  await d.discard();
  t.deepEqual(await readdir(s.spoolDir), [instance.fileId]);
});

// Serial: ava runs serial tests alone, so the process's array buffers are this test's.
test.serial(
  'a large object streams through bounded write buffers (back-pressure, background flushes) and reads back byte for byte',
  async (t) => {
    const dir = await tempDir(t);
    const s = await openTestSpool(dir, { preparedFiles: 2 });
    t.teardown(() => s.close());
    const total = 4 * EARLY_SYNC_BYTES + 123_457;
    const w = s.spool.begin();
    let waits = 0;
    let peakBuffers = 0;
    const digest = await feed(w, total, () => {
      waits++;
      peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers);
    });
    const { instance } = await w.commit(meta('1.2.3.3'));
    t.is(instance.bytes, total);
    t.true(waits > 0, 'the writer asked its feeder to wait at least once');
    // Header, 1 MiB chunks with their tags, terminator tag.
    const chunks = Math.ceil(total / (1024 * 1024));
    t.is((await stat(join(s.spoolDir, instance.fileId))).size, 64 + total + 16 * chunks + 16);
    const h = createHash('sha256');
    for await (const c of s.spool.read(instance)) h.update(c);
    t.is(h.digest('hex'), digest);
    // The feeder's own 1 MiB block plus a few write buffers and short-lived garbage: nowhere near the object's size.
    t.true(peakBuffers < total / 3, `array buffers peaked at ${peakBuffers} bytes while spooling ${total}`);
  },
);

test('a truncated spool file fails authentication instead of yielding a partial object', async (t) => {
  const dir = await tempDir(t);
  const s = await openTestSpool(dir, { preparedFiles: 1 });
  t.teardown(() => s.close());
  const w = s.spool.begin();
  await feed(w, 3 * 1024 * 1024 + 5);
  const { instance } = await w.commit(meta('1.2.3.4'));
  const path = join(s.spoolDir, instance.fileId);
  await truncate(path, (await stat(path)).size - 16);
  const err = await t.throwsAsync(async () => {
    for await (const c of s.spool.read(instance)) void c;
  });
  t.is((err as { code?: string }).code, 'EDGE_STORE_DECRYPT_FAILED');
});

test('several instances at once share the prepared files and the commit batches', async (t) => {
  const dir = await tempDir(t);
  const s = await openTestSpool(dir, { preparedFiles: 3 });
  t.teardown(() => s.close());
  const results = await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      const w = s.spool.begin();
      const digest = await feed(w, 200_000 + i);
      const r = await w.commit(meta(`1.2.3.5.${i}`));
      return { digest, instance: r.instance };
    }),
  );
  t.is(s.spool.usage().instances, 10);
  for (const { digest, instance } of results) {
    const h = createHash('sha256');
    for await (const c of s.spool.read(instance)) h.update(c);
    t.is(h.digest('hex'), digest);
  }
  t.is(new Set(results.map((r) => r.instance.fileId)).size, 10);
});

test('a spool file that cannot be removed is logged with its errno, not swallowed; one already gone is not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-spool-rm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const warnings: Array<[string, unknown]> = [];
  const logger = {
    debug() {},
    info() {},
    error() {},
    warn(event: string, fields?: unknown) {
      warnings.push([event, fields]);
    },
    child() {
      return logger;
    },
  };
  const s = await openTestSpool(dir, { logger });
  t.teardown(() => s.close());
  // unlink(2) refuses a directory even for root: a stand-in for a read-only or failing file system.
  const stuck = join(s.spoolDir, 'not-a-file');
  await mkdir(stuck);
  await s.spool.removeFile(stuck);
  await s.spool.removeFile(join(s.spoolDir, 'gone-already'));
  t.is(warnings.length, 1);
  t.is(warnings[0]?.[0], 'spool.remove-failed');
  t.like(warnings[0]?.[1] as object, { why: 'abandoned', file: 'not-a-file' });
  t.regex(String((warnings[0]?.[1] as { code: string }).code), /^E[A-Z]+$/);
});
