import { join } from 'node:path';
import test from 'ava';
import { readFileSync } from 'node:fs';
import { auditSubjects } from './audit-subjects.ts';
import { mapMessage } from './mapping.ts';
import { parseHl7Message } from './message.ts';
import { HL7_FIXTURES } from '../../test/support/paths.ts';

const fixture = (name: string) => parseHl7Message(readFileSync(join(HL7_FIXTURES, name)));
const mapped = (name: string) => {
  const message = fixture(name);
  const r = mapMessage(message, { receivedAt: 0, newStudyInstanceUid: () => '2.25.42' });
  if (!r.ok) throw new Error(`fixture ${name} does not map`);
  return { message, commands: r.commands };
};

test('a new order names its patient, placer, accession and the Study Instance UID the box generated', (t) => {
  const { message, commands } = mapped('orm-o01-new-ct.hl7');
  const [s] = auditSubjects(message, commands);
  t.is(s?.kind, 'order');
  t.is(s?.action, 'NW');
  t.deepEqual(s?.patient, { id: 'PAT10001', issuer: 'GENHOSP' });
  t.is(s?.accessionNumber, 'ACC0001');
  t.is(s?.placerOrderNumber, 'PLC0001');
  t.truthy(s?.studyInstanceUid);
});

test('OMI: accession and Study Instance UID from IPC', (t) => {
  const { message, commands } = mapped('omi-o23-new-us.hl7');
  t.like(auditSubjects(message, commands)[0], {
    action: 'NW',
    accessionNumber: 'ACC0003',
    studyInstanceUid: '1.2.826.0.1.3680043.9.7433.1.1003',
  });
});

test('a cancel takes patient and accession from its ORC group', (t) => {
  const { message, commands } = mapped('orm-o01-cancel.hl7');
  t.deepEqual(auditSubjects(message, commands), [
    {
      kind: 'order',
      action: 'CA',
      patient: { id: 'PAT10001', issuer: 'GENHOSP' },
      placerOrderNumber: 'PLC0001',
      placerIssuer: '',
      accessionNumber: 'ACC0001',
    },
  ]);
});

test('A40 names the surviving and the prior patient', (t) => {
  const { message, commands } = mapped('adt-a40-merge.hl7');
  t.deepEqual(auditSubjects(message, commands), [
    { kind: 'patient', action: 'A40', patient: { id: 'PAT10004', issuer: 'GENHOSP' }, priorPatient: { id: 'PAT10001', issuer: 'GENHOSP' } },
  ]);
});

test('an invalid message is read leniently: what it names is still audited', (t) => {
  t.deepEqual(auditSubjects(fixture('bad-missing-obr.hl7')), [
    { kind: 'order', action: 'NW', patient: { id: 'PAT10005', issuer: 'GENHOSP' }, placerOrderNumber: 'PLC0005' },
  ]);
  const adt = parseHl7Message(Buffer.from('MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125||ADT^A08|M1|P|2.3.1\rPID|1||P9^^^H||X||notadate\r'));
  t.deepEqual(auditSubjects(adt), [{ kind: 'patient', action: 'A08', patient: { id: 'P9', issuer: 'H' } }]);
});
