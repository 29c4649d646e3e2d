import test from 'ava';
import { Buffer } from 'node:buffer';
import { isEdgeError } from '../core/errors.ts';
import { negotiatePresentationContexts, parseAssociateRq } from './association.ts';
import { encodePData, parsePDataTf, PduReader, PduType } from './pdu.ts';
import { buildAssociateRq } from './testing/associate-rq.ts';

test('the reader reassembles PDUs split at every byte and joined in one chunk', (t) => {
  const a = encodePData(1, true, Buffer.from('command!'), 0)[0] as Buffer;
  const b = encodePData(1, false, Buffer.alloc(1000, 7), 0)[0] as Buffer;
  const all = Buffer.concat([a, b]);
  for (let split = 0; split <= all.length; split++) {
    const reader = new PduReader(() => 1 << 16);
    const pdus = [...reader.push(all.subarray(0, split)), ...reader.push(all.subarray(split))];
    t.is(pdus.length, 2);
    t.deepEqual(pdus[1]?.body, b.subarray(6));
    t.is(reader.bufferedBytes, 0);
  }
});

test('the reader refuses an oversize PDU from its header alone', (t) => {
  const reader = new PduReader((type) => (type === PduType.PDataTf ? 16384 : undefined));
  const header = Buffer.from([0x04, 0, 0x40, 0, 0, 0]); // 1 GiB
  const err = t.throws(() => reader.push(header));
  t.true(isEdgeError(err, 'EDGE_DICOM_PDU_TOO_LARGE'));
  const err2 = t.throws(() => new PduReader(() => undefined).push(Buffer.from([0x01, 0, 0, 0, 0, 4])));
  t.true(isEdgeError(err2, 'EDGE_DICOM_PDU_INVALID'));
});

test('P-DATA fragments honour the peer maximum PDU length', (t) => {
  const data = Buffer.alloc(10_000, 1);
  const pdus = encodePData(3, false, data, 4096);
  t.true(pdus.every((p) => p.length - 6 <= 4096));
  const pdvs = pdus.flatMap((p) => parsePDataTf(p.subarray(6)));
  t.deepEqual(Buffer.concat(pdvs.map((p) => p.data)), data);
  t.deepEqual(
    pdvs.map((p) => p.isLast),
    [false, false, true],
  );
  t.true(pdvs.every((p) => p.presentationContextId === 3 && !p.isCommand));
});

test('A-ASSOCIATE-RQ parsing and per-context answers (0 / 3 / 4)', (t) => {
  const pdu = buildAssociateRq({
    calling: 'MOD',
    called: 'EDGE',
    maxPduLength: 32768,
    contexts: [
      { id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1'] },
      { id: 3, abstractSyntax: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxes: ['1.2.840.10008.1.2'] },
      { id: 5, abstractSyntax: '1.2.840.10008.5.1.4.31', transferSyntaxes: ['1.2.840.10008.1.2.4.50'] },
    ],
  });
  const rq = parseAssociateRq(pdu.subarray(6));
  t.like(rq, { callingAeTitle: 'MOD', calledAeTitle: 'EDGE', maxPduLength: 32768, implementationClassUid: '1.2.3.4' });
  const answers = negotiatePresentationContexts(rq.presentationContexts, new Set(['1.2.840.10008.1.1', '1.2.840.10008.5.1.4.31']), [
    '1.2.840.10008.1.2.1',
    '1.2.840.10008.1.2',
  ]);
  t.deepEqual(
    answers.map((a) => [a.id, a.result, a.result === 0 ? a.transferSyntax : '']),
    [
      [1, 0, '1.2.840.10008.1.2.1'],
      [3, 3, ''],
      [5, 4, ''],
    ],
  );
  for (let cut = 0; cut < pdu.length - 6; cut++) {
    try {
      parseAssociateRq(pdu.subarray(6, 6 + cut));
    } catch (err) {
      t.true(isEdgeError(err, 'EDGE_DICOM_PDU_INVALID'));
    }
  }
});
