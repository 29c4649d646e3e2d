// The flood benchmark's plan and arithmetic, kept pure so it can be unit-tested: which kind of
// unauthenticated connection the flood opens from which loopback source, how many are due at a given
// moment, latency summaries, the audit bound an attack may cost, and the verdicts against the targets.
import type { Metric } from './report.ts';

/** What one flood connection does. */
export const FloodKind = {
  /** Port scanner / TCP health check: connect, close at once. */
  ConnectClose: 'connect-close',
  /** Connect and send nothing (a TLS handshake or an A-ASSOCIATE-RQ that never comes), held for a while. */
  Silent: 'silent',
  /** TLS handshake offering no client certificate. */
  TlsNoCert: 'tls-no-cert',
  /** TLS handshake with a certificate from a CA the box does not trust. */
  TlsRogueCert: 'tls-rogue-cert',
} as const;
export type FloodKind = (typeof FloodKind)[keyof typeof FloodKind];

export type Transport = 'tls' | 'plain';

/** The extra loopback sources the attack comes from (never anything that is not loopback). */
export const FLOOD_SOURCES: readonly string[] = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

export function isLoopbackV4(address: string): boolean {
  const parts = address.split('.');
  return parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function kindsFor(transport: Transport): readonly FloodKind[] {
  return transport === 'tls'
    ? [FloodKind.ConnectClose, FloodKind.Silent, FloodKind.TlsNoCert, FloodKind.TlsRogueCert]
    : [FloodKind.ConnectClose, FloodKind.Silent];
}

/** Connection `i` of a port's flood: kinds rotate fastest, so every source sends every kind. */
export function floodAttempt(i: number, transport: Transport): { kind: FloodKind; source: string } {
  const kinds = kindsFor(transport);
  const kind = kinds[i % kinds.length] ?? FloodKind.ConnectClose;
  const source = FLOOD_SOURCES[Math.floor(i / kinds.length) % FLOOD_SOURCES.length] ?? '127.0.0.2';
  return { kind, source };
}

/** How many of `total` connections spread evenly over `durationMs` are due `elapsedMs` after the start. */
export function dueCount(elapsedMs: number, total: number, durationMs: number): number {
  if (elapsedMs <= 0) return 0;
  if (elapsedMs >= durationMs) return total;
  return Math.min(total, Math.floor((total * elapsedMs) / durationMs) + 1);
}

export interface LatencySummary {
  readonly n: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** Nearest-rank percentile (the smallest value with at least p % of the samples at or below it). */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? null;
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const s = [...latenciesMs].sort((a, b) => a - b);
  const r = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
  return { n: s.length, p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s.at(-1) ?? null) };
}

/**
 * Audit records an attack may cost when refusals are coalesced per source and reason: one record per
 * (port, source, kind) for each coalescing interval the flood touches, plus the first one written at
 * once. Independent of how many connections the attack makes.
 */
export function auditRecordBound(o: { transports: readonly Transport[]; sources: number; floodMs: number; coalesceMs: number }): number {
  const intervals = Math.ceil(o.floodMs / o.coalesceMs) + 1;
  return o.transports.reduce((sum, t) => sum + kindsFor(t).length * o.sources * intervals, 0);
}

export interface PhaseFigures {
  /** HL7 ACK latency on the RIS's open connection. */
  readonly ack: LatencySummary;
  /** Worklist query latency on the modality's open association. */
  readonly query: LatencySummary;
  /** New MLLP/TLS connection + one order, connect to ACK. */
  readonly freshAck: LatencySummary;
  /** Whole `findscu` run (new TLS association, one query). */
  readonly freshQuery: LatencySummary;
  readonly failed: { readonly ack: number; readonly query: number; readonly freshAck: number; readonly freshQuery: number };
  readonly firstFailure?: string;
  readonly auditRecords: number;
  readonly auditBytes: number;
  readonly dbGrowthBytes: number;
  readonly vmHwmKb: number;
}

export interface FloodFigures {
  readonly phaseMs: number;
  readonly baseline: PhaseFigures;
  readonly flood: PhaseFigures;
  /** Connections the generator opened, all ports. */
  readonly floodConnections: number;
  readonly auditBound: number;
  readonly coalesceMs: number;
  /** After the flood: of `risTried` new RIS connections opened at once (the per-peer default), how many got an AA. */
  readonly after: { readonly risTried: number; readonly risServed: number; readonly modalityServed: boolean; readonly detail?: string };
  /** `completed`: the daemon logged edged.stopped (its orderly shutdown ran to the end, store closed). */
  readonly stop: {
    readonly exitCode: number | null;
    readonly ms: number;
    readonly completed: boolean;
    readonly firstSigtermClean: boolean;
  };
  readonly leftOpen: { readonly fds: number | null; readonly closeWait: number | null };
}

function ratio(b: number | null, a: number | null): number | null {
  if (a === null || b === null || !(a > 0)) return null;
  return Math.round((b / a) * 100) / 100;
}

const failures = (p: PhaseFigures): number => p.failed.ack + p.failed.query + p.failed.freshAck + p.failed.freshQuery;

/** The table rows, with each target checked. Latency ratios count only when no legitimate request failed. */
export function floodMetrics(f: FloodFigures): Metric[] {
  const { baseline: a, flood: b } = f;
  const rows: Metric[] = [];
  /** A p99 over the answered requests only means something when none of that client's requests failed. */
  const vs = (id: string, metric: string, pick: (p: PhaseFigures) => number | null, failedOf?: (p: PhaseFigures) => number) => {
    const r = ratio(pick(b), pick(a));
    rows.push({
      id,
      metric,
      unit: 'ms',
      box: pick(b),
      anchor: pick(a),
      anchorLabel: 'no flood',
      ratio: r,
      ratioLabel: 'flood/none',
      target: failedOf === undefined ? '- (info)' : '<= 2x',
      met: failedOf === undefined ? null : r !== null && r <= 2 && failedOf(a) + failedOf(b) === 0,
    });
  };
  // A paced client that falls behind sends fewer requests: the counts show how far.
  vs(
    'flood.ack.p99',
    `HL7 ACK p99, RIS on its open connection (${b.ack.n} vs ${a.ack.n} answered)`,
    (p) => p.ack.p99,
    (p) => p.failed.ack,
  );
  vs(
    'flood.query.p99',
    `MWL query p99, CT01 on its open association (${b.query.n} vs ${a.query.n} answered)`,
    (p) => p.query.p99,
    (p) => p.failed.query,
  );
  vs('flood.ack.p50', 'HL7 ACK p50, open connection', (p) => p.ack.p50);
  vs('flood.query.p50', 'MWL query p50, open association', (p) => p.query.p50);
  vs('flood.fresh-ack.p99', 'new MLLP/TLS connection + order, p99', (p) => p.freshAck.p99);
  vs('flood.fresh-query.p99', 'whole findscu run (new TLS association), p99', (p) => p.freshQuery.p99);
  const sent = (p: PhaseFigures) => p.ack.n + p.query.n + p.freshAck.n + p.freshQuery.n + failures(p);
  const { ack, query, freshAck, freshQuery } = b.failed;
  rows.push({
    id: 'flood.failed',
    metric: `legitimate requests failed under flood (of ${sent(b)}: ${ack} orders, ${query} queries, ${freshAck} new RIS connections, ${freshQuery} new associations)`,
    unit: 'count',
    box: failures(b),
    anchor: failures(a),
    anchorLabel: 'no flood',
    ratio: null,
    ratioLabel: '-',
    target: '0',
    met: failures(b) === 0 && failures(a) === 0,
  });
  const extraRecords = Math.max(0, b.auditRecords - a.auditRecords);
  rows.push({
    id: 'flood.audit.records',
    metric: `audit records written in ${f.phaseMs / 1000} s (flood adds ${extraRecords})`,
    unit: 'records',
    box: b.auditRecords,
    anchor: a.auditRecords,
    anchorLabel: 'no flood',
    ratio: ratio(b.auditRecords, a.auditRecords),
    ratioLabel: 'flood/none',
    target: `added <= ${f.auditBound}`,
    met: extraRecords <= f.auditBound,
  });
  const extraBytes = Math.max(0, b.auditBytes - a.auditBytes);
  const perRecord = a.auditRecords > 0 ? a.auditBytes / a.auditRecords : 0;
  const byteBound = Math.round(f.auditBound * perRecord * 2);
  rows.push({
    id: 'flood.audit.bytes',
    metric: `audit bytes stored (flood adds ${extraBytes}, ${f.floodConnections > 0 ? Math.round(extraBytes / f.floodConnections) : 0} per connection)`,
    unit: 'bytes',
    box: b.auditBytes,
    anchor: a.auditBytes,
    anchorLabel: 'no flood',
    ratio: ratio(b.auditBytes, a.auditBytes),
    ratioLabel: 'flood/none',
    target: `added <= ${byteBound}`,
    met: a.auditRecords > 0 ? extraBytes <= byteBound : null,
  });
  rows.push({
    id: 'flood.db.growth',
    metric: 'database directory growth (du)',
    unit: 'bytes',
    box: b.dbGrowthBytes,
    anchor: a.dbGrowthBytes,
    anchorLabel: 'no flood',
    ratio: ratio(b.dbGrowthBytes, a.dbGrowthBytes),
    ratioLabel: 'flood/none',
    target: '- (info)',
    met: null,
  });
  const mb = (kb: number) => Math.round(kb / 102.4) / 10;
  rows.push({
    id: 'flood.rss.peak',
    metric: 'daemon RSS peak (VmHWM) at the end of the phase',
    unit: 'MB',
    box: mb(b.vmHwmKb),
    anchor: mb(a.vmHwmKb),
    anchorLabel: 'no flood',
    ratio: ratio(b.vmHwmKb, a.vmHwmKb),
    ratioLabel: 'flood/none',
    target: '- (info)',
    met: null,
  });
  const served = f.after.risServed === f.after.risTried && f.after.modalityServed;
  rows.push({
    id: 'flood.after',
    metric: `after the flood: ${f.after.risServed} of ${f.after.risTried} new RIS connections ACKed, new association ${f.after.modalityServed ? 'answers' : 'fails'}`,
    unit: 'yes/no',
    box: served ? 1 : 0,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '1 (yes)',
    met: served,
  });
  rows.push({
    id: 'flood.left-open',
    metric: 'daemon fds / CLOSE-WAIT sockets on its ports after the flood',
    unit: 'count',
    box: f.leftOpen.fds,
    anchor: f.leftOpen.closeWait,
    anchorLabel: 'CLOSE-WAIT',
    ratio: null,
    ratioLabel: '-',
    target: '- (info)',
    met: null,
  });
  rows.push({
    id: 'flood.stop',
    metric: `first SIGTERM stops the box (exit ${f.stop.exitCode ?? 'none'} after ${f.stop.ms} ms, edged.stopped ${f.stop.completed ? '' : 'not '}logged)`,
    unit: 'yes/no',
    box: f.stop.firstSigtermClean ? 1 : 0,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '1 (yes)',
    met: f.stop.firstSigtermClean,
  });
  return rows;
}
