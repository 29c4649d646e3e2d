// Collects what bench/run.sh measured (hyperfine JSON and the parts/*.json the other scripts wrote),
// derives the figures the issue asks for, prints the table and writes .bench/results.json.
//
// Usage: node bench/report.ts --work WORK_DIR --out RESULTS.json
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface HyperfineRun {
  command: string;
  median: number;
  min: number;
  max: number;
  mean: number;
  stddev: number | null;
  times?: number[];
}

export interface Metric {
  readonly id: string;
  readonly metric: string;
  readonly unit: string;
  readonly box: number | null;
  readonly anchor: number | null;
  /** What `anchor` is: the DCMTK anchor, or the reference measured beside the box. */
  readonly anchorLabel: string;
  readonly ratio: number | null;
  readonly ratioLabel: string;
  readonly target: string;
  readonly met: boolean | null;
}

/** Repeats in one association: `--repeat REPEATS` minus a single query leaves REPEATS - 1 queries. */
export const REPEATS = 21;

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? Number.NaN) + (s[mid] ?? Number.NaN)) / 2;
}

/** Per-query milliseconds from a hyperfine file holding [single run, --repeat run]. */
export function perQueryMs(single: HyperfineRun, repeated: HyperfineRun): number {
  return ((repeated.median - single.median) * 1000) / (REPEATS - 1);
}

function readJson<T>(file: string): T | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

function hyperfine(work: string, name: string): HyperfineRun[] | undefined {
  return readJson<{ results: HyperfineRun[] }>(join(work, 'hf', `${name}.json`))?.results;
}

function perQuery(work: string, name: string): { perQueryMs: number; singleMs: number } | undefined {
  const runs = hyperfine(work, name);
  const [single, repeated] = runs ?? [];
  if (single === undefined || repeated === undefined) return undefined;
  return { perQueryMs: round(perQueryMs(single, repeated), 3), singleMs: round(single.median * 1000, 2) };
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !(b > 0) || !(a > 0)) return null;
  return round(a / b, 2);
}

interface Meta {
  quick: boolean;
  sizes: { small: number; medium: number; large: number };
  anchorLarge: boolean;
  today: string;
  [key: string]: unknown;
}

interface LoadPart {
  messagesPerSecond: number;
  accepted: number;
  errors: number;
  elapsedMs: number;
  connections: number;
  latencyMs: { p50: number; p99: number; max: number };
}

export function buildMetrics(work: string): { meta: Meta; metrics: Metric[]; raw: Record<string, unknown> } {
  const meta = readJson<Meta>(join(work, 'parts', 'meta.json'));
  if (meta === undefined) throw new Error(`no ${join(work, 'parts', 'meta.json')}: did bench/run.sh start?`);
  const { small, medium, large } = meta.sizes;
  const part = <T>(name: string) => readJson<T>(join(work, 'parts', `${name}.json`));

  const anchorSmall = perQuery(work, 'anchor-small');
  const anchorMedium = perQuery(work, 'anchor-medium');
  const anchorLarge = perQuery(work, 'anchor-large');
  const boxEmpty = perQuery(work, 'box-plain-empty');
  const boxSmall = perQuery(work, 'box-plain-small');
  const boxMedium = perQuery(work, 'box-plain-medium');
  const boxLarge = perQuery(work, 'box-plain-large');
  const boxTls = perQuery(work, 'box-tls-medium');
  const whole = hyperfine(work, 'box-whole-medium-vs-empty');
  const wholeLoaded = whole?.[0] === undefined ? null : round(whole[0].median * 1000, 2);
  const wholeEmpty = whole?.[1] === undefined ? null : round(whole[1].median * 1000, 2);
  const ingest1 = part<LoadPart>('ingest-1');
  const ingest8 = part<LoadPart>('ingest-8');
  const store = part<{ put: { opsPerSecond: number }; batch100: { opsPerSecond: number } }>('store-sync');
  const rss = part<{ maxVmRssKb: number; vmHwmKb: number; samples: number }>('rss');
  const startup = part<{ medianMs: number; readyMs: number[] }>('startup');

  const v = (x: { perQueryMs: number } | undefined) => x?.perQueryMs ?? null;
  const le = (value: number | null, limit: number) => (value === null ? null : value <= limit);
  const ge = (value: number | null, limit: number) => (value === null ? null : value >= limit);
  const metrics: Metric[] = [];
  const add = (m: Metric) => metrics.push(m);
  const wl = 'wlmscpfs';

  add({
    id: 'query.empty',
    metric: 'MWL per query, plain, empty box (0 matches)',
    unit: 'ms',
    box: v(boxEmpty),
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '-',
    met: null,
  });
  add({
    id: 'query.small',
    metric: `MWL per query, plain @${small}`,
    unit: 'ms',
    box: v(boxSmall),
    anchor: v(anchorSmall),
    anchorLabel: wl,
    ratio: ratioOf(v(anchorSmall), v(boxSmall)),
    ratioLabel: 'anchor/box',
    target: '-',
    met: null,
  });
  const r10 = ratioOf(v(anchorMedium), v(boxMedium));
  add({
    id: 'query.medium',
    metric: `MWL per query, plain @${medium}`,
    unit: 'ms',
    box: v(boxMedium),
    anchor: v(anchorMedium),
    anchorLabel: wl,
    ratio: r10,
    ratioLabel: 'anchor/box',
    target: 'anchor/box >= 100x',
    met: ge(r10, 100),
  });
  add({
    id: 'query.large',
    metric: `MWL per query, plain @${large}`,
    unit: 'ms',
    box: v(boxLarge),
    anchor: v(anchorLarge),
    anchorLabel: wl,
    ratio: ratioOf(v(anchorLarge), v(boxLarge)),
    ratioLabel: 'anchor/box',
    target: '-',
    met: null,
  });
  add({
    id: 'query.tls.medium',
    metric: `MWL per query, TLS @${medium}`,
    unit: 'ms',
    box: v(boxTls),
    anchor: null,
    anchorLabel: '-',
    ratio: ratioOf(v(boxTls), v(boxMedium)),
    ratioLabel: 'TLS/plain',
    target: '-',
    met: null,
  });
  const growth = ratioOf(v(boxLarge), v(boxSmall));
  add({
    id: 'query.growth',
    metric: `box per query @${large} / @${small}`,
    unit: 'x',
    box: growth,
    anchor: ratioOf(v(anchorLarge), v(anchorSmall)),
    anchorLabel: wl,
    ratio: growth,
    ratioLabel: 'box large/small',
    target: '<= 2x',
    met: le(growth, 2),
  });
  add({
    id: 'query.whole.medium',
    metric: `whole findscu run @${medium}`,
    unit: 'ms',
    box: boxMedium?.singleMs ?? null,
    anchor: anchorMedium?.singleMs ?? null,
    anchorLabel: wl,
    ratio: ratioOf(anchorMedium?.singleMs, boxMedium?.singleMs),
    ratioLabel: 'anchor/box',
    target: '-',
    met: null,
  });
  const wholeRatio = ratioOf(wholeLoaded, wholeEmpty);
  add({
    id: 'query.whole.vs-empty',
    metric: `whole findscu run @${medium} vs empty box`,
    unit: 'ms',
    box: wholeLoaded,
    anchor: wholeEmpty,
    anchorLabel: 'empty box',
    ratio: wholeRatio,
    ratioLabel: 'loaded/empty',
    target: '<= 1.2x',
    met: le(wholeRatio, 1.2),
  });
  const i1 = ingest1?.messagesPerSecond ?? null;
  const i8 = ingest8?.messagesPerSecond ?? null;
  add({
    id: 'ingest.1',
    metric: 'ORM ingest, 1 TLS connection',
    unit: 'msg/s',
    box: i1,
    anchor: store?.put.opsPerSecond ?? null,
    anchorLabel: 'LevelDB put sync',
    ratio: ratioOf(i1, store?.put.opsPerSecond),
    ratioLabel: 'box/raw',
    target: '>= 1500',
    met: ingest1 !== undefined && ingest1.errors > 0 ? false : ge(i1, 1500),
  });
  add({
    id: 'ingest.8',
    metric: 'ORM ingest, 8 TLS connections',
    unit: 'msg/s',
    box: i8,
    anchor: store?.batch100.opsPerSecond ?? null,
    anchorLabel: 'LevelDB batch100 sync',
    ratio: ratioOf(i8, store?.batch100.opsPerSecond),
    ratioLabel: 'box/raw',
    target: '>= 4000',
    met: ingest8 !== undefined && ingest8.errors > 0 ? false : ge(i8, 4000),
  });
  const rssMb = rss === undefined ? null : round(rss.maxVmRssKb / 1024);
  const hwmMb = rss === undefined ? null : round(rss.vmHwmKb / 1024);
  add({
    id: 'memory.rss',
    metric: `RSS under query load, ${large} orders (max VmRSS)`,
    unit: 'MB',
    box: rssMb,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '<= 150',
    met: le(rssMb, 150),
  });
  add({
    id: 'memory.hwm',
    metric: `peak RSS since start, ${large} orders (VmHWM)`,
    unit: 'MB',
    box: hwmMb,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '<= 150',
    met: le(hwmMb, 150),
  });
  const loadRss = part<{ maxVmRssKb: number; vmHwmKb: number }>('load-rss');
  const loadHwmMb = loadRss === undefined ? null : round(loadRss.vmHwmKb / 1024);
  add({
    id: 'memory.hwm.loading',
    metric: `peak RSS while loading ${medium}..${large} (VmHWM)`,
    unit: 'MB',
    box: loadHwmMb,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '- (info)',
    met: null,
  });
  const start = startup?.medianMs ?? null;
  add({
    id: 'startup.ready',
    metric: `start-up to ready, ${large} orders (median of ${startup?.readyMs.length ?? 0})`,
    unit: 'ms',
    box: start,
    anchor: null,
    anchorLabel: '-',
    ratio: null,
    ratioLabel: '-',
    target: '<= 1500',
    met: le(start, 1500),
  });

  const raw: Record<string, unknown> = {
    perQuery: { anchorSmall, anchorMedium, anchorLarge, boxEmpty, boxSmall, boxMedium, boxLarge, boxTls },
    wholeVsEmpty: { loadedMs: wholeLoaded, emptyMs: wholeEmpty },
    ingest: { one: ingest1, eight: ingest8 },
    loads: ['load-small', 'load-medium', 'load-large'].map((n) => part<LoadPart>(n) ?? null),
    storeSync: store ?? null,
    rss: rss ?? null,
    loadRss: loadRss ?? null,
    startup: startup ?? null,
    responses: part('responses') ?? null,
  };
  return { meta, metrics, raw };
}

function cell(value: number | null, unit = ''): string {
  if (value === null) return 'n/a';
  return `${value}${unit}`;
}

export function formatTable(metrics: readonly Metric[]): string {
  const rows = [['metric', 'unit', 'box', 'anchor / reference', 'ratio', 'target', 'met?']];
  for (const m of metrics) {
    rows.push([
      m.metric,
      m.unit,
      cell(m.box),
      m.anchor === null ? '-' : `${m.anchor} (${m.anchorLabel})`,
      m.ratio === null ? '-' : `${m.ratio}x ${m.ratioLabel}`,
      m.target,
      m.met === null ? '' : m.met ? 'yes' : 'NO',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((x, c) => x.padEnd(widths[c] ?? 0))
      .join(' | ')
      .trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.slice(1).map(line)].join('\n');
}

function main(): void {
  const { values } = parseArgs({ options: { work: { type: 'string' }, out: { type: 'string' } } });
  if (values.work === undefined || values.out === undefined) throw new Error('usage: report.ts --work DIR --out FILE');
  const { meta, metrics, raw } = buildMetrics(values.work);
  writeFileSync(values.out, `${JSON.stringify({ generatedAt: new Date().toISOString(), meta, metrics, raw }, null, 2)}\n`);
  console.log(formatTable(metrics));
  if (meta.quick) console.log('\nBENCH_QUICK=1: small sizes and few runs; the targets apply to the full run only.');
}

if (import.meta.main) main();
