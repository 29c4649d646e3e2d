import test from 'ava';
import type { DataSet } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import {
  type PulledItem,
  type UpstreamItemRecord,
  isPulledItemProblem,
  planUpstreamMerge,
  pulledItemOf,
  upstreamWorklistQuery,
} from './upstream-worklist.ts';

function identifier(over: Record<number, string> = {}, step: Record<number, string> = {}): DataSet {
  const sps: DataSet = new Map([
    [Tag.Modality, { vr: 'CS', value: 'CT' }],
    [Tag.ScheduledStationAETitle, { vr: 'AE', value: 'CT01' }],
    [Tag.ScheduledProcedureStepStartDate, { vr: 'DA', value: '20261207' }],
    [Tag.ScheduledProcedureStepStartTime, { vr: 'TM', value: '0900' }],
    [Tag.ScheduledProcedureStepID, { vr: 'SH', value: 'SPS1' }],
    [Tag.ScheduledProcedureStepStatus, { vr: 'CS', value: 'SCHEDULED' }],
  ]);
  for (const [t, v] of Object.entries(step)) sps.set(Number(t), { vr: 'LO', value: v });
  const ds: DataSet = new Map([
    [Tag.AccessionNumber, { vr: 'SH', value: 'ACC1' }],
    [Tag.PatientName, { vr: 'PN', value: 'DOE^JANE' }],
    [Tag.PatientID, { vr: 'LO', value: 'PID1' }],
    [Tag.PatientBirthDate, { vr: 'DA', value: '19800101' }],
    [Tag.PatientSex, { vr: 'CS', value: 'F' }],
    [Tag.ScheduledProcedureStepSequence, { vr: 'SQ', value: [sps] }],
  ]);
  for (const [t, v] of Object.entries(over)) ds.set(Number(t), { vr: 'LO', value: v });
  return ds;
}

const pulled = (over: Record<number, string> = {}, step: Record<number, string> = {}): PulledItem => {
  const p = pulledItemOf(identifier(over, step), 'RISMWL', 1);
  if (isPulledItemProblem(p)) throw new Error(p.problem);
  return p;
};

test('the query asks for SPS Status and the keys explicitly, zero-length', (t) => {
  const q = upstreamWorklistQuery();
  const sps = (q.get(Tag.ScheduledProcedureStepSequence)?.value as DataSet[])[0]!;
  t.deepEqual(sps.get(Tag.ScheduledProcedureStepStatus), { vr: 'CS', value: '' });
  t.deepEqual(q.get(Tag.AccessionNumber), { vr: 'SH', value: '' });
  t.deepEqual(upstreamWorklistQuery({ startDateRange: '20261206-20261208' }).get(Tag.ScheduledProcedureStepSequence)?.value, [
    new Map(
      [...sps, [Tag.ScheduledProcedureStepStartDate, { vr: 'DA', value: '20261206-20261208' } as const] as const].sort(([a], [b]) => a - b),
    ),
  ]);
});

test('an identifier becomes one order with one step; its digest ignores when it was received', (t) => {
  const a = pulled();
  t.is(a.order.accessionNumber, 'ACC1');
  t.is(a.order.steps[0]?.id, 'SPS1');
  t.is(a.order.origin, 'upstream-mwl');
  t.regex(a.order.studyInstanceUid, /^2\.25\.\d+$/, 'a stable UID when the provider sent none');
  const later = pulledItemOf(identifier(), 'RISMWL', 99) as PulledItem;
  t.is(later.digest, a.digest);
  t.is(later.order.studyInstanceUid, a.order.studyInstanceUid);
});

test('values the box cannot represent skip the whole item, naming the attribute', (t) => {
  const cases: Array<[DataSet, string, string]> = [
    [identifier({ [Tag.PatientName]: 'DOE\u0007^JANE' }), 'PatientName', 'control-character'],
    [identifier({ [Tag.PatientID]: 'A\\B' }), 'PatientID', 'multiple-values'],
    [identifier({ [Tag.PatientBirthDate]: '1980-01-01' }), 'PatientBirthDate', 'bad-date'],
    [identifier({ [Tag.AccessionNumber]: '' }), 'AccessionNumber', 'missing-key'],
    [identifier({}, { [Tag.ScheduledProcedureStepStatus]: 'PAUSED' }), 'ScheduledProcedureStepStatus', 'unknown-status'],
    [identifier({ [Tag.StudyInstanceUID]: '1.2.abc' }), 'StudyInstanceUID', 'bad-uid'],
  ];
  for (const [ds, attribute, problem] of cases) t.like(pulledItemOf(ds, 'RISMWL', 1), { attribute, problem }, `${attribute} ${problem}`);
});

const held = (items: PulledItem[], missingSince?: number): Map<string, UpstreamItemRecord> =>
  new Map(
    items.map((i) => [i.identity, { identity: i.identity, digest: i.digest, ...(missingSince === undefined ? {} : { missingSince }) }]),
  );
const base = { coveredByHl7: new Set<string>(), now: 10_000, removeAfterMs: 5000 };

test('merging the same answer again changes nothing', (t) => {
  const a = pulled();
  const first = planUpstreamMerge({ ...base, answer: [a], complete: true, held: new Map() });
  t.is(first.counts.created, 1);
  const second = planUpstreamMerge({ ...base, answer: [a], complete: true, held: held([a]) });
  t.deepEqual(second.changes, []);
  t.is(second.counts.unchanged, 1);
});

test('an incomplete answer removes nothing and marks nothing missing', (t) => {
  const a = pulled();
  const b = pulled({ [Tag.AccessionNumber]: 'ACC2' });
  const plan = planUpstreamMerge({ ...base, answer: [a], complete: false, held: new Map([...held([a]), ...held([b], 1)]) });
  t.deepEqual(plan.changes, []);
  t.like(plan.counts, { removed: 0, pendingRemoval: 0 });
});

test('a vanished item is marked, then removed once the delay has passed; back in time, it is unmarked', (t) => {
  const a = pulled();
  const b = pulled({ [Tag.AccessionNumber]: 'ACC2' });
  const marked = planUpstreamMerge({ ...base, answer: [a], complete: true, held: held([a, b]) });
  t.deepEqual(marked.changes, [{ type: 'mark', record: { identity: b.identity, digest: b.digest, missingSince: 10_000 } }]);
  const kept = planUpstreamMerge({
    ...base,
    now: 14_999,
    answer: [a],
    complete: true,
    held: new Map([...held([a]), ...held([b], 10_000)]),
  });
  t.deepEqual(kept.changes, []);
  const removed = planUpstreamMerge({
    ...base,
    now: 15_000,
    answer: [a],
    complete: true,
    held: new Map([...held([a]), ...held([b], 10_000)]),
  });
  t.deepEqual(removed.changes, [{ type: 'remove', identity: b.identity }]);
  const back = planUpstreamMerge({ ...base, answer: [a, b], complete: true, held: new Map([...held([a]), ...held([b], 10_000)]) });
  t.deepEqual(back.changes, [{ type: 'mark', record: { identity: b.identity, digest: b.digest } }]);
});

test('duplicates: identical ones collapse, different ones under one key are refused and the held item kept', (t) => {
  const a = pulled();
  const other = pulled({ [Tag.PatientName]: 'SOMEONE^ELSE' });
  t.deepEqual(planUpstreamMerge({ ...base, answer: [a, a], complete: true, held: held([a]) }).changes, []);
  const plan = planUpstreamMerge({ ...base, answer: [a, other], complete: true, held: held([a]) });
  t.deepEqual(plan.changes, [], 'neither written nor removed');
  t.is(plan.skipped[0]?.problem, 'conflicting-duplicates');
});

test('an HL7 order for the same key wins: the pulled item is not written, a held one leaves', (t) => {
  const a = pulled();
  const covered = new Set([a.identity]);
  t.deepEqual(planUpstreamMerge({ ...base, coveredByHl7: covered, answer: [a], complete: true, held: new Map() }).changes, []);
  t.deepEqual(planUpstreamMerge({ ...base, coveredByHl7: covered, answer: [a], complete: true, held: held([a]) }).changes, [
    { type: 'remove', identity: a.identity },
  ]);
});
