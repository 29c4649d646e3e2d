import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DataDictionary, dictionaryEntryOf, isKeyword, Tag, type Keyword } from './data-dictionary.ts';

const entries = Object.entries(DataDictionary) as [Keyword, (typeof DataDictionary)[Keyword]][];

test('every tag has one keyword, and the entries are in tag order', (t) => {
  const tags = entries.map(([, e]) => e.tag);
  t.is(new Set(tags).size, tags.length, 'a tag is listed twice');
  t.deepEqual(
    tags,
    [...tags].sort((a, b) => a - b),
  );
  for (const [keyword, e] of entries) {
    t.is(dictionaryEntryOf(e.tag)?.keyword, keyword);
    t.is(Tag[keyword], e.tag);
  }
  t.true(isKeyword('PatientName'));
  t.false(isKeyword('toString'), 'an inherited property is no keyword');
  t.is(dictionaryEntryOf(0x00091010), undefined);
});

test('Type of Patient ID and Long Code Value are dictionary entries', (t) => {
  // Type of Patient ID and Long Code Value once lived in a table of their own and decoded as UN.
  t.like(dictionaryEntryOf(0x00100022), { keyword: 'TypeOfPatientID', vr: 'CS' });
  t.like(dictionaryEntryOf(0x00080119), { keyword: 'LongCodeValue', vr: 'UC' });
});

/** DCMTK's data dictionary: DCMDICTPATH when set, else the one Debian's libdcmtk package installs. */
function dcmtkDictionaryPath(): string | undefined {
  const fromEnv = (process.env['DCMDICTPATH'] ?? '').split(':').find((p) => p.endsWith('dicom.dic') && existsSync(p));
  if (fromEnv !== undefined) return fromEnv;
  const share = '/usr/share';
  if (!existsSync(share)) return undefined;
  const dir = readdirSync(share)
    .filter((d) => /^libdcmtk\d+$/.test(d))
    .sort()
    .at(-1);
  const path = dir === undefined ? undefined : join(share, dir, 'dicom.dic');
  return path !== undefined && existsSync(path) ? path : undefined;
}

/** DCMTK writes the PS3.6 VR alternatives as lower-case codes (dcmvr.cc); each stands for these VRs. */
const DCMTK_VR_ALTERNATIVES: Readonly<Record<string, readonly string[]>> = {
  ox: ['OB', 'OW'],
  px: ['OB', 'OW'],
  xs: ['US', 'SS'],
  lt: ['US', 'SS', 'OW'],
  up: ['UL'],
};

const dcmtkPath = dcmtkDictionaryPath();
const dcmtkTest = dcmtkPath === undefined ? test.skip : test;
const dcmtkTitle =
  dcmtkPath === undefined
    ? "every entry has the keyword and VR of DCMTK's dicom.dic (skipped: no dicom.dic, install dcmtk or set DCMDICTPATH)"
    : `every entry has the keyword and VR of DCMTK's dicom.dic (${dcmtkPath})`;

dcmtkTest(dcmtkTitle, (t) => {
  const dcmtk = new Map<number, { readonly vr: string; readonly keyword: string }>();
  for (const line of readFileSync(dcmtkPath!, 'utf8').split('\n')) {
    // Fields are tab-separated: (gggg,eeee) VR Keyword VM Version; ranges (gggg-gggg,...) are skipped.
    const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)\t(\S+)\t(\S+)\t/.exec(line);
    if (m !== null) dcmtk.set(Number.parseInt(`${m[1]}${m[2]}`, 16), { vr: m[3]!, keyword: m[4]!.replace(/^RETIRED_/, '') });
  }
  t.true(dcmtk.size > 4000, `${dcmtkPath} parsed to only ${dcmtk.size} entries`);
  t.log(`${entries.length} entries compared with ${dcmtk.size} of ${dcmtkPath}`);
  const mismatches: string[] = [];
  for (const [keyword, e] of entries) {
    const theirs = dcmtk.get(e.tag);
    const where = `${keyword} (${e.tag.toString(16).padStart(8, '0')})`;
    if (theirs === undefined) mismatches.push(`${where} is not in DCMTK's dictionary`);
    else if (theirs.keyword !== keyword) mismatches.push(`${where}: DCMTK's keyword is ${theirs.keyword}`);
    else if (!(DCMTK_VR_ALTERNATIVES[theirs.vr] ?? [theirs.vr]).includes(e.vr))
      mismatches.push(`${where}: VR ${e.vr}, DCMTK's is ${theirs.vr}`);
  }
  t.deepEqual(mismatches, []);
});
