// docs/audit-events.md is the operator's reference for every audit event the box records. The registry
// (daemon/core/audit-events.ts) is what the code can record (a type outside it does not compile), so
// this test walks the registry and fails when the page misses a type, names another Event ID,
// EventTypeCode, action or outcome for it, or documents a type the registry does not hold.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { AuditEventId, AuditEventTypeCode, AuditEvents, type AuditEventSpec } from '../../daemon/core/audit-events.ts';

const doc = readFileSync(new URL('../../docs/audit-events.md', import.meta.url), 'utf8');

interface Row {
  readonly type: string;
  readonly id: string;
  readonly action: string;
  readonly outcome: string;
}

/** The rows of every event table: `| \`type\` | ID | A | O | when | participants |` (`\|` is a pipe in a cell). */
function rows(text: string): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const line of text.split('\n')) {
    const m = /^\| `([a-z0-9-]+(?:\.[a-z0-9-]+)+)` \|/.exec(line);
    if (m === null) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    out.set(m[1]!, { type: m[1]!, id: cells[1] ?? '', action: cells[2] ?? '', outcome: cells[3] ?? '' });
  }
  return out;
}

const documented = rows(doc);
const registry = Object.entries(AuditEvents) as [string, AuditEventSpec][];

/** `110126 Node Authentication` after "EventTypeCode" in the ID cell, and the Event ID codes before it. */
function idCell(cell: string): { eventIds: string[]; eventTypeCode: string | undefined } {
  const [ids = '', typeCode] = cell.split(/EventTypeCode/);
  return { eventIds: [...new Set(ids.match(/\b\d{6}\b/g) ?? [])].sort(), eventTypeCode: typeCode?.match(/\b\d{6}\b/)?.[0] };
}

/** The EventActionCodes a cell names: single capital letters standing alone (`C (ORC-1 NW), U (...)`). */
const actionsIn = (cell: string): string[] => [...new Set(cell.match(/(?<![A-Za-z0-9-])[CRUDE](?![A-Za-z0-9-])/g) ?? [])].sort();

test('the page has event tables the parser reads', (t) => {
  // Guards against a change of table layout that would make every check below vacuous.
  t.true(documented.size >= registry.length, `only ${documented.size} rows read from docs/audit-events.md`);
  t.deepEqual(documented.get('hl7.peer-refused'), { type: 'hl7.peer-refused', id: '110113 Security Alert; EventTypeCode 110126 Node Authentication', action: 'E', outcome: '4' });
  t.deepEqual(actionsIn(documented.get('hl7.order-committed')?.action ?? ''), ['C', 'D', 'U']);
});

test('every type in the registry has a row in docs/audit-events.md', (t) => {
  const missing = registry.map(([type]) => type).filter((type) => !documented.has(type));
  t.deepEqual(missing, [], `add rows to docs/audit-events.md for: ${missing.join(', ')}`);
});

test('each row names the Event IDs and the EventTypeCode the registry gives its type', (t) => {
  for (const [type, spec] of registry) {
    const row = documented.get(type);
    if (row === undefined) continue; // reported above
    const cell = idCell(row.id);
    t.deepEqual(cell.eventIds, spec.eventIds.map((id) => AuditEventId[id].code).sort(), `${type}: Event ID`);
    for (const id of spec.eventIds) t.true(row.id.includes(`${AuditEventId[id].code} ${AuditEventId[id].meaning}`), `${type}: ${id} named with its meaning`);
    const code = spec.eventTypeCode === undefined ? undefined : AuditEventTypeCode[spec.eventTypeCode];
    t.is(cell.eventTypeCode, code?.code, `${type}: EventTypeCode`);
    if (code !== undefined) t.true(row.id.includes(`EventTypeCode ${code.code} ${code.meaning}`), `${type}: EventTypeCode meaning`);
  }
});

test('each row names the actions and the outcome the registry gives its type', (t) => {
  for (const [type, spec] of registry) {
    const row = documented.get(type);
    if (row === undefined) continue;
    t.deepEqual(actionsIn(row.action), [...new Set(spec.actions)].sort(), `${type}: EventActionCode`);
    t.is(row.outcome, String(spec.outcome), `${type}: EventOutcomeIndicator`);
  }
});

test('the page documents no type the registry does not hold', (t) => {
  t.deepEqual([...documented.keys()].filter((type) => !Object.hasOwn(AuditEvents, type)), []);
});
