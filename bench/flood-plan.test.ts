import test from 'ava';
import {
  auditRecordBound,
  dueCount,
  FLOOD_SOURCES,
  floodAttempt,
  FloodKind,
  floodMetrics,
  isLoopbackV4,
  kindsFor,
  percentile,
  summarize,
  type FloodFigures,
  type PhaseFigures,
} from './flood-plan.ts';

test('the flood comes from 127.0.0.2-.9 only, and every source sends every kind', (t) => {
  t.deepEqual(FLOOD_SOURCES, ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9']);
  for (const transport of ['tls', 'plain'] as const) {
    const seen = new Set<string>();
    const kinds = kindsFor(transport);
    for (let i = 0; i < 5_000; i++) {
      const { kind, source } = floodAttempt(i, transport);
      t.true(isLoopbackV4(source), source);
      seen.add(`${source} ${kind}`);
    }
    t.is(seen.size, FLOOD_SOURCES.length * kinds.length, transport);
  }
  t.deepEqual(kindsFor('plain'), [FloodKind.ConnectClose, FloodKind.Silent]);
  t.true(kindsFor('tls').includes(FloodKind.TlsRogueCert) && kindsFor('tls').includes(FloodKind.TlsNoCert));
});

test('isLoopbackV4 refuses anything outside 127/8', (t) => {
  for (const a of ['127.0.0.1', '127.0.0.9', '127.255.255.254']) t.true(isLoopbackV4(a), a);
  for (const a of ['10.0.0.1', '0.0.0.0', '128.0.0.1', '127.0.0', '127.0.0.256', '::1', '127.0.0.1.5', 'localhost'])
    t.false(isLoopbackV4(a), a);
});

test('dueCount spreads the count evenly and never exceeds it', (t) => {
  t.is(dueCount(0, 5_000, 10_000), 0);
  t.is(dueCount(1, 5_000, 10_000), 1);
  t.is(dueCount(5_000, 5_000, 10_000), 2_501);
  t.is(dueCount(9_999, 5_000, 10_000), 5_000);
  t.is(dueCount(60_000, 5_000, 10_000), 5_000);
  let last = 0;
  for (let ms = 0; ms <= 10_000; ms += 7) {
    const n = dueCount(ms, 5_000, 10_000);
    t.true(n >= last && n <= 5_000);
    last = n;
  }
});

test('nearest-rank percentiles', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(hundred, 50), 50);
  t.is(percentile(hundred, 99), 99);
  t.is(percentile(hundred, 100), 100);
  t.is(percentile([], 99), null);
  t.deepEqual(summarize([3, 1, 2]), { n: 3, p50: 2, p99: 3, max: 3 });
  t.deepEqual(summarize([]), { n: 0, p50: null, p99: null, max: null });
});

test('the audit bound depends on sources, kinds and intervals, not on the number of connections', (t) => {
  // 2 TLS ports x 4 kinds + 1 plain port x 2 kinds, 8 sources, a 10 s flood inside one 60 s interval (+ the first record).
  t.is(auditRecordBound({ transports: ['tls', 'tls', 'plain'], sources: 8, floodMs: 10_000, coalesceMs: 60_000 }), 10 * 8 * 2);
  t.is(auditRecordBound({ transports: ['plain'], sources: 1, floodMs: 10_000, coalesceMs: 1_000 }), 2 * 11);
});

const phase = (over: Partial<PhaseFigures> = {}): PhaseFigures => ({
  ack: summarize([2, 3, 4, 10]),
  query: summarize([5, 6, 7, 20]),
  freshAck: summarize([30]),
  freshQuery: summarize([100]),
  failed: { ack: 0, query: 0, freshAck: 0, freshQuery: 0 },
  auditRecords: 100,
  auditBytes: 60_000,
  dbGrowthBytes: 200_000,
  vmHwmKb: 140_000,
  ...over,
});
const figures = (flood: PhaseFigures): FloodFigures => ({
  phaseMs: 10_000,
  baseline: phase(),
  flood,
  floodConnections: 15_000,
  auditBound: 160,
  coalesceMs: 60_000,
  after: { risTried: 4, risServed: 4, modalityServed: true },
  stop: { exitCode: 0, ms: 200, completed: true, firstSigtermClean: true },
  leftOpen: { fds: 40, closeWait: 0 },
});
const met = (rows: ReturnType<typeof floodMetrics>, id: string) => rows.find((r) => r.id === id)?.met;

test('verdicts: within 2x and bounded audit pass', (t) => {
  const rows = floodMetrics(figures(phase({ ack: summarize([2, 3, 4, 19]), auditRecords: 250, auditBytes: 150_000 })));
  t.true(met(rows, 'flood.ack.p99'));
  t.true(met(rows, 'flood.query.p99'));
  t.true(met(rows, 'flood.failed'));
  t.true(met(rows, 'flood.audit.records'));
  t.true(met(rows, 'flood.audit.bytes'));
  t.true(met(rows, 'flood.stop'));
});

test('verdicts: a slow, failing, audit-flooding box misses', (t) => {
  const rows = floodMetrics(
    figures(
      phase({
        ack: summarize([2, 3, 4, 21]),
        failed: { ack: 0, query: 2, freshAck: 9, freshQuery: 0 },
        auditRecords: 18_000,
        auditBytes: 7_000_000,
      }),
    ),
  );
  t.false(met(rows, 'flood.ack.p99'), '21 ms vs 10 ms is over 2x');
  t.false(met(rows, 'flood.query.p99'), 'the p99 of answered queries hides the failed ones');
  t.false(met(rows, 'flood.failed'));
  t.regex(rows.find((r) => r.id === 'flood.failed')?.metric ?? '', /2 queries, 9 new RIS connections/);
  t.false(met(rows, 'flood.audit.records'));
  t.false(met(rows, 'flood.audit.bytes'));
});

test('verdicts: exit 0 without a completed shutdown is not a clean stop', (t) => {
  const f = figures(phase());
  const rows = floodMetrics({ ...f, stop: { exitCode: 0, ms: 19, completed: false, firstSigtermClean: false } });
  t.false(met(rows, 'flood.stop'));
  t.regex(rows.find((r) => r.id === 'flood.stop')?.metric ?? '', /edged\.stopped not logged/);
});

test('verdicts: after the flood every one of the RIS connections must get in', (t) => {
  const rows = floodMetrics({ ...figures(phase()), after: { risTried: 4, risServed: 1, modalityServed: true } });
  t.false(met(rows, 'flood.after'));
  t.regex(rows.find((r) => r.id === 'flood.after')?.metric ?? '', /1 of 4 new RIS connections/);
});
