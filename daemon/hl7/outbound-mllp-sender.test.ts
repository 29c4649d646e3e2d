import { Buffer } from 'node:buffer';
import test from 'ava';
import { decide } from '../core/outbox-dispatcher.ts';
import { readAck } from './outbound-mllp-sender.ts';

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
