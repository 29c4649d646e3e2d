// The DICOM conformance statement lists exactly the Storage SOP classes the box accepts by default.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STORAGE_SOP_CLASSES } from '../../daemon/core/storage-sop-classes.ts';
import { REPO_ROOT } from '../support/paths.ts';

test('docs/dicom-conformance.md lists every default Storage SOP class, and no other', (t) => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'dicom-conformance.md'), 'utf8');
  const section = doc.slice(doc.indexOf('default Storage SOP classes</summary>'), doc.indexOf('</details>'));
  const listed = [...section.matchAll(/^\| (.+) \| ([0-9.]+) \|$/gm)].map((m) => [m[2], m[1]]);
  t.deepEqual(listed, STORAGE_SOP_CLASSES.map(([uid, name]) => [uid, name]));
});
