// Audit benchmarks (issue 5), one run: (1) sustained audit append while 8 writers commit orders through
// the same store (the box serving orders), (2) export + sign a bundle of N records, (3) verify it.
// Targets: append ≥ 20,000 events/s; export+sign 1,000,000 ≤ 20 s; verify ≤ 20 s.
// Env: AUDIT_BENCH_RECORDS (default 1,000,000), AUDIT_BENCH_APPEND_MS (default 10,000), BENCH_TMP.
// Prints a table and one JSON line (`audit-bench {...}`) for the report.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportBundle, keyFileSigner, verifyBundle } from '../daemon/audit/index.ts';
import { makeTestPki } from '../daemon/audit/testing/pki.ts';
import { silentLogger } from '../daemon/core/log.ts';
import type { KeySource } from '../daemon/core/keys.ts';
import { deriveKeyRing } from '../daemon/security/file-key-source.ts';
import { openStore } from '../daemon/store/index.ts';
import { testOrder } from '../test/support/orders.ts';
import { sampleEvent } from '../test/support/audit-store.ts';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

const RECORDS = Number(process.env['AUDIT_BENCH_RECORDS'] ?? 1_000_000);
const APPEND_MS = Number(process.env['AUDIT_BENCH_APPEND_MS'] ?? 10_000);
const work = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'audit-bench-'));
const pki = makeTestPki();
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const secret = randomBytes(32);
const keySource: KeySource = { backend: 'bench', load: async () => deriveKeyRing(secret) };
const store = await openStore({ dataDir: join(work, 'data'), keySource, replayWindowMs: 3_600_000, logger: silentLogger });

// 1. Sustained append while orders commit (synced group commits) from 8 concurrent writers.
let orders = 0;
let stopOrders = false;
const writers = Array.from({ length: 8 }, async (_, w) => {
  for (let i = 0; !stopOrders; i++) {
    const n = `${w}-${i}`;
    await store.orders.apply([{ type: 'order-upsert', order: testOrder(n) }], { sender: 'RIS^HOSP', controlId: `B${n}`, receivedAt: Date.now() });
    orders++;
  }
});
const started = Date.now();
let appended = 0;
// The producer yields to the event loop every 1,000 records so order commits and fsyncs interleave.
while (Date.now() - started < APPEND_MS) {
  for (let i = 0; i < 1000; i++) store.audit.record(sampleEvent(++appended));
  await new Promise((r) => setImmediate(r));
}
await store.queue.drain();
const appendSeconds = (Date.now() - started) / 1000;
stopOrders = true;
await Promise.all(writers);
const appendRate = appended / appendSeconds;
const orderRate = orders / appendSeconds;

// Top up to RECORDS (plain append, not timed) for the export.
while (store.audit.lastSeq < RECORDS) {
  for (let i = 0; i < 5000 && store.audit.lastSeq < RECORDS; i++) store.audit.record(sampleEvent(store.audit.lastSeq + 1));
  await new Promise((r) => setImmediate(r));
}
await store.queue.drain();

// 2. Export + sign.
const bundle = join(work, 'bundle.tar');
let t0 = Date.now();
const exported = await exportBundle({ trail: store.audit, signer, site: 'bench', fromSeq: 1, toSeq: RECORDS, path: bundle });
const exportSeconds = (Date.now() - t0) / 1000;
const bundleBytes = (await stat(bundle)).size;
await store.close();

// 3. Verify (as edgectl audit verify does, against the CA).
t0 = Date.now();
const report = await verifyBundle(bundle, { trustAnchors: [new X509Certificate(readFileSync(pki.siteCa))] });
const verifySeconds = (Date.now() - t0) / 1000;

const rows = [
  ['audit append while serving orders', `${Math.round(appendRate)} events/s (${orderRate.toFixed(0)} orders/s alongside)`, '≥ 20,000 events/s', appendRate >= 20_000],
  [`export + sign ${exported.manifest.count} records`, `${exportSeconds.toFixed(1)} s (${(bundleBytes / 1048576).toFixed(0)} MiB)`, RECORDS >= 1_000_000 ? '≤ 20 s' : '(scaled run)', exportSeconds <= 20],
  [`verify ${exported.manifest.count} records`, `${verifySeconds.toFixed(1)} s${report.ok ? '' : ' FAILED'}`, RECORDS >= 1_000_000 ? '≤ 20 s' : '(scaled run)', verifySeconds <= 20 && report.ok],
] as const;
for (const [what, measured, target, met] of rows) process.stdout.write(`${what.padEnd(42)} ${measured.padEnd(44)} ${target.padEnd(18)} ${met ? 'met' : 'NOT MET'}\n`);
process.stdout.write(`audit-bench ${JSON.stringify({ appendRate: Math.round(appendRate), orderRate: Math.round(orderRate), records: exported.manifest.count, exportSeconds, verifySeconds, bundleBytes, verified: report.ok })}\n`);
await rm(work, { recursive: true, force: true });
pki.cleanup();
