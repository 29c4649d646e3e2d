// Drift between the table the kernel holds and the plan, and the counters of its rules. Pure: the
// caller lists the table with `nft -s list table` (text) and `nft -j list table` (counters).

export interface SegmentationDrift {
  readonly drift: boolean;
  /** The table is not loaded at all. */
  readonly absent: boolean;
  /** Lines of the plan the loaded table lacks, and lines it has that the plan does not. */
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
}

/** One statement per line: nft wraps long set element lists, and stateful values are not the plan's business. */
export function normalizeTable(text: string): string[] {
  return text
    .replace(/,\s*\n\s*/g, ', ')
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Compares line by line in order: a reordered rule is drift too (order decides what an nft chain does). */
export function compareTables(planned: string, loaded: string | undefined): SegmentationDrift {
  if (loaded === undefined) return { drift: true, absent: true, missing: normalizeTable(planned), unexpected: [] };
  const want = normalizeTable(planned);
  const have = normalizeTable(loaded);
  const identical = want.length === have.length && want.every((l, i) => l === have[i]);
  if (identical) return { drift: false, absent: false, missing: [], unexpected: [] };
  const haveCount = multiset(have);
  const wantCount = multiset(want);
  const missing = want.filter((l) => take(haveCount, l) === false);
  const unexpected = have.filter((l) => take(wantCount, l) === false);
  // Same lines in another order: report the first place they part.
  if (missing.length === 0 && unexpected.length === 0) {
    const at = want.findIndex((l, i) => l !== have[i]);
    return { drift: true, absent: false, missing: [`(order) ${want[at] ?? ''}`], unexpected: [`(order) ${have[at] ?? ''}`] };
  }
  return { drift: true, absent: false, missing, unexpected };
}

function multiset(lines: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
  return m;
}

function take(m: Map<string, number>, line: string): boolean {
  const n = m.get(line) ?? 0;
  if (n === 0) return false;
  m.set(line, n - 1);
  return true;
}

export interface RuleCounter {
  readonly chain: string;
  readonly comment: string;
  readonly packets: number;
  readonly bytes: number;
}

/** Counters of commented rules from `nft -j list table` output. */
export function ruleCounters(json: string): RuleCounter[] {
  const doc = JSON.parse(json) as { nftables?: unknown };
  if (!Array.isArray(doc.nftables)) throw new TypeError('not nft JSON output (no "nftables" array)');
  const counters: RuleCounter[] = [];
  for (const item of doc.nftables as Array<Record<string, unknown>>) {
    const rule = item['rule'] as { chain?: string; comment?: string; expr?: Array<Record<string, unknown>> } | undefined;
    if (rule?.comment === undefined || !Array.isArray(rule.expr)) continue;
    const counter = rule.expr.find((e) => 'counter' in e)?.['counter'] as { packets?: number; bytes?: number } | undefined;
    if (counter === undefined) continue;
    counters.push({ chain: rule.chain ?? '', comment: rule.comment, packets: counter.packets ?? 0, bytes: counter.bytes ?? 0 });
  }
  return counters;
}
