// docs/audit-events.md lists every audit event the box emits. The event types are string literals in
// daemon/flows/ (the only place that records them), so this test reads them from the source and fails
// when the page misses one, or names the wrong PS3.15 Event ID for it.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { AuditEventId, type AuditEventIdName } from '../../daemon/core/audit.ts';

// The flows (daemon/flows/, the composition) are the only places that record audit events.
const flowsDir = new URL('../../daemon/flows/', import.meta.url);
const source = readdirSync(flowsDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => readFileSync(new URL(f, flowsDir), 'utf8'))
  .join('\n');
const doc = readFileSync(new URL('../../docs/audit-events.md', import.meta.url), 'utf8');

interface Emitted {
  readonly type: string;
  /** Event IDs the source names for it (the helper's, or `eventId:` literals next to `type:`). */
  readonly eventIds: readonly AuditEventIdName[];
}

const HELPER_EVENT_ID: Readonly<Record<string, AuditEventIdName>> = {
  securityAlert: 'SecurityAlert',
  appActivity: 'ApplicationActivity',
};

/** Audit types look like `area.what`; other `type:` literals in main.ts (parseArgs) have no dot. */
function emittedEvents(text: string): Emitted[] {
  const lines = text.split('\n');
  const found = new Map<string, Set<AuditEventIdName>>();
  const add = (type: string, ids: readonly AuditEventIdName[]): void => {
    const set = found.get(type) ?? new Set<AuditEventIdName>();
    for (const id of ids) set.add(id);
    found.set(type, set);
  };
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/\b(securityAlert|appActivity)\(\s*'([^']+)'/g)) {
      add(m[2]!, [HELPER_EVENT_ID[m[1]!]!]);
    }
    for (const m of line.matchAll(/\btype:\s*'([a-z0-9-]+(?:\.[a-z0-9-]+)+)'/g)) {
      const nearby = lines.slice(Math.max(0, i - 3), i + 1).join('\n');
      const ids = [...nearby.matchAll(/'([A-Za-z]+)'/g)]
        .map((q) => q[1]!)
        .filter((name): name is AuditEventIdName => Object.hasOwn(AuditEventId, name));
      add(m[1]!, ids);
    }
  });
  return [...found].map(([type, ids]) => ({ type, eventIds: [...ids] }));
}

function rowOf(type: string): string | undefined {
  return doc.split('\n').find((l) => l.startsWith(`| \`${type}\` |`));
}

const emitted = emittedEvents(source);

test('the source scan finds the audit events of the flows', (t) => {
  // Guards against a refactor that makes the scan below vacuous.
  t.true(emitted.length >= 10, `only ${emitted.length} event types found in daemon/flows/`);
  t.true(emitted.some((e) => e.type === 'hl7.order-committed'));
});

test('every audit event type emitted in daemon/flows/ has a row in docs/audit-events.md', (t) => {
  const missing = emitted.filter((e) => rowOf(e.type) === undefined).map((e) => e.type);
  t.deepEqual(missing, [], `add rows to docs/audit-events.md for: ${missing.join(', ')}`);
});

test('each row names the PS3.15 Event ID code the source records', (t) => {
  for (const { type, eventIds } of emitted) {
    const row = rowOf(type);
    if (row === undefined) continue; // reported above
    for (const id of eventIds) t.true(row.includes(AuditEventId[id].code), `${type}: ${AuditEventId[id].code} (${id})`);
  }
});

test('the page documents no event type the source does not emit', (t) => {
  const documented = [...doc.matchAll(/^\| `([a-z0-9-]+(?:\.[a-z0-9-]+)+)` \|/gm)].map((m) => m[1]!);
  const known = new Set(emitted.map((e) => e.type));
  t.deepEqual(documented.filter((type) => !known.has(type)), []);
});
