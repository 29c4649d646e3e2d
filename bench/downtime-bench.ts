// Downtime benchmark (issue targets): merge of a 10,000-item upstream worklist answer — its time, and
// the worklist query latency of one modality during the merge ÷ idle (target ≤ 1.5×). In process, on a
// real encrypted store: the identifiers are decoded from their wire encoding (Explicit VR LE) as the
// C-FIND SCU hands them over; the provider's own answering time (network, wlmscpfs) is not included.
// Prints one JSON line. Env: DOWNTIME_BENCH_ITEMS (default 10000), DOWNTIME_BENCH_STATIONS (default 20).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSet } from '../daemon/core/dataset.ts';
import { Tag } from '../daemon/core/data-dictionary.ts';
import { silentLogger } from '../daemon/core/log.ts';
import { planUpstreamMerge, pulledItemOf, isPulledItemProblem, type PulledItem } from '../daemon/core/upstream-worklist.ts';
import { findWorklist } from '../daemon/core/worklist-query.ts';
import { decodeDataSet, encodeDataSet } from '../daemon/dicom/dataset-codec.ts';
import { TransferSyntax } from '../daemon/dicom/transfer-syntax.ts';
import { deriveKeyRing } from '../daemon/security/file-key-source.ts';
import { openStore } from '../daemon/store/index.ts';

const N = Number(process.env['DOWNTIME_BENCH_ITEMS'] ?? 10_000);
const STATIONS = Number(process.env['DOWNTIME_BENCH_STATIONS'] ?? 20);
const TS = TransferSyntax.ExplicitVRLittleEndian;
const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const p95 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? 0;

function identifier(i: number, generation: number): Buffer {
  const t = (vr: string, value: string) => ({ vr, value }) as never;
  const sps: DataSet = new Map([
    [Tag.Modality, t('CS', 'CT')],
    [Tag.ScheduledStationAETitle, t('AE', `CT${String(i % STATIONS).padStart(2, '0')}`)],
    [Tag.ScheduledProcedureStepStartDate, t('DA', today)],
    [Tag.ScheduledProcedureStepStartTime, t('TM', `${String(7 + (i % 12)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}00`)],
    [Tag.ScheduledProcedureStepDescription, t('LO', 'CT CHEST W/O')],
    [Tag.ScheduledProcedureStepID, t('SH', `SPS${i}`)],
    [Tag.ScheduledProcedureStepStatus, t('CS', 'SCHEDULED')],
  ]);
  const ds: DataSet = new Map([
    [Tag.SpecificCharacterSet, t('CS', 'ISO_IR 192')],
    [Tag.AccessionNumber, t('SH', `ACC${i}`)],
    [Tag.PatientName, t('PN', `PATIENT^NUMBER${i}^G${generation}`)],
    [Tag.PatientID, t('LO', `PID${i}`)],
    [Tag.PatientBirthDate, t('DA', '19700101')],
    [Tag.PatientSex, t('CS', i % 2 === 0 ? 'F' : 'M')],
    [Tag.StudyInstanceUID, t('UI', `1.2.826.0.1.3680043.9.7433.3.${i}`)],
    [Tag.RequestedProcedureDescription, t('LO', 'CT CHEST')],
    [Tag.RequestedProcedureID, t('SH', `RP${i}`)],
    [Tag.ScheduledProcedureStepSequence, { vr: 'SQ', value: [sps] }],
  ]);
  return encodeDataSet(new Map([...ds].sort(([a], [b]) => a - b)), TS);
}

const dir = await mkdtemp(join(tmpdir(), 'downtime-bench-'));
const secret = randomBytes(32);
const store = await openStore({
  dataDir: join(dir, 'data'),
  keySource: { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) },
  replayWindowMs: 3_600_000,
  logger: silentLogger,
});

/** One modality's query: its station's items for today (what a CT asks for every few minutes). */
const query: DataSet = new Map([
  [Tag.PatientName, { vr: 'PN', value: '' }],
  [Tag.AccessionNumber, { vr: 'SH', value: '' }],
  [
    Tag.ScheduledProcedureStepSequence,
    {
      vr: 'SQ',
      value: [
        new Map([
          [Tag.ScheduledStationAETitle, { vr: 'AE', value: 'CT01' }],
          [Tag.ScheduledProcedureStepStartDate, { vr: 'DA', value: today }],
        ]) as DataSet,
      ],
    },
  ],
] as never);

async function queryMs(): Promise<{ ms: number; results: number }> {
  const t0 = performance.now();
  let results = 0;
  for await (const _ of findWorklist(store.orders, query, { maxResults: 100_000 })) results++;
  return { ms: performance.now() - t0, results };
}

async function merge(answer: readonly Buffer[]): Promise<{ ms: number; counts: Record<string, number> }> {
  const t0 = performance.now();
  const now = Date.now();
  const items = answer.map((b) => pulledItemOf(decodeDataSet(b, TS), 'RISMWL', now));
  const pulled = items.filter((p): p is PulledItem => !isPulledItemProblem(p));
  const held = await store.orders.upstreamItems();
  const coveredByHl7 = await store.orders.coveredByHl7(
    pulled.map((p) => ({ accessionNumber: p.order.accessionNumber, spsId: p.order.steps[0]!.id })),
  );
  const plan = planUpstreamMerge({ answer: items, complete: true, held, coveredByHl7, now, removeAfterMs: 3_600_000 });
  await store.orders.applyUpstream(plan.changes);
  return { ms: performance.now() - t0, counts: { ...plan.counts } };
}

const out: Record<string, unknown> = { items: N, stations: STATIONS };
try {
  const first = Array.from({ length: N }, (_, i) => identifier(i, 1));
  const created = await merge(first);
  out['mergeCreateMs'] = Math.round(created.ms);
  out['mergeCreateCounts'] = created.counts;
  const unchanged = await merge(first);
  out['mergeUnchangedMs'] = Math.round(unchanged.ms);
  out['mergeUnchangedCounts'] = unchanged.counts;

  const idle: number[] = [];
  let perQuery = 0;
  for (let k = 0; k < 40; k++) {
    const q = await queryMs();
    idle.push(q.ms);
    perQuery = q.results;
  }
  // Every item changed (a new name): 10,000 rewrites while the modality keeps asking.
  const changed = Array.from({ length: N }, (_, i) => identifier(i, 2));
  const during: number[] = [];
  let merging = true;
  const m = merge(changed).finally(() => (merging = false));
  while (merging) during.push((await queryMs()).ms);
  const updated = await m;
  out['mergeUpdateMs'] = Math.round(updated.ms);
  out['mergeUpdateCounts'] = updated.counts;
  out['queryResults'] = perQuery;
  out['queryIdleMedianMs'] = Number(median(idle).toFixed(2));
  out['queryIdleP95Ms'] = Number(p95(idle).toFixed(2));
  out['queryDuringMergeMedianMs'] = Number(median(during).toFixed(2));
  out['queryDuringMergeP95Ms'] = Number(p95(during).toFixed(2));
  out['queriesDuringMerge'] = during.length;
  out['queryRatioMedian'] = Number((median(during) / median(idle)).toFixed(2));
  out['queryRatioTarget'] = 1.5;
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
