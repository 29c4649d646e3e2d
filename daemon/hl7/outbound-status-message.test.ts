// Every status message the box sends, read by the strict reader for its version (MSH-9, MSH-18 per table
// 0211, component counts), and what it carries: PID-3 as received, PID-5 from whichever name group exists.
import test from 'ava';
import type { ProcedureStatusPayload } from '../core/mpps-status.ts';
import { buildStatusMessage, outboundCharset, type StatusMessageStyle } from './outbound-status-message.ts';
import { parseHl7Message } from './message.ts';
import { readStrictHl7 } from './testing/strict-v2-reader.ts';

const base: ProcedureStatusPayload = {
  orderStatus: 'IP',
  placerOrderNumber: 'PL1',
  placerIssuer: 'RIS',
  fillerOrderNumber: 'F1',
  accessionNumber: 'ACC1',
  requestedProcedureId: 'RP1',
  requestedProcedureDescription: 'CT HEAD',
  requestedProcedureCode: { codeValue: 'CTH', codingSchemeDesignator: 'L', codeMeaning: 'CT HEAD' },
  scheduledProcedureStepId: 'SPS1',
  studyInstanceUid: '1.2.3',
  patient: { id: 'P1', issuer: 'H', name: 'DOE^JOHN' },
  modality: 'CT',
  performedStationAeTitle: 'CT01',
  ppsSopInstanceUid: '1.2.4',
  at: 0,
  discontinuationReason: undefined,
};
const header = {
  sendingApplication: 'EDGE',
  sendingFacility: 'F',
  receivingApplication: 'RIS',
  receivingFacility: 'H',
  controlId: '0000000000000042',
  processingId: 'P',
} as const;
const styles: readonly StatusMessageStyle[] = ['orm-o01', 'omi-o23'];
const names = ['DOE^JOHN', 'MÜLLER^JÜRGEN', '=山田^太郎=やまだ^たろう', '==ヤマダ^タロウ', 'Łukasz^Żółw', '山田^太郎'];

for (const style of styles) {
  for (const orderStatus of ['IP', 'CM', 'DC'] as const) {
    for (const name of names) {
      test(`${style} ${orderStatus} for ${name}: parsed strictly for its version`, (t) => {
        const bytes = buildStatusMessage({ ...base, orderStatus, patient: { ...base.patient, name } }, { ...header, style });
        const m = readStrictHl7(bytes);
        t.is(m.version, style === 'orm-o01' ? '2.3.1' : '2.5.1');
        t.is(m.field('ORC', 5), orderStatus);
        t.not(m.field('PID', 5), '', 'PID-5 is never empty when the patient has a name');
      });
    }
  }
}

test('MSH-18: empty for ASCII, 8859/1 when the text fits Latin-1, else the version’s Unicode value', (t) => {
  const at = (style: StatusMessageStyle, name: string): string =>
    readStrictHl7(buildStatusMessage({ ...base, patient: { ...base.patient, name } }, { ...header, style })).msh18;
  t.is(at('orm-o01', 'DOE^JOHN'), '');
  t.is(at('orm-o01', 'MÜLLER^JÜRGEN'), '8859/1');
  t.is(at('omi-o23', 'MÜLLER^JÜRGEN'), '8859/1');
  t.is(at('orm-o01', '山田^太郎'), 'UNICODE', 'v2.3.1 table 0211 has no UNICODE UTF-8');
  t.is(at('omi-o23', '山田^太郎'), 'UNICODE UTF-8');
  t.deepEqual(outboundCharset('Żółw', '2.3'), { msh18: 'UNICODE', encoding: 'utf8' });
  t.deepEqual(outboundCharset('Żółw', '2.4'), { msh18: 'UNICODE UTF-8', encoding: 'utf8' });
  // Latin-1 bytes really are Latin-1: Ü is one byte 0xDC.
  const bytes = buildStatusMessage({ ...base, patient: { ...base.patient, name: 'MÜLLER' } }, { ...header, style: 'orm-o01' });
  t.true(bytes.includes(Buffer.from([0x4d, 0xdc, 0x4c])));
});

test('PID-5 comes from the ideographic or phonetic group when the alphabetic one is empty (XPN.8 says which)', (t) => {
  const pid5 = (name: string, style: StatusMessageStyle = 'orm-o01'): string =>
    readStrictHl7(buildStatusMessage({ ...base, patient: { ...base.patient, name } }, { ...header, style })).field('PID', 5);
  t.is(pid5('DOE^JOHN^^DR^JR'), 'DOE^JOHN^^JR^DR', 'DICOM prefix^suffix become XPN suffix^prefix');
  t.is(pid5('=山田^太郎=やまだ^たろう'), '山田^太郎^^^^^^I');
  t.is(pid5('==ヤマダ^タロウ', 'omi-o23'), 'ヤマダ^タロウ^^^^^^P');
  t.is(pid5('DOE^JOHN=山田^太郎'), 'DOE^JOHN');
});

test('PID-3 repeats every component the identifier arrived with (CX.4 assigning authority, CX.5 type code, CX.6 facility)', (t) => {
  const asReceived = [['P1'], [''], [''], ['GENHOSP', '1.2.3.4', 'ISO'], ['MR'], ['RAD']];
  const m = readStrictHl7(
    buildStatusMessage({ ...base, patient: { id: 'P1', issuer: 'GENHOSP', name: 'DOE', asReceived } }, { ...header, style: 'orm-o01' }),
  );
  t.is(m.field('PID', 3), 'P1^^^GENHOSP&1.2.3.4&ISO^MR^RAD');
  const old = readStrictHl7(buildStatusMessage(base, { ...header, style: 'orm-o01' }));
  t.is(old.field('PID', 3), 'P1^^^H', 'an order stored before the box kept the CX: id and issuer');
  const escaped = readStrictHl7(
    buildStatusMessage(
      { ...base, patient: { ...base.patient, asReceived: [['P|1'], [''], [''], ['H'], ['MR']] } },
      { ...header, style: 'omi-o23' },
    ),
  );
  t.is(escaped.field('PID', 3), 'P\\F\\1^^^H^MR');
});

// The box's own parser reads what it writes: delimiters in values are escaped and come back.
const escapedPayload: ProcedureStatusPayload = {
  ...base,
  placerOrderNumber: 'PL|1',
  patient: { id: 'P1', issuer: 'H', name: 'MÜLLER^ANNA' },
};

test('ORM^O01: ORC-1 SC, ORC-5 status, OBR-18/19/20 accession, RP id, SPS id, ZDS study; escapes; Latin-1 declared (the name fits it)', (t) => {
  const m = parseHl7Message(buildStatusMessage(escapedPayload, { ...header, style: 'orm-o01' }));
  t.is(m.messageCode, 'ORM');
  t.is(m.controlId, '0000000000000042');
  t.is(m.get('ORC', 1), 'SC');
  t.is(m.get('ORC', 2), 'PL|1');
  t.is(m.get('ORC', 2, 1, 2), 'RIS');
  t.is(m.get('ORC', 5), 'IP');
  t.deepEqual([m.get('OBR', 18), m.get('OBR', 19), m.get('OBR', 20), m.get('OBR', 24)], ['ACC1', 'RP1', 'SPS1', 'CT']);
  t.is(m.get('ZDS', 1), '1.2.3');
  t.is(m.get('PID', 5, 1, 1), 'MÜLLER');
  t.is(m.msh.get(18), '8859/1');
});

test("MSH-11 is the box's own processing id: P from production, T from a test or training box", (t) => {
  for (const style of styles) {
    t.is(parseHl7Message(buildStatusMessage(base, { ...header, style })).msh.get(11), 'P', style);
    t.is(parseHl7Message(buildStatusMessage(base, { ...header, style, processingId: 'T' })).msh.get(11), 'T', style);
  }
});

test('OMI^O23 v2.5.1: IPC-1..5 and IPC-9', (t) => {
  const m = parseHl7Message(buildStatusMessage({ ...escapedPayload, orderStatus: 'CM' }, { ...header, style: 'omi-o23' }));
  t.is(m.versionId, '2.5.1');
  t.is(m.triggerEvent, 'O23');
  t.is(m.get('ORC', 5), 'CM');
  t.deepEqual(
    [1, 2, 3, 4, 5, 9].map((f) => m.get('IPC', f)),
    ['ACC1', 'RP1', '1.2.3', 'SPS1', 'CT', 'CT01'],
  );
});
