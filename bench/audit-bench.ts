// Audit benchmarks (issue 5), one run: (0) 8 writers commit orders alone (the clinical anchor), (1) the
// same 8 writers while the audit trail takes a sustained stream of appends (the box serving orders),
// (2) export + sign a bundle of N records, (3) verify it as `edgectl audit verify` does.
// Targets: append ≥ 20,000 events/s; export+sign 1,000,000 ≤ 20 s; verify ≤ 20 s. Phase 0 and 1 side
// by side show what the appends cost the clinical writes (orders/s, commit latency p50/p99).
// Env: AUDIT_BENCH_RECORDS (default 1,000,000), AUDIT_BENCH_APPEND_MS (default 10,000), BENCH_TMP.
// Prints a table and one JSON line (`audit-bench {...}`) for the report.
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { exportBundle, keyFileSigner, verifyBundle } from '../daemon/audit/index.ts';
import { makeAuditTestPki } from '../test/support/test-pki.ts';
import type { KeySource } from '../daemon/core/keys.ts';
import { silentLogger } from '../daemon/core/log.ts';
import { deriveKeyRing } from '../daemon/security/file-key-source.ts';
import { openStore } from '../daemon/store/index.ts';
import { sampleEvent } from '../test/support/audit-store.ts';
import { testOrder } from '../test/support/orders.ts';

const RECORDS = Number(process.env['AUDIT_BENCH_RECORDS'] ?? 1_000_000);
const APPEND_MS = Number(process.env['AUDIT_BENCH_APPEND_MS'] ?? 10_000);
const ORDERS_MS = Math.max(1000, Math.round(APPEND_MS / 2));
const work = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'audit-bench-'));
const pki = makeAuditTestPki();
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const secret = randomBytes(32);
const keySource: KeySource = { backend: 'bench', load: async () => deriveKeyRing(secret) };
const store = await openStore({ dataDir: join(work, 'data'), keySource, replayWindowMs: 3_600_000, logger: silentLogger });

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** 8 writers commit orders (synced group commits) until stopped; latency of each commit in ms. */
function orderWriters(tag: string): { stop(): Promise<{ orders: number; p50: number; p99: number }> } {
  let stopped = false;
  const latencies: number[] = [];
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const n = `${tag}${w}-${i}`;
      const t = performance.now();
      await store.orders.apply([{ type: 'order-upsert', order: testOrder(n) }], {
        sender: 'RIS^HOSP',
        controlId: `B${n}`,
        receivedAt: Date.now(),
      });
      latencies.push(performance.now() - t);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(writers);
      latencies.sort((a, b) => a - b);
      return { orders: latencies.length, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99) };
    },
  };
}

// 0. Orders alone: the clinical anchor.
let started = performance.now();
let writers = orderWriters('A');
while (performance.now() - started < ORDERS_MS) await new Promise((r) => setTimeout(r, 50));
const alone = await writers.stop();
const aloneRate = alone.orders / ((performance.now() - started) / 1000);

// 1. Sustained append while the same writers commit orders. (a) Paced at the target rate: what a box
// producing 20,000 events/s costs its clinical writes. (b) Unpaced: the most the trail takes while the
// orders go on; the producer yields to the event loop every 1,000 records so order commits and fsyncs
// interleave. The main-thread time of record() itself (seal, hash, stage) is measured apart.
const TARGET_RATE = 20_000;
writers = orderWriters('P');
started = performance.now();
let paced = 0;
while (performance.now() - started < APPEND_MS / 2) {
  const due = Math.floor(((performance.now() - started) / 1000) * TARGET_RATE);
  while (paced < due) store.audit.record(sampleEvent(++paced));
  await new Promise((r) => setTimeout(r, 1));
}
await store.flush();
const pacedSeconds = (performance.now() - started) / 1000;
const atTarget = await writers.stop();
const pacedRate = paced / pacedSeconds;
const atTargetRate = atTarget.orders / pacedSeconds;

writers = orderWriters('B');
started = performance.now();
let appended = 0;
let recordMs = 0;
while (performance.now() - started < APPEND_MS) {
  const t = performance.now();
  for (let i = 0; i < 1000; i++) store.audit.record(sampleEvent(++appended));
  recordMs += performance.now() - t;
  await tick();
}
await store.flush();
const appendSeconds = (performance.now() - started) / 1000;
const busy = await writers.stop();
const appendRate = appended / appendSeconds;
const busyRate = busy.orders / appendSeconds;
const perEventUs = (recordMs * 1000) / appended;

// Top up to RECORDS (plain append, not timed) for the export.
while (store.audit.lastSeq < RECORDS) {
  for (let i = 0; i < 5000 && store.audit.lastSeq < RECORDS; i++) store.audit.record(sampleEvent(store.audit.lastSeq + 1));
  await tick();
}
await store.flush();

// 2. Export + sign.
const bundle = join(work, 'bundle.tar');
let t0 = performance.now();
const cpu0 = process.cpuUsage();
const exported = await exportBundle({ trail: store.audit, signer, site: 'bench', fromSeq: 1, toSeq: RECORDS, path: bundle });
const exportSeconds = (performance.now() - t0) / 1000;
const exportCpu = process.cpuUsage(cpu0);
const bundleBytes = (await stat(bundle)).size;
await store.close();

// 3. Verify (as edgectl audit verify does, against the CA).
t0 = performance.now();
const report = await verifyBundle(bundle, { trustAnchors: [new X509Certificate(readFileSync(pki.siteCa))] });
const verifySeconds = (performance.now() - t0) / 1000;

const n = exported.manifest.count;
const rows = [
  [
    'orders alone (8 writers, anchor)',
    `${aloneRate.toFixed(0)} orders/s, commit p50 ${alone.p50.toFixed(1)} ms p99 ${alone.p99.toFixed(1)} ms`,
    '',
    undefined,
  ],
  [
    `orders + audit paced at ${TARGET_RATE}/s`,
    `${atTargetRate.toFixed(0)} orders/s, commit p50 ${atTarget.p50.toFixed(1)} ms p99 ${atTarget.p99.toFixed(1)} ms; ${Math.round(pacedRate)} events/s kept`,
    '≥ 20,000 events/s',
    pacedRate >= TARGET_RATE * 0.98,
  ],
  [
    'orders + audit unpaced (max rate)',
    `${busyRate.toFixed(0)} orders/s, commit p50 ${busy.p50.toFixed(1)} ms p99 ${busy.p99.toFixed(1)} ms`,
    '',
    undefined,
  ],
  [
    'audit append unpaced, serving orders',
    `${Math.round(appendRate)} events/s (record() ${perEventUs.toFixed(1)} µs/event on the main thread)`,
    '≥ 20,000 events/s',
    appendRate >= 20_000,
  ],
  [
    `export + sign ${n} records`,
    `${exportSeconds.toFixed(1)} s (${(bundleBytes / 1048576).toFixed(0)} MiB, ${(bundleBytes / n).toFixed(0)} B/record, CPU ${((exportCpu.user + exportCpu.system) / 1e6).toFixed(1)} s on ${availableParallelism()} CPUs)`,
    RECORDS >= 1_000_000 ? '≤ 20 s' : '(scaled run)',
    exportSeconds <= 20,
  ],
  [
    `verify ${n} records`,
    `${verifySeconds.toFixed(1)} s${report.ok ? '' : ' FAILED'}`,
    RECORDS >= 1_000_000 ? '≤ 20 s' : '(scaled run)',
    verifySeconds <= 20 && report.ok,
  ],
] as const;
for (const [what, measured, target, met] of rows) {
  process.stdout.write(
    `${what.padEnd(36)} ${measured.padEnd(92)} ${target.padEnd(18)} ${met === undefined ? '' : met ? 'met' : 'NOT MET'}\n`,
  );
}
process.stdout.write(
  `audit-bench ${JSON.stringify({
    appendRate: Math.round(appendRate),
    recordUsPerEvent: Number(perEventUs.toFixed(2)),
    pacedRate: Math.round(pacedRate),
    ordersAlone: Math.round(aloneRate),
    ordersAloneP99Ms: Number(alone.p99.toFixed(2)),
    ordersAtTarget: Math.round(atTargetRate),
    ordersAtTargetP99Ms: Number(atTarget.p99.toFixed(2)),
    ordersUnpaced: Math.round(busyRate),
    ordersUnpacedP99Ms: Number(busy.p99.toFixed(2)),
    records: n,
    exportSeconds,
    exportCpuSeconds: (exportCpu.user + exportCpu.system) / 1e6,
    verifySeconds,
    bundleBytes,
    verified: report.ok,
    cpus: availableParallelism(),
  })}\n`,
);
await rm(work, { recursive: true, force: true });
pki.cleanup();
