// Log lines carry a stable `event` that operators and tests branch on (docs/operations.md#logs). One
// spelling, `area.kebab-case` (`hl7.peer.tls-refused`), so a grep for an event finds it; and the
// events the operations page names must be ones the daemon logs, or a renamed event leaves the
// operator grepping for a line that never comes.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../support/paths.ts';

const EVENT_NAME = /^[a-z0-9]+(\.[a-z0-9]+(-[a-z0-9]+)*)+$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

interface LoggedEvent {
  readonly name: string;
  readonly where: string;
}

/** First arguments of logger calls that are string literals (`logger.warn('hl7.peer.refused', …)`), across line breaks. */
function loggedEvents(text: string, file: string): LoggedEvent[] {
  const out: LoggedEvent[] = [];
  for (const m of text.matchAll(/(?<!console)\.(?:debug|info|warn|error)\(\s*(['`])([^'`\n]*)\1/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ name: m[2]!, where: `${file}:${line}` });
  }
  return out;
}

const daemonDir = join(REPO_ROOT, 'daemon');
const logged = sourceFiles(daemonDir).flatMap((f) => loggedEvents(readFileSync(f, 'utf8'), relative(REPO_ROOT, f)));

test('the scan finds the daemon\'s log events', (t) => {
  // Guards against a refactor that makes the checks below vacuous.
  t.true(logged.length >= 100, `only ${logged.length} logger calls found under daemon/`);
  t.true(logged.some((e) => e.name === 'edged.ready'));
  t.true(logged.some((e) => e.name === 'hl7.message.committed'));
});

test('the scan reads a multi-line call and ignores console', (t) => {
  const found = loggedEvents("log.warn(\n  'a.b-c', {});\nconsole.error('edgectl: x');\nthis.#log.info(`x.y`)", 'f.ts');
  t.deepEqual(found, [{ name: 'a.b-c', where: 'f.ts:1' }, { name: 'x.y', where: 'f.ts:4' }]);
});

test('the pattern refuses snake_case, camelCase and single words', (t) => {
  for (const bad of ['hl7.peer.tls_refused', 'hl7.peerRefused', 'ready', 'hl7..x', 'hl7.-x', 'Hl7.x']) t.false(EVENT_NAME.test(bad), bad);
  for (const good of ['hl7.peer.tls-refused', 'edged.ready', 'store.control-ids-pruned', 'dicom.cfind.done']) t.true(EVENT_NAME.test(good), good);
});

test('every log event in the daemon source is area.kebab-case', (t) => {
  const bad = logged.filter((e) => !EVENT_NAME.test(e.name)).map((e) => `${e.where}: ${e.name}`);
  t.deepEqual(bad, [], 'rename to area.kebab-case (and update docs/operations.md)');
});

test('every event named in the log table of docs/operations.md is logged by the daemon', (t) => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Logs'), doc.indexOf('\n## ', doc.indexOf('\n## Logs') + 1));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  const documented = rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
  t.true(documented.length >= 30, `only ${documented.length} events found in the log table`);
  const names = new Set(logged.map((e) => e.name));
  t.deepEqual(documented.filter((e) => !names.has(e)), [], 'the log table names events the daemon does not log');
});
