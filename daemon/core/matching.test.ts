import test from 'ava';
import type { DataElement, DataSet, Vr } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import { isEdgeError } from './errors.ts';
import { compileQuery, type CompileQueryOptions } from './matching.ts';

/** [tag, vr, value]; an SQ value is a list of items, each a list of entries. */
type Entry = readonly [number, Vr, string | readonly (readonly Entry[])[]];

function ds(entries: readonly Entry[]): DataSet {
  const out: DataSet = new Map();
  for (const [tag, vr, value] of entries) {
    out.set(tag, (typeof value === 'string' ? { vr, value } : { vr: 'SQ', value: value.map(ds) }) as DataElement);
  }
  return out;
}

const DateTimeTag = Tag.DateTime; // a DT attribute, for DT range rows
const SPS = Tag.ScheduledProcedureStepSequence;
const DATE = Tag.ScheduledProcedureStepStartDate;
const TIME = Tag.ScheduledProcedureStepStartTime;

interface Row {
  readonly rule: string;
  readonly query: readonly Entry[];
  readonly candidate: readonly Entry[];
  readonly expected: boolean;
  readonly options?: CompileQueryOptions;
}

const sps = (entries: readonly Entry[]): Entry => [SPS, 'SQ', [entries]];
const spsItems = (...items: (readonly Entry[])[]): Entry => [SPS, 'SQ', items];
const dateTime = (date: string, time: string): Entry =>
  sps([
    [DATE, 'DA', date],
    [TIME, 'TM', time],
  ]);

const rows: readonly Row[] = [
  // C.2.2.2.1 Single Value Matching
  { rule: 'single value: equal', query: [[Tag.Modality, 'CS', 'CT']], candidate: [[Tag.Modality, 'CS', 'CT']], expected: true },
  { rule: 'single value: case-sensitive', query: [[Tag.Modality, 'CS', 'ct']], candidate: [[Tag.Modality, 'CS', 'CT']], expected: false },
  { rule: 'single value: different', query: [[Tag.PatientID, 'LO', 'A1']], candidate: [[Tag.PatientID, 'LO', 'A2']], expected: false },
  {
    rule: 'single value: padding ignored',
    query: [[Tag.PatientID, 'LO', 'A1 ']],
    candidate: [[Tag.PatientID, 'LO', 'A1']],
    expected: true,
  },
  {
    rule: 'single value: prefix is not a match',
    query: [[Tag.PatientID, 'LO', 'A1']],
    candidate: [[Tag.PatientID, 'LO', 'A12']],
    expected: false,
  },
  {
    rule: 'single value: numeric DS compares numbers',
    query: [[Tag.PatientWeight, 'DS', '70']],
    candidate: [[Tag.PatientWeight, 'DS', '70.0']],
    expected: true,
  },
  // PN decisions
  {
    rule: 'PN: case-insensitive',
    query: [[Tag.PatientName, 'PN', 'doe^jane']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: true,
  },
  {
    rule: 'PN: trailing empty components ignored',
    query: [[Tag.PatientName, 'PN', 'DOE^JANE^^']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: true,
  },
  {
    rule: 'PN: other given name',
    query: [[Tag.PatientName, 'PN', 'DOE^JOHN']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: false,
  },
  {
    rule: 'PN: family name alone is not single-value equal',
    query: [[Tag.PatientName, 'PN', 'DOE']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: false,
  },
  {
    rule: 'PN: one group matches any candidate group',
    query: [[Tag.PatientName, 'PN', '山田^太郎']],
    candidate: [[Tag.PatientName, 'PN', 'YAMADA^TARO=山田^太郎=やまだ^たろう']],
    expected: true,
  },
  {
    rule: 'PN: groups match by position',
    query: [[Tag.PatientName, 'PN', 'yamada^taro=山田^太郎']],
    candidate: [[Tag.PatientName, 'PN', 'YAMADA^TARO=山田^太郎=やまだ^たろう']],
    expected: true,
  },
  {
    rule: 'PN: empty query group is universal',
    query: [[Tag.PatientName, 'PN', '=山田^太郎']],
    candidate: [[Tag.PatientName, 'PN', 'YAMADA^TARO=山田^太郎']],
    expected: true,
  },
  {
    rule: 'PN: a differing group fails',
    query: [[Tag.PatientName, 'PN', 'YAMADA^TARO=山田^花子']],
    candidate: [[Tag.PatientName, 'PN', 'YAMADA^TARO=山田^太郎']],
    expected: false,
  },
  {
    rule: 'PN: wildcard spans components, case-insensitive',
    query: [[Tag.PatientName, 'PN', 'doe*']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: true,
  },
  { rule: 'PN: DOE^* matches DOE', query: [[Tag.PatientName, 'PN', 'DOE^*']], candidate: [[Tag.PatientName, 'PN', 'DOE']], expected: true },
  // C.2.2.2.3 Universal Matching
  {
    rule: 'universal: zero length matches a value',
    query: [[Tag.PatientID, 'LO', '']],
    candidate: [[Tag.PatientID, 'LO', 'A1']],
    expected: true,
  },
  {
    rule: 'universal: zero length matches an empty value',
    query: [[Tag.PatientID, 'LO', '']],
    candidate: [[Tag.PatientID, 'LO', '']],
    expected: true,
  },
  {
    rule: 'universal: * alone matches an empty value (K.2.2.1.1.1 Note 1)',
    query: [[Tag.AccessionNumber, 'SH', '*']],
    candidate: [[Tag.AccessionNumber, 'SH', '']],
    expected: true,
  },
  { rule: 'universal: ** alone', query: [[Tag.Modality, 'CS', '**']], candidate: [[Tag.Modality, 'CS', 'MR']], expected: true },
  // C.2.2.2.4 Wild Card Matching
  { rule: 'wildcard: ? is one character', query: [[Tag.Modality, 'CS', 'C?']], candidate: [[Tag.Modality, 'CS', 'CT']], expected: true },
  {
    rule: 'wildcard: ? is not zero characters',
    query: [[Tag.Modality, 'CS', 'C?']],
    candidate: [[Tag.Modality, 'CS', 'C']],
    expected: false,
  },
  {
    rule: 'wildcard: ? is not two characters',
    query: [[Tag.Modality, 'CS', 'C?']],
    candidate: [[Tag.Modality, 'CS', 'CTX']],
    expected: false,
  },
  {
    rule: 'wildcard: ? is one non-ASCII character',
    query: [[Tag.PatientID, 'LO', 'M?LLER']],
    candidate: [[Tag.PatientID, 'LO', 'MÜLLER']],
    expected: true,
  },
  {
    rule: 'wildcard: leading *',
    query: [[Tag.AccessionNumber, 'SH', '*123']],
    candidate: [[Tag.AccessionNumber, 'SH', 'ABC123']],
    expected: true,
  },
  {
    rule: 'wildcard: case-sensitive outside PN',
    query: [[Tag.ScheduledStationAETitle, 'AE', 'ct*']],
    candidate: [[Tag.ScheduledStationAETitle, 'AE', 'CT1']],
    expected: false,
  },
  {
    rule: 'wildcard: regex characters are literal',
    query: [[Tag.AccessionNumber, 'SH', 'A.C*']],
    candidate: [[Tag.AccessionNumber, 'SH', 'ABCD']],
    expected: false,
  },
  {
    rule: 'wildcard: literal dot matches',
    query: [[Tag.AccessionNumber, 'SH', 'A.C*']],
    candidate: [[Tag.AccessionNumber, 'SH', 'A.CD']],
    expected: true,
  },
  {
    rule: 'wildcard: not on UI',
    query: [[Tag.StudyInstanceUID, 'UI', '1.2.*']],
    candidate: [[Tag.StudyInstanceUID, 'UI', '1.2.3']],
    expected: false,
  },
  // Empty candidate values (K.2.2.1.1.1) and Empty Value Matching (C.2.2.2.7)
  {
    rule: 'empty candidate: fails single value',
    query: [[Tag.Modality, 'CS', 'CT']],
    candidate: [[Tag.Modality, 'CS', '']],
    expected: false,
  },
  {
    rule: 'empty candidate: fails a non-trivial wildcard',
    query: [[Tag.AccessionNumber, 'SH', 'A*']],
    candidate: [[Tag.AccessionNumber, 'SH', '']],
    expected: false,
  },
  {
    rule: 'empty candidate: fails a range',
    query: [[Tag.PatientBirthDate, 'DA', '19000101-']],
    candidate: [[Tag.PatientBirthDate, 'DA', '']],
    expected: false,
  },
  {
    rule: 'empty value matching: "" matches empty',
    query: [[Tag.AccessionNumber, 'SH', '""']],
    candidate: [[Tag.AccessionNumber, 'SH', '']],
    expected: true,
  },
  {
    rule: 'empty value matching: "" fails a value',
    query: [[Tag.AccessionNumber, 'SH', '""']],
    candidate: [[Tag.AccessionNumber, 'SH', 'A1']],
    expected: false,
  },
  {
    rule: 'unsupported key (absent in candidate) is ignored',
    query: [[Tag.PatientComments, 'LT', 'x']],
    candidate: [[Tag.PatientID, 'LO', 'A1']],
    expected: true,
  },
  // C.2.2.2.2 List of UID Matching and multiple values
  {
    rule: 'UID list: one of',
    query: [[Tag.StudyInstanceUID, 'UI', '1.2.3\\1.2.4']],
    candidate: [[Tag.StudyInstanceUID, 'UI', '1.2.4']],
    expected: true,
  },
  {
    rule: 'UID list: none of',
    query: [[Tag.StudyInstanceUID, 'UI', '1.2.3\\1.2.4']],
    candidate: [[Tag.StudyInstanceUID, 'UI', '1.2.5']],
    expected: false,
  },
  {
    rule: 'UID: trailing NUL padding ignored',
    query: [[Tag.StudyInstanceUID, 'UI', '1.2.3']],
    candidate: [[Tag.StudyInstanceUID, 'UI', '1.2.3\0']],
    expected: true,
  },
  {
    rule: 'UID: no prefix match',
    query: [[Tag.StudyInstanceUID, 'UI', '1.2.3']],
    candidate: [[Tag.StudyInstanceUID, 'UI', '1.2.34']],
    expected: false,
  },
  {
    rule: 'multiple values: any query value',
    query: [[Tag.Modality, 'CS', 'CT\\MR']],
    candidate: [[Tag.Modality, 'CS', 'MR']],
    expected: true,
  },
  { rule: 'multiple values: none', query: [[Tag.Modality, 'CS', 'CT\\MR']], candidate: [[Tag.Modality, 'CS', 'US']], expected: false },
  {
    rule: 'multiple values: any candidate value',
    query: [[Tag.Modality, 'CS', 'PT']],
    candidate: [[Tag.Modality, 'CS', 'CT\\PT']],
    expected: true,
  },
  {
    rule: 'LT: backslash is text, not a separator',
    query: [[Tag.PatientComments, 'LT', 'a\\b']],
    candidate: [[Tag.PatientComments, 'LT', 'a']],
    expected: false,
  },
  // C.2.2.2.5 Range Matching: DA
  {
    rule: 'DA range: lower boundary',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240101']],
    expected: true,
  },
  {
    rule: 'DA range: upper boundary',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240131']],
    expected: true,
  },
  {
    rule: 'DA range: after',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240201']],
    expected: false,
  },
  {
    rule: 'DA range: before',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20231231']],
    expected: false,
  },
  {
    rule: 'DA range -B: includes B',
    query: [[Tag.PatientBirthDate, 'DA', '-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240131']],
    expected: true,
  },
  {
    rule: 'DA range -B: after B',
    query: [[Tag.PatientBirthDate, 'DA', '-20240131']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240201']],
    expected: false,
  },
  {
    rule: 'DA range A-: includes A',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240101']],
    expected: true,
  },
  {
    rule: 'DA range A-: before A',
    query: [[Tag.PatientBirthDate, 'DA', '20240101-']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20231231']],
    expected: false,
  },
  {
    rule: 'DA single value',
    query: [[Tag.PatientBirthDate, 'DA', '20240105']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240106']],
    expected: false,
  },
  {
    rule: 'DA legacy dotted form',
    query: [[Tag.PatientBirthDate, 'DA', '2024.01.05']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240105']],
    expected: true,
  },
  {
    rule: 'DA - alone is universal',
    query: [[Tag.PatientBirthDate, 'DA', '-']],
    candidate: [[Tag.PatientBirthDate, 'DA', '20240105']],
    expected: true,
  },
  // TM
  { rule: 'TM range: lower boundary', query: [[TIME, 'TM', '0800-1000']], candidate: [[TIME, 'TM', '080000']], expected: true },
  {
    rule: 'TM range: upper bound covers its minute',
    query: [[TIME, 'TM', '0800-1000']],
    candidate: [[TIME, 'TM', '100059.5']],
    expected: true,
  },
  { rule: 'TM range: after', query: [[TIME, 'TM', '0800-1000']], candidate: [[TIME, 'TM', '1001']], expected: false },
  { rule: 'TM single value of hour precision', query: [[TIME, 'TM', '10']], candidate: [[TIME, 'TM', '103000']], expected: true },
  { rule: 'TM single value: other hour', query: [[TIME, 'TM', '10']], candidate: [[TIME, 'TM', '110000']], expected: false },
  { rule: 'TM legacy colons', query: [[TIME, 'TM', '08:00-10:00']], candidate: [[TIME, 'TM', '0900']], expected: true },
  // DT
  {
    rule: 'DT range: inside',
    query: [[DateTimeTag, 'DT', '20240101120000-20240101130000']],
    candidate: [[DateTimeTag, 'DT', '20240101123000']],
    expected: true,
  },
  {
    rule: 'DT range: outside',
    query: [[DateTimeTag, 'DT', '20240101120000-20240101130000']],
    candidate: [[DateTimeTag, 'DT', '20240101140000']],
    expected: false,
  },
  {
    rule: 'DT single value of day precision',
    query: [[DateTimeTag, 'DT', '20240101']],
    candidate: [[DateTimeTag, 'DT', '20240101235959']],
    expected: true,
  },
  // C.2.2.2.5.4 combined date-time range, across midnight
  {
    rule: 'combined: evening of day 1',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240101', '2300')],
    expected: true,
  },
  {
    rule: 'combined: early morning of day 2',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240102', '0100')],
    expected: true,
  },
  {
    rule: 'combined: start boundary',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240101', '220000')],
    expected: true,
  },
  {
    rule: 'combined: early morning of day 1 is before',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240101', '0100')],
    expected: false,
  },
  {
    rule: 'combined: after the end',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240102', '0300')],
    expected: false,
  },
  { rule: 'combined: open form A-', query: [dateTime('20240101-', '2200-')], candidate: [dateTime('20240102', '0100')], expected: true },
  {
    rule: 'combined: disabled by option',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240101', '2300')],
    expected: false,
    options: { combinedDateTime: false },
  },
  {
    rule: 'not combined: different forms match separately',
    query: [dateTime('20240101-20240102', '0800')],
    candidate: [dateTime('20240101', '2300')],
    expected: false,
  },
  {
    rule: 'not combined: separate match succeeds',
    query: [dateTime('20240101-20240102', '0800')],
    candidate: [dateTime('20240102', '0800')],
    expected: true,
  },
  {
    rule: 'combined: empty candidate time fails',
    query: [dateTime('20240101-20240102', '2200-0200')],
    candidate: [dateTime('20240101', '')],
    expected: false,
  },
  // C.2.2.2.6 Sequence Matching
  {
    rule: 'sequence: two keys in the same item',
    query: [
      sps([
        [Tag.Modality, 'CS', 'CT'],
        [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
      ]),
    ],
    candidate: [
      spsItems(
        [
          [Tag.Modality, 'CS', 'MR'],
          [Tag.ScheduledStationAETitle, 'AE', 'CT2'],
        ],
        [
          [Tag.Modality, 'CS', 'CT'],
          [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
        ],
      ),
    ],
    expected: true,
  },
  {
    rule: 'sequence: keys split across items do not match',
    query: [
      sps([
        [Tag.Modality, 'CS', 'CT'],
        [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
      ]),
    ],
    candidate: [
      spsItems(
        [
          [Tag.Modality, 'CS', 'CT'],
          [Tag.ScheduledStationAETitle, 'AE', 'CT2'],
        ],
        [
          [Tag.Modality, 'CS', 'MR'],
          [Tag.ScheduledStationAETitle, 'AE', 'CT1'],
        ],
      ),
    ],
    expected: false,
  },
  { rule: 'sequence: zero items is universal', query: [spsItems()], candidate: [spsItems()], expected: true },
  {
    rule: 'sequence: item of universal keys matches an empty sequence',
    query: [sps([[Tag.Modality, 'CS', '']])],
    candidate: [spsItems()],
    expected: true,
  },
  {
    rule: 'sequence: a key fails against an empty sequence',
    query: [sps([[Tag.Modality, 'CS', 'CT']])],
    candidate: [spsItems()],
    expected: false,
  },
  // C.2.2.2: never matched
  {
    rule: 'Specific Character Set is never matched',
    query: [[Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100']],
    candidate: [[Tag.SpecificCharacterSet, 'CS', 'ISO_IR 192']],
    expected: true,
  },
  { rule: 'group length is never matched', query: [[0x00100000, 'UL', '99']], candidate: [[0x00100000, 'UL', '1']], expected: true },
  {
    rule: 'isMatchingKey excludes a top-level key',
    query: [[Tag.PatientBirthDate, 'DA', '19000101']],
    candidate: [[Tag.PatientBirthDate, 'DA', '19800214']],
    expected: true,
    options: { isMatchingKey: (tag) => tag !== Tag.PatientBirthDate },
  },
  {
    rule: 'vrOf overrides a declared VR',
    query: [[Tag.PatientName, 'UN' as Vr, 'doe^jane']],
    candidate: [[Tag.PatientName, 'PN', 'DOE^JANE']],
    expected: true,
    options: { vrOf: (tag) => (tag === Tag.PatientName ? 'PN' : undefined) },
  },
];

for (const row of rows) {
  test(`matching: ${row.rule}`, (t) => {
    const matches = compileQuery(ds(row.query), row.options);
    t.is(matches(ds(row.candidate)), row.expected);
  });
}

test('matching: a malformed DA key is refused with a stable code and no value in the message', (t) => {
  const error = t.throws(() => compileQuery(ds([[Tag.PatientBirthDate, 'DA', '1980-02-14']])));
  t.true(isEdgeError(error, 'EDGE_WORKLIST_QUERY_INVALID'));
  t.false(error.message.includes('1980'));
});

test('matching: a wildcard on DA is refused, not matched literally', (t) => {
  t.throws(() => compileQuery(ds([[DATE, 'DA', '2024*']])), { code: 'EDGE_WORKLIST_QUERY_INVALID' } as never);
});

test('matching: one compiled query serves many candidates', (t) => {
  const matches = compileQuery(ds([[Tag.PatientName, 'PN', 'D*']]));
  const names = ['DOE^JANE', 'SMITH^JO', 'doe^x', ''];
  t.deepEqual(
    names.map((n) => matches(ds([[Tag.PatientName, 'PN', n]]))),
    [true, false, true, false],
  );
});
