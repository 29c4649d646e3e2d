import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDuplicateKeys } from './duplicate-keys.ts';
import { checkConfigFile } from './load-config.ts';

test('a key twice in one object is found with its path and both lines', (t) => {
  const text = '{\n "dicom": {\n  "plain": {\n   "host": "127.0.0.1",\n   "port": 0,\n   "host": "0.0.0.0"\n  }\n }\n}';
  t.deepEqual(findDuplicateKeys(text), [{ path: 'dicom.plain.host', line: 6, firstLine: 4 }]);
});

test('paths go through arrays; equal keys in different objects are not duplicates', (t) => {
  const text = JSON.stringify({ a: [{ name: 'x' }, { name: 'y' }], b: { name: 'z' } }).replace('{"name":"y"}', '{"name":"y","name":"w"}');
  t.deepEqual(
    findDuplicateKeys(text).map((d) => d.path),
    ['a[1].name'],
  );
  t.deepEqual(findDuplicateKeys(JSON.stringify({ a: [{ k: 1 }, { k: 2 }], b: { k: 3 }, k: [] })), []);
});

test('strings that look like structure, escapes and keys that differ only after decoding', (t) => {
  t.deepEqual(findDuplicateKeys('{"a":"}{,\\"a\\":","b":["{"],"c":1}'), []);
  // "\u0061" is "a": JSON.parse would keep only the second.
  t.deepEqual(
    findDuplicateKeys('{"a":1,"\\u0061":2}').map((d) => d.path),
    ['a'],
  );
  t.deepEqual(
    findDuplicateKeys('{"x":{"":1,"":2}}').map((d) => d.path),
    ['x.'],
  );
});

test('checkConfigFile reports duplicates as errors and returns no config', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-dup-'));
  const file = join(dir, 'edge.json');
  writeFileSync(file, '{"site":{"name":"A","name":"B"}}');
  const { config, issues } = checkConfigFile(file, { checkFiles: false });
  t.is(config, undefined);
  const dup = issues.find((i) => i.path === 'site.name');
  t.is(dup?.code, 'duplicate');
  t.is(dup?.severity, 'error');
  t.regex(dup?.message ?? '', /appears twice in one object \(lines 1 and 1\); only the last one would count/);
});
