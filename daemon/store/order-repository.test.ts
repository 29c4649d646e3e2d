import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '../core/log.ts';
import type { KeySource } from '../core/keys.ts';
import type { WorklistItem } from '../core/order.ts';
import type { WorklistFilter } from '../core/ports.ts';
import { deriveKeyRing } from '../security/file-key-source.ts';
import { testOrder, testPatient, testStep } from '../../test/support/orders.ts';
import { openStore, type Store } from './index.ts';
import { withDatabaseFiles } from './testing/store-internals.ts';

const secret = randomBytes(32);
const keySource: KeySource = { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) };

async function withStore(fn: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
  const store = await openStore({ dataDir: dir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function items(store: Store, filter: WorklistFilter = {}): Promise<WorklistItem[]> {
  const out: WorklistItem[] = [];
  for await (const i of store.orders.worklist(filter)) out.push(i);
  return out;
}

const receipt = (id: string) => ({ sender: 'RIS^GENHOSP', controlId: id, receivedAt: Date.now() });

test('an upserted order appears on the worklist, once per step, and a cancel removes it', async (t) => {
  await withStore(async (store) => {
    const order = testOrder(1, { steps: [testStep({ id: 'A' }), testStep({ id: 'B', stationAeTitle: 'CT02' })] });
    const r = await store.orders.apply([{ type: 'order-upsert', order }], receipt('1'));
    t.deepEqual(r, { status: 'committed', changedItems: 2, unknownOrders: 0 });
    t.is((await items(store)).length, 2);
    t.deepEqual(
      (await items(store, { stationAeTitles: ['CT02'] })).map((i) => i.step.id),
      ['B'],
    );
    await store.orders.apply(
      [{ type: 'order-status', placerOrderNumber: 'PLC1', placerIssuer: '', status: 'cancelled', source: order.source }],
      receipt('2'),
    );
    t.is((await items(store)).length, 0);
  });
});

test('a replayed control id from the same sender is refused and changes nothing', async (t) => {
  await withStore(async (store) => {
    await store.orders.apply([{ type: 'order-upsert', order: testOrder(1) }], receipt('X'));
    const again = await store.orders.apply([{ type: 'order-upsert', order: testOrder(2) }], receipt('X'));
    t.deepEqual(again, { status: 'duplicate' });
    t.is((await items(store)).length, 1);
    const other = await store.orders.apply([{ type: 'order-upsert', order: testOrder(2) }], { ...receipt('X'), sender: 'OTHER^FAC' });
    t.is(other.status, 'committed');
  });
});

test('date range and station filters narrow the scan', async (t) => {
  await withStore(async (store) => {
    const dates = ['20261124', '20261125', '20261126'];
    let n = 0;
    for (const d of dates) {
      for (const st of ['CT01', 'CT02']) {
        n++;
        await store.orders.apply(
          [{ type: 'order-upsert', order: testOrder(n, { steps: [testStep({ startDate: d, stationAeTitle: st })] }) }],
          receipt(String(n)),
        );
      }
    }
    t.is((await items(store, { startDateFrom: '20261125', startDateTo: '20261125' })).length, 2);
    t.is((await items(store, { startDateFrom: '20261125', startDateTo: '20261125', stationAeTitles: ['CT01'] })).length, 1);
    t.is((await items(store, { startDateFrom: '20261125' })).length, 4);
    t.is((await items(store, { startDateTo: '20261124' })).length, 2);
    t.is((await items(store, { modalities: ['MR'] })).length, 0);
  });
});

test('A08 updates every order of the patient; A40 moves orders to the surviving patient', async (t) => {
  await withStore(async (store) => {
    await store.orders.apply([{ type: 'order-upsert', order: testOrder(1, { patient: testPatient({ id: 'P1' }) }) }], receipt('1'));
    await store.orders.apply([{ type: 'order-upsert', order: testOrder(2, { patient: testPatient({ id: 'P1' }) }) }], receipt('2'));
    const src = testOrder(0).source;
    await store.orders.apply(
      [{ type: 'patient-update', patient: testPatient({ id: 'P1', name: 'SMITH^JANE', birthDate: '' }), source: src }],
      receipt('3'),
    );
    const after = await items(store);
    t.deepEqual(
      after.map((i) => i.order.patient.name),
      ['SMITH^JANE', 'SMITH^JANE'],
    );
    t.deepEqual(
      after.map((i) => i.order.patient.birthDate),
      ['19800101', '19800101'],
      'empty fields keep their value',
    );
    await store.orders.apply(
      [
        {
          type: 'patient-merge',
          surviving: testPatient({ id: 'P9', name: 'SMITH^J' }),
          prior: { id: 'P1', issuer: 'GENHOSP' },
          source: src,
        },
      ],
      receipt('4'),
    );
    t.deepEqual(
      (await items(store)).map((i) => i.order.patient.id),
      ['P9', 'P9'],
    );
    // A later update to the prior id finds nothing; an update to the survivor reaches both orders.
    const r = await store.orders.apply(
      [{ type: 'patient-update', patient: testPatient({ id: 'P9', name: 'SMITH^JOAN' }), source: src }],
      receipt('5'),
    );
    t.is(r.status === 'committed' ? r.changedItems : -1, 2);
  });
});

test('a generated Study Instance UID survives an order replacement', async (t) => {
  await withStore(async (store) => {
    await store.orders.apply(
      [{ type: 'order-upsert', order: testOrder(1, { studyInstanceUid: '2.25.1', studyInstanceUidGenerated: true }) }],
      receipt('1'),
    );
    await store.orders.apply(
      [{ type: 'order-upsert', order: testOrder(1, { studyInstanceUid: '2.25.2', studyInstanceUidGenerated: true }) }],
      receipt('2'),
    );
    t.deepEqual(
      (await items(store)).map((i) => i.order.studyInstanceUid),
      ['2.25.1'],
    );
  });
});

test('keys hold no patient data in clear and values are encrypted', async (t) => {
  await withStore(async (store, dir) => {
    const order = testOrder('SECRETACC', { patient: testPatient({ id: 'PATIENTXYZ', name: 'ZEBRA^QUINN' }) });
    await store.orders.apply([{ type: 'order-upsert', order }], receipt('MSGSECRET'));
    await store.close();
    let entries = 0;
    await withDatabaseFiles(dir, async (db) => {
      for await (const [k, v] of db.iterator()) {
        entries++;
        for (const needle of ['PATIENTXYZ', 'ZEBRA', 'SECRETACC', 'MSGSECRET']) {
          t.false(k.includes(needle), `key leaks ${needle}`);
          t.false(v.toString('latin1').includes(needle), `value leaks ${needle}`);
        }
      }
    });
    t.true(entries > 0, 'the database files hold the order');
  });
});

test('concurrent writers share synced batches and each sees the others', async (t) => {
  await withStore(async (store) => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.orders.apply([{ type: 'order-upsert', order: testOrder(i) }], receipt(`c${i}`))),
    );
    t.true(results.every((r) => r.status === 'committed'));
    t.is((await items(store)).length, 200);
  });
});

test('a second store on the same data directory fails with a clear error', async (t) => {
  await withStore(async (_store, dir) => {
    const err = await t.throwsAsync(openStore({ dataDir: dir, keySource, replayWindowMs: 1000, logger: silentLogger }));
    t.is((err as { code?: string }).code, 'EDGE_STORE_LOCKED');
  });
});

test('the audit chain links each record to the one before, across reopen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-audit-'));
  const ev = { eventId: 'SecurityAlert', type: 'config.reloaded', action: 'E', outcome: 0, at: 1, participants: [] } as const;
  let store = await openStore({ dataDir: dir, keySource, replayWindowMs: 1000, logger: silentLogger });
  store.audit.record(ev);
  store.audit.record(ev);
  await store.close();
  store = await openStore({ dataDir: dir, keySource, replayWindowMs: 1000, logger: silentLogger });
  store.audit.record(ev);
  await store.flush();
  const { hashRecord } = await import('./audit-log.ts');
  const recs = [];
  for await (const r of store.audit.records()) recs.push(r);
  t.deepEqual(
    recs.map((r) => r.seq),
    [1, 2, 3],
  );
  t.is(recs[2]?.prevHash, hashRecord(recs[1]!));
  t.is(recs[1]?.prevHash, hashRecord(recs[0]!));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('orders are found by accession number or Study Instance UID, whatever their status, and the index follows changes', async (t) => {
  await withStore(async (store) => {
    await store.orders.apply(
      [{ type: 'order-upsert', order: testOrder(7, { accessionNumber: 'A7', studyInstanceUid: '1.2.7' }) }],
      receipt('r1'),
    );
    t.deepEqual(
      (await store.orders.ordersByReference({ accessionNumber: 'A7' })).map((o) => o.placerOrderNumber),
      ['PLC7'],
    );
    t.deepEqual(
      (await store.orders.ordersByReference({ studyInstanceUid: '1.2.7' })).map((o) => o.placerOrderNumber),
      ['PLC7'],
    );
    await store.orders.apply(
      [{ type: 'order-status', placerOrderNumber: 'PLC7', placerIssuer: '', status: 'completed', source: testOrder(7).source }],
      receipt('r2'),
    );
    t.is((await store.orders.ordersByReference({ accessionNumber: 'A7' }))[0]?.status, 'completed');
    await store.orders.apply(
      [{ type: 'order-upsert', order: testOrder(7, { accessionNumber: 'A8', studyInstanceUid: '1.2.7' }) }],
      receipt('r3'),
    );
    t.deepEqual(await store.orders.ordersByReference({ accessionNumber: 'A7' }), []);
    t.is((await store.orders.ordersByReference({ accessionNumber: 'A8' })).length, 1);
    t.deepEqual(await store.orders.ordersByReference({ accessionNumber: 'nope' }), []);
  });
});
