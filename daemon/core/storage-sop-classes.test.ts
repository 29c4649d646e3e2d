// The Storage SOP class table against an independent list: the UID dictionary compiled into DCMTK's
// libdcmdata (dcuid.cc), read from the installed library. Every storage UID DCMTK knows is in the table
// or retired (or from DICOS/DICONDE, outside PS3.4); every class of the table DCMTK lacks is newer than
// the installed DCMTK. A class missing from the table, or a typo in a UID, fails here.
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Precondition, whenMet } from '../../test/support/preconditions.ts';
import { STANDARD_STORAGE_SOP_CLASS_UIDS, STORAGE_SOP_CLASSES, storageSopClassName } from './storage-sop-classes.ts';

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'];
const library = LIB_DIRS.filter((d) => existsSync(d))
  .flatMap((d) => readdirSync(d).map((f) => join(d, f)))
  .find((f) => /\/libdcmdata\.so\.\d+$/.test(f));
const needsDcmtkLibrary = (): Precondition => (library === undefined ? 'libdcmdata (DCMTK) is not installed' : undefined);

/** Storage UIDs of DCMTK 3.6.7 that are not in PS3.4 Table B.5-1: retired classes, DICOS and DICONDE. */
const RETIRED_OR_OUTSIDE_PS34: ReadonlySet<string> = new Set(
  [
    '3', '5', '6', '8', '9', '9.1', '10', '11', '12.3', '77.1', '77.2', '88.1', '88.2', '88.3', '88.4', '129',
    '200.4', '200.5', '200.6', '501.1', '501.2.1', '501.2.2', '501.3', '501.4', '501.5', '501.6', '601.1', '601.2',
  ].map((s) => `1.2.840.10008.5.1.4.1.1.${s}`),
); // prettier-ignore

/** Classes of the table published after DCMTK 3.6.7 (2022), or outside its storage UID prefix. */
const NEWER_THAN_DCMTK_367: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.1.1.11.12',
  '1.2.840.10008.5.1.4.1.1.201.1',
  '1.2.840.10008.5.1.4.1.1.481.23',
  '1.2.840.10008.5.1.4.1.1.481.24',
  '1.2.840.10008.5.1.4.1.1.481.25',
  '1.2.840.10008.5.1.4.1.1.6.3',
  '1.2.840.10008.5.1.4.1.1.77.1.8',
  '1.2.840.10008.5.1.4.1.1.77.1.9',
  '1.2.840.10008.5.1.4.1.1.9.1.4',
  '1.2.840.10008.5.1.4.34.10',
  '1.2.840.10008.5.1.4.34.7',
]);

test('the table has unique, well-formed UIDs and a name for each', (t) => {
  t.is(new Set(STANDARD_STORAGE_SOP_CLASS_UIDS).size, STORAGE_SOP_CLASSES.length);
  for (const [uid, name] of STORAGE_SOP_CLASSES) {
    t.regex(uid, /^1\.2\.840\.10008\.(\d+\.)+\d+$/);
    t.regex(name, /Storage/);
  }
  t.is(storageSopClassName('1.2.840.10008.5.1.4.1.1.88.67'), 'X-Ray Radiation Dose SR Storage');
  t.is(storageSopClassName('1.2.840.10008.5.1.4.31'), undefined, 'Modality Worklist is not a storage class');
});

whenMet(needsDcmtkLibrary())('every storage UID DCMTK knows is in the table or retired; the rest is newer than DCMTK', (t) => {
  const text = readFileSync(library!).toString('latin1');
  const dcmtk = new Set([...text.matchAll(/1\.2\.840\.10008\.5\.1\.4\.1\.1\.[0-9.]*[0-9]/g)].map((m) => m[0]));
  t.true(dcmtk.size > 150, `read ${dcmtk.size} storage UIDs from ${library}`);
  const ours = new Set(STANDARD_STORAGE_SOP_CLASS_UIDS);
  const missing = [...dcmtk].filter((u) => !ours.has(u) && !RETIRED_OR_OUTSIDE_PS34.has(u));
  t.deepEqual(missing, [], 'storage classes DCMTK knows that the table lacks');
  const unknown = [...ours].filter((u) => !dcmtk.has(u) && !NEWER_THAN_DCMTK_367.has(u));
  t.deepEqual(unknown, [], 'classes of the table DCMTK does not know (a typo?)');
});
