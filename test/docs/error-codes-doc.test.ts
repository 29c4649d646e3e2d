// docs/error-codes.md is the operator's reference for every code in the registry and every exit
// status; it drifts silently when someone adds a code, so this test ties it to the source.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ErrorCodes, type ErrorCode } from '../../daemon/core/errors.ts';
import { ExitCode } from '../../daemon/main.ts';

const doc = readFileSync(new URL('../../docs/error-codes.md', import.meta.url), 'utf8');

/** The table row of a code: `| \`CODE\` | kind | ...`. */
function rowOf(code: string): string[] | undefined {
  const line = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
  return line?.split('|').map((cell) => cell.trim());
}

test('every code in ErrorCodes has a row in docs/error-codes.md', (t) => {
  const missing = Object.keys(ErrorCodes).filter((code) => rowOf(code) === undefined);
  t.deepEqual(missing, [], `add a row to docs/error-codes.md for: ${missing.join(', ')}`);
});

test('each documented code states the kind the registry gives it', (t) => {
  for (const [code, { kind }] of Object.entries(ErrorCodes) as [ErrorCode, { kind: string }][]) {
    const row = rowOf(code);
    if (row === undefined) continue; // reported by the test above
    t.is(row[2], kind, code);
  }
});

test('the doc names no code the registry does not have', (t) => {
  const documented = [...doc.matchAll(/^\| `(EDGE_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
  t.true(documented.length > 0);
  t.deepEqual(documented.filter((c) => !Object.hasOwn(ErrorCodes, c)), []);
});

test('every exit status of edged is documented with its number and name', (t) => {
  for (const [name, status] of Object.entries(ExitCode)) {
    t.true(doc.includes(`| ${status} | \`${name}\` |`), `exit status ${status} (${name}) missing`);
  }
});
