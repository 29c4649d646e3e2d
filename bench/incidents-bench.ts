// Incident support benchmarks, one run: (1) the audit append rate with every alert rule on (the rules
// evaluated as in edged: the audit log's tap queues each record, a setImmediate evaluates the batch)
// beside the same stream with no rules, unpaced; (2) a breach-scope report over N records (the whole
// chain read and every link verified). Targets: append ≥ 20,000 events/s with the rules on; report over
// 1,000,000 records ≤ 60 s. The event mix is a department's: worklist queries disclosing 20 patients,
// stored instances, MPPS, orders from the RIS, and refusals.
// Env: INCIDENTS_BENCH_RECORDS (default 1,000,000), INCIDENTS_BENCH_APPEND_MS (default 8,000), BENCH_TMP.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AlertEngine } from '../daemon/audit/alert-engine.ts';
import { alertRules, emptyBaseline, type ObservedRecord } from '../daemon/audit/alert-rules.ts';
import { breachScope } from '../daemon/audit/breach-scope.ts';
import type { AuditEvent } from '../daemon/core/audit.ts';
import type { KeySource } from '../daemon/core/keys.ts';
import { silentLogger } from '../daemon/core/log.ts';
import { WorkingHours } from '../daemon/core/working-hours.ts';
import { deriveKeyRing } from '../daemon/security/file-key-source.ts';
import { openStore, type Store } from '../daemon/store/index.ts';

const RECORDS = Number(process.env['INCIDENTS_BENCH_RECORDS'] ?? 1_000_000);
const APPEND_MS = Number(process.env['INCIDENTS_BENCH_APPEND_MS'] ?? 8_000);
const work = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'incidents-bench-'));
const secret = randomBytes(32);
const keySource: KeySource = { backend: 'bench', load: async () => deriveKeyRing(secret) };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The i-th event of a department's stream. */
function departmentEvent(i: number): AuditEvent {
  const ae = `MOD${i % 10}`;
  const modality = { kind: 'dicom' as const, id: ae, address: `10.1.0.${i % 10}`, requestor: true };
  const box = { kind: 'dicom' as const, id: 'EDGE', requestor: false };
  const at = Date.now();
  const patient = { id: `P${i % 5000}`, issuer: 'H' };
  switch (i % 5) {
    case 0:
      return {
        eventId: 'Query',
        type: 'worklist.query',
        action: 'E',
        outcome: 0,
        at,
        participants: [modality, box],
        disclosed: {
          patients: Array.from({ length: 20 }, (_, k) => ({ id: `P${(i + k) % 200}`, issuer: 'H' })),
          accessionNumbers: [],
          omitted: 0,
        },
        detail: '20 result(s); keys 00100010',
      };
    case 1:
    case 2:
      return {
        eventId: 'DicomInstancesTransferred',
        type: 'dicom.instance-stored',
        action: 'C',
        outcome: 0,
        at,
        participants: [modality, box],
        patient,
        studyInstanceUid: `1.2.3.${i % 5000}`,
        detail: '1.2.840.10008.5.1.4.1.1.2; 524288 bytes',
      };
    case 3:
      return {
        eventId: 'ProcedureRecord',
        type: 'hl7.order-committed',
        action: 'C',
        outcome: 0,
        at,
        participants: [{ kind: 'hl7', id: 'ris', address: '10.2.0.1', requestor: true }],
        patient,
        accessionNumber: `A${i}`,
        detail: 'ORM^O01 order-upsert; 1 worklist item(s) changed',
      };
    default:
      return {
        eventId: 'SecurityAlert',
        type: 'dicom.association-rejected',
        action: 'E',
        outcome: 4,
        at,
        participants: [{ kind: 'dicom', id: 'UNKNOWN', address: `10.9.${i % 250}.1`, requestor: true }],
        detail: 'unknown calling AE title',
      };
  }
}

/** Unpaced append for APPEND_MS (1,000 records per event-loop turn), durable at the end; events/s. */
async function appendRate(store: Store, withRules: boolean): Promise<{ rate: number; alerts: number }> {
  let alerts = 0;
  let untap: () => unknown = () => undefined;
  if (withRules) {
    const engine = new AlertEngine({
      rules: alertRules(
        {
          massAccess: { distinctPatients: 200, windowMinutes: 10, baselineFactor: 5, baselineMinPatients: 40, baselineDays: 30 },
          afterHours: { workingHours: WorkingHours.parse('Mon-Fri 07:00-19:00'), normalDays: 3 },
          knocking: { refusals: 20, windowMinutes: 5 },
          refusalBurst: { refusals: 500, windowMinutes: 5 },
          newMessageType: { afterMessages: 100 },
          securityEvents: true,
          learningDays: 0,
        },
        emptyBaseline(),
      ),
      groupMs: 900_000,
      raised: () => (alerts++, undefined),
      repeated: () => undefined,
    });
    const pending: ObservedRecord[] = [];
    let scheduled = false;
    untap = store.audit.onRecorded((seq, event) => {
      pending.push({ seq, event });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          for (const r of pending.splice(0, pending.length)) engine.observe(r);
        });
      }
    });
  }
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < APPEND_MS) {
    for (let i = 0; i < 1000; i++) store.audit.record(departmentEvent(++n));
    await tick();
  }
  await store.flush();
  const seconds = (performance.now() - started) / 1000;
  untap();
  return { rate: n / seconds, alerts };
}

const store = await openStore({ dataDir: join(work, 'data'), keySource, replayWindowMs: 3_600_000, logger: silentLogger });
const plain = await appendRate(store, false);
const ruled = await appendRate(store, true);

// Top up to RECORDS (not timed) for the report.
while (store.audit.lastSeq < RECORDS) {
  for (let i = 0; i < 5000 && store.audit.lastSeq < RECORDS; i++) store.audit.record(departmentEvent(store.audit.lastSeq + 1));
  await tick();
}
await store.flush();
const t0 = performance.now();
const report = await breachScope(
  store.audit,
  [],
  { from: 0, to: Date.now() + 1000 },
  { site: 'bench', transportOf: () => 'TLS', dataElementsOf: () => 'bench' },
);
const reportSeconds = (performance.now() - t0) / 1000;
await store.close();
await rm(work, { recursive: true, force: true });

const rows: Array<[string, string, string, boolean | undefined]> = [
  ['audit append, no rules', `${Math.round(plain.rate)} events/s`, '', undefined],
  [
    'audit append, every rule on',
    `${Math.round(ruled.rate)} events/s (${(ruled.rate / plain.rate).toFixed(2)}× without; ${ruled.alerts} alert(s) raised)`,
    '≥ 20,000 events/s',
    ruled.rate >= 20_000,
  ],
  [
    `breach-scope report over ${report.chain.recordsRead.toLocaleString('en')} records`,
    `${reportSeconds.toFixed(1)} s (${report.totals.patients} patients, links ${report.chain.linksVerified ? 'verified' : 'NOT verified'})`,
    `≤ ${((60 * RECORDS) / 1_000_000).toFixed(0)} s`,
    reportSeconds <= (60 * RECORDS) / 1_000_000,
  ],
];
for (const [what, got, target, met] of rows)
  console.log(`${what.padEnd(48)} ${got.padEnd(70)} ${target} ${met === undefined ? '' : met ? 'met' : 'MISSED'}`);
console.log(
  `incidents-bench ${JSON.stringify({ appendNoRules: plain.rate, appendWithRules: ruled.rate, alerts: ruled.alerts, reportRecords: report.chain.recordsRead, reportSeconds })}`,
);
