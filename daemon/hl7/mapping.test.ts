import { join } from 'node:path';
import test from 'ava';
import { readFileSync } from 'node:fs';
import type { Order, OrderCommand } from '../core/order.ts';
import { checkMessageType, generateStudyInstanceUid, mapMessage } from './mapping.ts';
import type { MappingResult } from './mapping.ts';
import { parseHl7Message } from './message.ts';
import { HL7_FIXTURES } from '../../test/support/paths.ts';

const fixture = (name: string): Buffer => readFileSync(join(HL7_FIXTURES, name));
const ctx = { receivedAt: 1_764_000_000_000, newStudyInstanceUid: () => '2.25.1' };
const map = (bytes: Buffer): MappingResult => {
  const m = parseHl7Message(bytes);
  return checkMessageType(m) === undefined ? mapMessage(m, ctx) : { ok: false, failure: checkMessageType(m)! };
};
const commands = (bytes: Buffer): readonly OrderCommand[] => {
  const r = map(bytes);
  if (!r.ok) throw new Error(`unexpected failure ${JSON.stringify(r.failure)}`);
  return r.commands;
};
const upsert = (bytes: Buffer): Order => {
  const c = commands(bytes)[0];
  if (c?.type !== 'order-upsert') throw new Error('expected an order-upsert');
  return c.order;
};
const failureOf = (bytes: Buffer): { condition: number; where: string } => {
  const r = map(bytes);
  if (r.ok) throw new Error('expected a failure');
  const l = r.failure.location;
  return { condition: r.failure.condition, where: `${l.segment}${l.field === undefined ? '' : `-${l.field}`}` };
};
/** Rewrite one segment of a fixture. */
const edit = (source: string | Buffer, from: string, to: string): Buffer => {
  const text = (typeof source === 'string' ? fixture(source) : source).toString('latin1');
  if (!text.includes(from)) throw new Error(`message has no ${from}`);
  return Buffer.from(text.replace(from, to), 'latin1');
};

test('orm-o01-new-ct: one CT step 2026-11-25 09:00, MÜLLER^JÜRGEN^K, ZDS study uid', (t) => {
  const o = upsert(fixture('orm-o01-new-ct.hl7'));
  t.is(o.patient.name, 'MÜLLER^JÜRGEN^K');
  t.is(o.patient.id, 'PAT10001');
  t.is(o.patient.issuer, 'GENHOSP');
  t.is(o.patient.birthDate, '19580214');
  t.is(o.patient.sex, 'M');
  t.is(o.placerOrderNumber, 'PLC0001');
  t.is(o.fillerOrderNumber, 'FIL0001');
  t.is(o.accessionNumber, 'ACC0001');
  t.is(o.requestedProcedureId, 'RP0001');
  t.is(o.requestedProcedureDescription, 'CT CHEST W/O CONTRAST');
  t.deepEqual(o.requestedProcedureCode, { codeValue: 'CTCHEST', codeMeaning: 'CT CHEST W/O CONTRAST', codingSchemeDesignator: 'L' });
  t.is(o.requestedProcedurePriority, 'ROUTINE');
  t.is(o.studyInstanceUid, '1.2.826.0.1.3680043.9.7433.1.1001');
  t.false(o.studyInstanceUidGenerated);
  t.is(o.requestingPhysician, 'WELBY^MARCUS^^DR');
  t.is(o.status, 'scheduled');
  t.is(o.steps.length, 1);
  const s = o.steps[0]!;
  t.is(s.modality, 'CT');
  t.is(s.id, 'SPS0001');
  t.is(s.startDate, '20261125');
  t.is(s.startTime, '090000');
  t.is(s.status, 'SCHEDULED');
  t.deepEqual(o.source, { sendingApplication: 'RIS', sendingFacility: 'GENHOSP', controlId: 'MSG00001', receivedAt: ctx.receivedAt });
});

test('orm-o01-new-mr-escapes: unescaped description, generated study uid', (t) => {
  const o = upsert(fixture('orm-o01-new-mr-escapes.hl7'));
  t.is(o.requestedProcedureDescription, 'MR BRAIN & IAC W/WO');
  t.is(o.steps[0]!.description, 'MR BRAIN & IAC W/WO');
  t.is(o.studyInstanceUid, '2.25.1');
  t.true(o.studyInstanceUidGenerated);
  t.is(o.patient.name, "O'BRIEN^MARY ANN");
});

test('generated study uids are 2.25 UUID-derived and valid', (t) => {
  const uid = generateStudyInstanceUid();
  t.regex(uid, /^2\.25\.[1-9]\d*$/);
  t.true(uid.length <= 64);
});

test('orm-o01-cancel: status cancelled for PLC0001', (t) => {
  t.deepEqual(commands(fixture('orm-o01-cancel.hl7')), [
    {
      type: 'order-status',
      placerOrderNumber: 'PLC0001',
      placerIssuer: '',
      status: 'cancelled',
      source: { sendingApplication: 'RIS', sendingFacility: 'GENHOSP', controlId: 'MSG00003', receivedAt: ctx.receivedAt },
    },
  ]);
});

test('ORC-1 DC and SC with ORC-5', (t) => {
  const status = (orc: string): unknown => {
    const c = commands(edit('orm-o01-cancel.hl7', 'ORC|CA|PLC0001|FIL0001||CA', orc))[0]!;
    return c.type === 'order-status' ? c.status : c.type;
  };
  t.is(status('ORC|DC|PLC0001|FIL0001||DC'), 'discontinued');
  const expected = { IP: 'in-progress', CM: 'completed', HD: 'held', SC: 'scheduled', CA: 'cancelled', DC: 'discontinued' };
  for (const [orc5, s] of Object.entries(expected)) t.is(status(`ORC|SC|PLC0001|FIL0001||${orc5}`), s);
  t.deepEqual(failureOf(edit('orm-o01-cancel.hl7', 'ORC|CA|PLC0001|FIL0001||CA', 'ORC|SC|PLC0001|FIL0001||ZZ')), {
    condition: 103,
    where: 'ORC-5',
  });
  t.deepEqual(failureOf(edit('orm-o01-cancel.hl7', 'ORC|CA|', 'ORC|OK|')), { condition: 103, where: 'ORC-1' });
});

test('XO replaces the order whole', (t) => {
  const c = commands(edit('orm-o01-new-ct.hl7', 'ORC|NW|', 'ORC|XO|'));
  t.is(c[0]!.type, 'order-upsert');
});

test('omi-o23-new-us: US step at 11:30 for US01 with name groups kept', (t) => {
  const o = upsert(fixture('omi-o23-new-us.hl7'));
  t.is(o.patient.name, '=山田^太郎=ヤマダ^タロウ');
  t.is(o.accessionNumber, 'ACC0003');
  t.is(o.requestedProcedureId, 'RP0003');
  t.is(o.studyInstanceUid, '1.2.826.0.1.3680043.9.7433.1.1003');
  t.false(o.studyInstanceUidGenerated);
  const s = o.steps[0]!;
  t.is(s.id, 'SPS0003');
  t.is(s.modality, 'US');
  t.is(s.stationAeTitle, 'US01');
  t.is(s.stationName, 'US ROOM 1');
  t.is(s.startDate, '20261125');
  t.is(s.startTime, '113000');
});

test('OMI: one step per IPC; IPC-5 required', (t) => {
  const two = edit(
    'omi-o23-new-us.hl7',
    'US01\r',
    'US01\rIPC|ACC0003|RP0003|1.2.826.0.1.3680043.9.7433.1.1003|SPS0004|US||US ROOM 2||US02\r',
  );
  t.deepEqual(
    upsert(two).steps.map((s) => [s.id, s.stationAeTitle]),
    [
      ['SPS0003', 'US01'],
      ['SPS0004', 'US02'],
    ],
  );
  t.deepEqual(failureOf(edit('omi-o23-new-us.hl7', '|SPS0003|US|', '|SPS0003||')), { condition: 101, where: 'IPC-5' });
  t.deepEqual(failureOf(edit('omi-o23-new-us.hl7', '|1.2.826.0.1.3680043.9.7433.1.1003|', '|1.2.X|')), { condition: 102, where: 'IPC-3' });
});

test('adt-a08-update: patient-update with the new name', (t) => {
  const c = commands(fixture('adt-a08-update.hl7'));
  t.is(c.length, 1);
  const u = c[0]!;
  if (u.type !== 'patient-update') return t.fail();
  t.is(u.patient.name, "O'BRIEN-SMITH^MARY ANN");
  t.is(u.patient.id, 'PAT10002');
});

test('adt-a40-merge: PAT10001 into PAT10004', (t) => {
  const c = commands(fixture('adt-a40-merge.hl7'));
  const m = c[0]!;
  if (m.type !== 'patient-merge') return t.fail();
  t.is(m.surviving.id, 'PAT10004');
  t.is(m.surviving.name, 'MÜLLER^JÜRGEN^K');
  t.deepEqual(m.prior, { id: 'PAT10001', issuer: 'GENHOSP' });
  t.deepEqual(failureOf(edit('adt-a40-merge.hl7', 'MRG|PAT10001^^^GENHOSP^MR', 'MRG|')), { condition: 101, where: 'MRG-1' });
  t.deepEqual(failureOf(edit('adt-a40-merge.hl7', '\rMRG|PAT10001^^^GENHOSP^MR', '')), { condition: 100, where: 'MRG' });
});

test('bad-missing-obr: AE naming OBR', (t) => {
  t.deepEqual(failureOf(fixture('bad-missing-obr.hl7')), { condition: 100, where: 'OBR' });
});

test('required fields are named', (t) => {
  const ct = 'orm-o01-new-ct.hl7';
  t.deepEqual(failureOf(edit(ct, 'PID|1||PAT10001^^^GENHOSP^MR|', 'PID|1|||')), { condition: 101, where: 'PID-3' });
  t.deepEqual(failureOf(edit(ct, 'CTCHEST^CT CHEST W/O CONTRAST^L|||2026', '|||2026')), { condition: 101, where: 'OBR-4' });
  t.deepEqual(failureOf(edit(ct, '||||CT|||', '|||||||')), { condition: 101, where: 'OBR-24' });
  t.deepEqual(failureOf(edit(edit(ct, 'CT|||^^^20261125090000^^R', 'CT|||'), '^^^20261125090000^^R||2026', '||2026')), {
    condition: 101,
    where: 'OBR-27',
  });
  t.deepEqual(failureOf(edit(edit(ct, 'ORC|NW|PLC0001', 'ORC|NW|'), 'OBR|1|PLC0001', 'OBR|1|')), { condition: 101, where: 'ORC-2' });
  t.deepEqual(failureOf(edit('adt-a08-update.hl7', 'PID|1||PAT10002^^^GENHOSP^MR', 'PID|1||')), { condition: 101, where: 'PID-3' });
});

test('placer order number falls back to OBR-2', (t) => {
  t.is(upsert(edit('orm-o01-new-ct.hl7', 'ORC|NW|PLC0001', 'ORC|NW|')).placerOrderNumber, 'PLC0001');
});

test('malformed dates are data type errors (102)', (t) => {
  const ct = 'orm-o01-new-ct.hl7';
  t.deepEqual(failureOf(edit(ct, '|19580214|', '|19581314|')), { condition: 102, where: 'PID-7' });
  t.deepEqual(failureOf(edit(ct, 'CT|||^^^20261125090000', 'CT|||^^^20261131090000')), { condition: 102, where: 'OBR-27' });
  t.deepEqual(failureOf(edit(ct, 'CT|||^^^20261125090000', 'CT|||^^^2026112509XX')), { condition: 102, where: 'OBR-27' });
  t.deepEqual(failureOf(edit(ct, 'ZDS|1.2.826', 'ZDS|A.2.826')), { condition: 102, where: 'ZDS-1' });
  t.is(upsert(edit(ct, '|19580214|', '|1958|')).patient.birthDate, '');
});

test('SPS start falls back to ORC-7.4; priority from the TQ', (t) => {
  const o = upsert(
    edit(edit('orm-o01-new-ct.hl7', 'CT|||^^^20261125090000^^R', 'CT|||'), '^^^20261125090000^^R||2026', '^^^202611251015^^S||2026'),
  );
  t.is(o.steps[0]!.startTime, '1015');
  t.is(o.requestedProcedurePriority, 'STAT');
});

test('unsupported message types, events and versions', (t) => {
  const a08 = 'adt-a08-update.hl7';
  t.deepEqual(failureOf(edit(a08, 'ADT^A08', 'ORU^R01')), { condition: 200, where: 'MSH-9' });
  t.deepEqual(failureOf(edit(a08, 'ADT^A08', 'ADT^A03')), { condition: 201, where: 'MSH-9' });
  t.deepEqual(failureOf(edit(a08, '|P|2.3.1', '|P|2.1')), { condition: 203, where: 'MSH-12' });
  t.deepEqual(failureOf(edit('omi-o23-new-us.hl7', '|P|2.5.1', '|P|2.3.1')), { condition: 203, where: 'MSH-12' });
});

test('person names: XPN order, trailing empties trimmed, delimiters cleaned', (t) => {
  const name = (xpn: string): string => {
    const c = commands(edit('adt-a08-update.hl7', "O'BRIEN-SMITH^MARY ANN^", xpn))[0]!;
    return c.type === 'patient-update' ? c.patient.name : '';
  };
  t.is(name('DOE^JOHN^Q^JR^DR'), 'DOE^JOHN^Q^DR^JR');
  t.is(name('DOE^JOHN^^^^^L'), 'DOE^JOHN');
  t.is(name('DOE^JOHN~YAMADA^TARO^^^^^P'), 'DOE^JOHN==YAMADA^TARO');
  t.is(name('DOE\\S\\X^JO=HN'), 'DOE X^JO HN');
  t.is(name('DOE&VAN^JOHN'), 'DOE^JOHN');
});

const failureAt = (bytes: Buffer): string => {
  const r = map(bytes);
  if (r.ok) throw new Error('expected a failure');
  const l = r.failure.location;
  return `${r.failure.condition} ${r.failure.errorCode} ${l.segment}-${l.field ?? ''}${l.component === undefined ? '' : `.${l.component}`}`;
};

test('a value too long for its Explicit VR length field fails at the field it came from', (t) => {
  const long = 'D'.repeat(70_000);
  t.is(
    failureAt(edit('orm-o01-new-ct.hl7', 'CTCHEST^CT CHEST W/O CONTRAST^L|||', `CTCHEST^${long}^L|||`)),
    '102 EDGE_HL7_INVALID_FIELD OBR-4.2',
  );
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|ACC0001|', `|${long}|`)), '102 EDGE_HL7_VALUE_TOO_LONG OBR-18');
  t.is(failureAt(edit('omi-o23-new-us.hl7', 'US ROOM 1', long)), '102 EDGE_HL7_INVALID_FIELD IPC-7.1');
  // 25,000 escaped separators unescape to 75,000 characters: the decoded length counts.
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'MÜLLER^', `${'AB\\T\\'.repeat(25_000)}^`)), '102 EDGE_HL7_INVALID_FIELD PID-5');
  // In UTF-8 a character of ISO 8859-1 above 0x7F takes two bytes: 33,000 of them are 66,000 bytes.
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'MÜLLER^', `${'Ü'.repeat(33_000)}^`)), '102 EDGE_HL7_INVALID_FIELD PID-5');
  // Exactly at the limit is fine, and so is a long code value (Long Code Value is UC, with a 32-bit length).
  t.is(
    upsert(edit('orm-o01-new-ct.hl7', 'CTCHEST^CT CHEST W/O CONTRAST^L|||', `CTCHEST^${'D'.repeat(65_534)}^L|||`))
      .requestedProcedureDescription.length,
    65_534,
  );
  t.is(
    upsert(edit('orm-o01-new-ct.hl7', 'CTCHEST^CT CHEST W/O CONTRAST^L|||', `${'C'.repeat(70_000)}^CT CHEST^L|||`)).requestedProcedureCode
      ?.codeValue.length,
    70_000,
  );
});

test('control characters: NUL, ESC, DEL and C1 fail at the field; layout controls become spaces', (t) => {
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'MÜLLER^', 'MÜL\\X00\\LER^')), '102 EDGE_HL7_INVALID_FIELD PID-5');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'MÜLLER^', 'MÜL\\X1B\\LER^')), '102 EDGE_HL7_INVALID_FIELD PID-5');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'PAT10001^', 'PAT\\X7F\\10001^')), '102 EDGE_HL7_INVALID_FIELD PID-3.1');
  // U+0085 (NEL) is the byte 0x85 in ISO 8859-1.
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '^CT CHEST W/O CONTRAST^L|||', '^CT\\X85\\CHEST^L|||')), '102 EDGE_HL7_INVALID_FIELD OBR-4.2');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|ACC0001|', '|ACC\\X09\\0001\\X00\\|')), '102 EDGE_HL7_INVALID_FIELD OBR-18');
  const o = upsert(edit('orm-o01-new-ct.hl7', '^CT CHEST W/O CONTRAST^L|||', '^CT CHEST\\.br\\W/O\\X09\\CONTRAST^L|||'));
  t.is(o.requestedProcedureDescription, 'CT CHEST W/O CONTRAST');
  t.is(o.steps[0]?.description, 'CT CHEST W/O CONTRAST');
});

test('an identifier over its VR length is refused at its field, never truncated', (t) => {
  const accession22 = 'A'.repeat(22);
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|ACC0001|', `|${accession22}|`)), '102 EDGE_HL7_VALUE_TOO_LONG OBR-18');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|ACC0001|', `|${'A'.repeat(17)}|`)), '102 EDGE_HL7_VALUE_TOO_LONG OBR-18', 'SH is 16');
  t.is(upsert(edit('orm-o01-new-ct.hl7', '|ACC0001|', `|${'A'.repeat(16)}|`)).accessionNumber, 'A'.repeat(16));
  t.is(failureAt(edit('orm-o01-new-ct.hl7', 'PAT10001^', `${'P'.repeat(70)}^`)), '102 EDGE_HL7_VALUE_TOO_LONG PID-3.1', 'LO is 64');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|RP0001|', `|${'R'.repeat(17)}|`)), '102 EDGE_HL7_VALUE_TOO_LONG OBR-19');
  t.is(failureAt(edit('orm-o01-new-ct.hl7', '|SPS0001|', `|${'S'.repeat(17)}|`)), '102 EDGE_HL7_VALUE_TOO_LONG OBR-20');
  t.is(
    failureAt(edit('orm-o01-new-ct.hl7', 'ZDS|1.2.826.0.1.3680043.9.7433.1.1001', `ZDS|1.2.${'1'.repeat(62)}`)),
    '102 EDGE_HL7_VALUE_TOO_LONG ZDS-1',
  );
  // v2.5.1 OMI: the accession's place is IPC-1.
  const omi = fixture('omi-o23-new-us.hl7').toString('latin1');
  const ipcAccession = /\rIPC\|([^|^]*)/.exec(omi)![1]!;
  t.is(
    failureAt(Buffer.from(omi.replaceAll(`IPC|${ipcAccession}`, `IPC|${accession22}`), 'latin1')),
    '102 EDGE_HL7_VALUE_TOO_LONG IPC-1.1',
  );
});

test('free text over its VR length is accepted whole and counted as cut in answers', (t) => {
  const long = 'Ü'.repeat(20_000);
  const r = map(edit('orm-o01-new-ct.hl7', 'CTCHEST^CT CHEST W/O CONTRAST^L|||', `CTCHEST^${long}^L|||`));
  if (!r.ok) throw new Error('expected success');
  const c = r.commands[0];
  if (c?.type !== 'order-upsert') throw new Error('expected an order-upsert');
  t.is(c.order.requestedProcedureDescription, long, 'the order keeps the full text');
  // Requested Procedure Description, SPS Description (its copy) and Code Meaning of both code sequences.
  t.true(r.cutValues >= 2, `cut values ${r.cutValues}`);
  const plain = map(fixture('orm-o01-new-ct.hl7'));
  t.is(plain.ok ? plain.cutValues : -1, 0);
});

test('PID-3 is kept with every component it arrived with, for messages back to the RIS', (t) => {
  const p = upsert(fixture('orm-o01-new-ct.hl7')).patient;
  t.deepEqual(p.asReceived, [['PAT10001'], [''], [''], ['GENHOSP'], ['MR']]);
});

test('station rules fill only steps the order names no station for; the default when no rule matches', (t) => {
  const stations = {
    rules: [
      { name: 'ct-er', when: { modalities: ['CT'], locations: ['CT'] }, stationAeTitle: 'CT01', stationName: 'CT ROOM 1', priority: 0 },
    ],
    fallback: { aeTitle: 'UNKNOWN', name: '' },
  };
  const withStations = (bytes: Buffer): Order => {
    const r = mapMessage(parseHl7Message(bytes), { ...ctx, stations });
    if (!r.ok || r.commands[0]?.type !== 'order-upsert') throw new Error('expected an order-upsert');
    return r.commands[0].order;
  };
  // PV1-3.1 of the CT fixture is CT.
  t.like(withStations(fixture('orm-o01-new-ct.hl7')).steps[0], { stationAeTitle: 'CT01', stationName: 'CT ROOM 1' });
  t.like(withStations(fixture('orm-o01-new-mr-escapes.hl7')).steps[0], { stationAeTitle: 'UNKNOWN', stationName: '' });
  const named = edit('orm-o01-new-ct.hl7', '|ACC0001|RP0001|SPS0001||', '|ACC0001|RP0001|SPS0001|CT_RIS|');
  t.like(withStations(named).steps[0], { stationAeTitle: 'CT_RIS' }, 'OBR-21 from the RIS wins over every rule');
  t.like(withStations(fixture('omi-o23-new-us.hl7')).steps[0], { stationAeTitle: 'US01' }, 'IPC-9 wins');
});

test('PID-5 repetitions marked ideographic or phonetic by XPN.8 (table 4000) fill those component groups', (t) => {
  const text = fixture('omi-o23-new-us.hl7').toString('utf8');
  const omi = Buffer.from(
    text.replace('山田^太郎^^^^^I~ヤマダ^タロウ^^^^^P', 'YAMADA^TARO^^^^^L^A~山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P'),
    'utf8',
  );
  t.true(omi.length > text.length, 'the fixture has the name repetitions');
  t.is(upsert(omi).patient.name, 'YAMADA^TARO=山田^太郎=ヤマダ^タロウ');
});
