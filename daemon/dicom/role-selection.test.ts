import test from 'ava';
import { encodeAssociateAc, parseAssociateRq } from './association.ts';
import { encodeAssociateRq, parseAssociateAc } from './association-requestor.ts';

const SC = '1.2.840.10008.1.20.1';

test('SCP/SCU role selection sub-items survive a request and its answer (PS3.7 D.3.3.4)', (t) => {
  const rq = encodeAssociateRq({
    callingAeTitle: 'EDGE',
    calledAeTitle: 'CT01',
    contexts: [{ id: 1, abstractSyntax: SC, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    maxPduLength: 16384,
    roleSelections: [{ sopClassUid: SC, scu: false, scp: true }],
  });
  const parsed = parseAssociateRq(rq.subarray(6));
  t.deepEqual([...parsed.roleSelections.values()], [{ sopClassUid: SC, scu: false, scp: true }]);
  t.is(parsed.implementationVersionName, 'IMAGING_EDGE', 'the sub-items after it are still read');
  const ac = encodeAssociateAc({
    calledAeTitle: 'CT01',
    callingAeTitle: 'EDGE',
    presentationContexts: [{ id: 1, result: 0, transferSyntax: '1.2.840.10008.1.2' }],
    maxPduLength: 16384,
    roleSelections: [{ sopClassUid: SC, scu: false, scp: true }],
  });
  const answer = parseAssociateAc(ac.subarray(6));
  t.deepEqual(answer.roleSelections.get(SC), { sopClassUid: SC, scu: false, scp: true });
  t.is(answer.maxPduLength, 16384);
});

test('a role selection sub-item whose UID length disagrees with its length is refused', (t) => {
  const rq = encodeAssociateRq({
    callingAeTitle: 'EDGE',
    calledAeTitle: 'CT01',
    contexts: [{ id: 1, abstractSyntax: SC, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    maxPduLength: 16384,
    roleSelections: [{ sopClassUid: SC, scu: true, scp: false }],
  });
  const at = rq.indexOf(Buffer.from([0x54, 0x00]));
  rq.writeUInt16BE(99, at + 4); // the UID length field
  t.throws(() => parseAssociateRq(rq.subarray(6)), { message: /role selection/ });
});
