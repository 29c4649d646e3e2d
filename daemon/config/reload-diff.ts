// What a config reload changes: the peer lists, entry by entry, and every other setting, which takes
// effect only at a restart (reported as a warning per setting, the running value kept).
import type { EdgeConfig } from './edge-config-schema.ts';
import type { ConfigIssue } from './schema-kit.ts';

export interface PeerChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/** Added / removed / changed entries of two peer lists, matched by `key`. */
export function diffBy<T>(before: readonly T[], after: readonly T[], key: (t: T) => string): PeerChanges {
  const old = new Map(before.map((t) => [key(t), t]));
  const now = new Map(after.map((t) => [key(t), t]));
  const added = [...now.keys()].filter((k) => !old.has(k));
  const removed = [...old.keys()].filter((k) => !now.has(k));
  const changed = [...now].filter(([k, t]) => old.has(k) && canonical(old.get(k)) !== canonical(t)).map(([k]) => k);
  return { added, removed, changed };
}

/** Everything but the peer lists takes effect only at restart: one warning per differing setting. */
export function restartRequired(running: EdgeConfig, next: EdgeConfig): ConfigIssue[] {
  const strip = (c: EdgeConfig): Record<string, unknown> => ({
    ...c,
    hl7: { ...c.hl7, peers: undefined },
    dicom: { ...c.dicom, modalities: undefined },
  });
  const out: ConfigIssue[] = [];
  walkDiff(strip(running), strip(next), '', out);
  return out;
}

function walkDiff(a: unknown, b: unknown, path: string, out: ConfigIssue[]): void {
  if (canonical(a) === canonical(b)) return;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  // Listener sections and arrays are reported whole: half a listener change means nothing.
  const whole = /(^|\.)(listen|tls|plain|pull)$/.test(path);
  if (isObject(a) && isObject(b) && !whole) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walkDiff(a[k], b[k], path === '' ? k : `${path}.${k}`, out);
    return;
  }
  const listener = /^(hl7\.listen|dicom\.tls|dicom\.plain|audit\.pull)/.test(path);
  out.push({
    severity: 'warning',
    code: 'restart-required',
    path,
    message: listener
      ? 'listener changes need a restart of edged; the old listener keeps running'
      : 'takes effect only after a restart of edged; the running value is kept',
  });
}

/** JSON with sorted keys, so that key order in the file does not count as a change. */
function canonical(v: unknown): string {
  return (
    JSON.stringify(v, (_k, value: unknown) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
        : value,
    ) ?? 'undefined'
  );
}
