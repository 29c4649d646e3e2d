import { Buffer } from 'node:buffer';
import test from 'ava';
import { decide } from '../core/outbox-dispatcher.ts';
import { readAck } from './outbound-mllp-sender.ts';
import { buildStatusMessage } from './outbound-status-message.ts';
import { parseHl7Message } from './message.ts';

const ack = (code: string, id: string, extra = '') =>
  Buffer.from(`MSH|^~\\&|RIS|H|EDGE|F|20260101||ACK^O01|A1|P|2.3.1\rMSA|${code}|${id}|${extra}\r`);

test('AA and CA deliver; AE/AR reject with the RIS reason; another MSA-2 or garbage retries', (t) => {
  t.deepEqual(readAck(ack('AA', '7'), '7'), { outcome: 'delivered' });
  t.deepEqual(readAck(ack('CA', '7'), '7'), { outcome: 'delivered' });
  const ar = readAck(ack('AR', '7', 'unknown order'), '7');
  t.is(decide(ar), 'rejected');
  t.true(
    ar.outcome === 'failed' &&
      ar.error.code === 'EDGE_HL7_OUTBOUND_REJECTED' &&
      ar.error.peerStatus === 'AR' &&
      ar.error.message.includes('unknown order'),
  );
  const other = readAck(ack('AA', '8'), '7');
  t.true(other.outcome === 'failed' && other.error.code === 'EDGE_HL7_OUTBOUND_ACK_INVALID');
  t.is(decide(other), 'retry');
  t.is(decide(readAck(Buffer.from('garbage'), '7')), 'retry');
});

test('AR/AE with ERR code 205 (the RIS already holds this MSH-10) counts as delivered, not a dead letter', (t) => {
  const v231 = Buffer.from(
    'MSH|^~\\&|RIS|H|EDGE|F|20260101||ACK^O01|A2|P|2.3.1\rMSA|AR|7|duplicate\rERR|MSH^1^10^205&Duplicate key identifier&HL70357\r',
  );
  t.deepEqual(readAck(v231, '7'), { outcome: 'delivered' });
  const v251 = Buffer.from(
    'MSH|^~\\&|RIS|H|EDGE|F|20260101||ACK^O23^ACK|A3|P|2.5.1\rMSA|AE|7\rERR||MSH^1^10|205^Duplicate key identifier^HL70357|E\r',
  );
  t.deepEqual(readAck(v251, '7'), { outcome: 'delivered' });
  const other = Buffer.from(
    'MSH|^~\\&|RIS|H|EDGE|F|20260101||ACK^O23^ACK|A4|P|2.5.1\rMSA|AE|7\rERR||ORC^1^2|204^Unknown key identifier^HL70357|E\r',
  );
  t.is(decide(readAck(other, '7')), 'rejected');
});

const payload = {
  orderStatus: 'IP',
  placerOrderNumber: 'PL|1',
  placerIssuer: 'RIS',
  fillerOrderNumber: 'F1',
  accessionNumber: 'ACC1',
  requestedProcedureId: 'RP1',
  requestedProcedureDescription: 'CT HEAD',
  requestedProcedureCode: { codeValue: 'CTH', codingSchemeDesignator: 'L', codeMeaning: 'CT HEAD' },
  scheduledProcedureStepId: 'SPS1',
  studyInstanceUid: '1.2.3',
  patient: { id: 'P1', issuer: 'H', name: 'MÜLLER^ANNA' },
  modality: 'CT',
  performedStationAeTitle: 'CT01',
  ppsSopInstanceUid: '1.2.4',
  at: 0,
  discontinuationReason: undefined,
} as const;
const header = {
  sendingApplication: 'EDGE',
  sendingFacility: 'F',
  receivingApplication: 'RIS',
  receivingFacility: 'H',
  controlId: '0000000000000042',
};

test('ORM^O01: ORC-1 SC, ORC-5 status, OBR-18/19/20 accession, RP id, SPS id, ZDS study; escapes; Latin-1 declared (the name fits it)', (t) => {
  const m = parseHl7Message(buildStatusMessage(payload, { ...header, style: 'orm-o01' }));
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

test('OMI^O23 v2.5.1: IPC-1..5 and IPC-9', (t) => {
  const m = parseHl7Message(buildStatusMessage({ ...payload, orderStatus: 'CM' }, { ...header, style: 'omi-o23' }));
  t.is(m.versionId, '2.5.1');
  t.is(m.triggerEvent, 'O23');
  t.is(m.get('ORC', 5), 'CM');
  t.deepEqual(
    [1, 2, 3, 4, 5, 9].map((f) => m.get('IPC', f)),
    ['ACC1', 'RP1', '1.2.3', 'SPS1', 'CT', 'CT01'],
  );
});
