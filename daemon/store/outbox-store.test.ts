import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { KeySource } from '../core/keys.ts';
import { silentLogger } from '../core/log.ts';
import { deriveKeyRing } from '../security/file-key-source.ts';
import { openStore, type Store } from './index.ts';
import { openStoreWithInternals, withDatabaseFiles } from './testing/store-internals.ts';
import { queuedKey } from './outbox-store.ts';

const secret = randomBytes(32);
const keySource: KeySource = { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) };

async function withDir(fn: (open: () => Promise<Store>, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-outbox-'));
  const open = () => openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    await fn(open, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const entry = (key: string, n: number) => ({ destination: 'ris', orderingKey: key, kind: 'test', payload: { n, patient: 'DOE^JANE' } });

test('entries survive a restart in id order, encrypted, and ids keep increasing after it', async (t) => {
  await withDir(async (open, dir) => {
    let store = await open();
    const made = await store.outbox.enqueue([entry('a', 1), entry('b', 2), entry('a', 3)]);
    t.deepEqual(
      made.map((e) => e.attempts),
      [0, 0, 0],
    );
    t.true(made[0]!.id < made[1]!.id && made[1]!.id < made[2]!.id);
    await store.close();
    const raw = await withDatabaseFiles(dir, (db) => db.get(queuedKey('ris', made[0]!.id)));
    t.false(raw!.toString('latin1').includes('DOE^JANE'), 'payload is sealed');
    store = await open();
    t.deepEqual(
      store.outbox.queued('ris').map((e) => (e.payload as { n: number }).n),
      [1, 2, 3],
    );
    const later = await store.outbox.enqueue([entry('c', 4)]);
    t.true(later[0]!.id > made[2]!.id);
    await store.close();
  });
});

test('settle deletes delivered, reschedules retried and dead-letters rejected; requeue and discard', async (t) => {
  await withDir(async (open) => {
    let store = await open();
    const [a, b, c] = await store.outbox.enqueue([entry('a', 1), entry('b', 2), entry('c', 3)]);
    const err = { code: 'EDGE_HL7_OUTBOUND_REJECTED', peerStatus: 'AR', message: 'no', at: 1 } as const;
    await store.outbox.settle([
      { outcome: 'delivered', entry: a! },
      { outcome: 'retry', entry: b!, error: err, nextAttemptAt: 99 },
      { outcome: 'rejected', entry: c!, error: err },
    ]);
    await store.close();
    store = await open();
    t.deepEqual(
      store.outbox.queued('ris').map((e) => [e.id, e.attempts, e.nextAttemptAt]),
      [[b!.id, 1, 99]],
    );
    t.deepEqual(
      store.outbox.deadLetters().map((d) => [d.entry.id, d.reason.code]),
      [[c!.id, 'EDGE_HL7_OUTBOUND_REJECTED']],
    );
    t.is(await store.outbox.requeue({ id: c!.id }, 5), 1);
    t.deepEqual(
      store.outbox.queued('ris').map((e) => e.id),
      [b!.id, c!.id],
    );
    // Dead-lettered at its refusal bound, then retried by a person: the bound starts again.
    await store.outbox.settle([
      { outcome: 'rejected', entry: { ...store.outbox.queued('ris')[1]!, refusals: 10, firstRefusedAt: 1 }, error: err },
    ]);
    t.deepEqual(
      store.outbox.deadLetters().map((d) => d.entry.refusals),
      [10],
    );
    t.is(await store.outbox.requeue({ id: c!.id }, 5), 1);
    t.deepEqual(
      store.outbox.queued('ris').map((e) => [e.id, e.attempts, e.refusals, e.firstRefusedAt]),
      [
        [b!.id, 1, undefined, undefined],
        [c!.id, 0, undefined, undefined],
      ],
    );
    await store.outbox.settle([{ outcome: 'rejected', entry: store.outbox.queued('ris')[1]!, error: err }]);
    t.true(await store.outbox.discard(c!.id));
    t.false(await store.outbox.discard(c!.id));
    t.is(await store.outbox.hurry('ris', 10), 1);
    await store.close();
    store = await open();
    t.deepEqual(store.outbox.deadLetters(), []);
    t.deepEqual(
      store.outbox.queued('ris').map((e) => e.nextAttemptAt),
      [10],
    );
    await store.close();
  });
});

test('entries staged inside another commit become durable with it and visible on publish', async (t) => {
  await withDir(async (_open, dir) => {
    // Another repository's commit: the commit queue is below the facade.
    const { store, internals } = await openStoreWithInternals({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
    const staged = await internals.queue.commit(async () => {
      const s = store.outbox.stage([entry('a', 1)], Date.now());
      return { ops: [{ type: 'put' as const, key: 'z\u0000test', value: Buffer.from('x') }, ...s.ops], result: s };
    });
    t.is(store.outbox.queued('ris').length, 0, 'not visible before publish');
    let woke = '';
    store.outbox.onChange((d) => (woke = d));
    store.outbox.publish(staged);
    t.is(woke, 'ris');
    t.is(store.outbox.queued('ris').length, 1);
    await store.close();
  });
});
