import test from 'ava';
import { type CommitmentRequest, type InstanceState, FailureReason, evaluateCommitment } from './storage-commitment.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';

function request(n: number, deadlineAt = 10_000): CommitmentRequest {
  return {
    transactionUid: '2.25.1',
    callingAeTitle: 'CT01',
    modality: 'ct1',
    remoteAddress: '127.0.0.1',
    items: Array.from({ length: n }, (_, i) => ({ sopClassUid: CT, sopInstanceUid: `2.25.10${i}` })),
    receivedAt: 0,
    deadlineAt,
    state: 'pending',
  };
}

const committed: InstanceState = { state: 'committed', sopClassUid: CT };
const spooled: InstanceState = { state: 'spooled', sopClassUid: CT, refused: false };

test('waits while any instance is still on its way to the PACS, before the deadline', (t) => {
  t.deepEqual(evaluateCommitment(request(3), [committed, spooled, { state: 'unknown' }], 5000), { ready: false, waiting: 1 });
});

test('every instance committed: Event Type 1 with the success list only', (t) => {
  const v = evaluateCommitment(request(2), [committed, committed], 5000);
  t.true(v.ready);
  if (!v.ready) return;
  t.is(v.report.eventTypeId, 1);
  t.is(v.report.success.length, 2);
  t.deepEqual(v.report.failed, []);
  t.is(v.report.why, undefined);
});

test('failure reasons: unknown 0x0112, other SOP class 0x0119, refused by the PACS 0x0110, late 0x0110', (t) => {
  const states: InstanceState[] = [
    { state: 'unknown' },
    { state: 'committed', sopClassUid: MR },
    { state: 'spooled', sopClassUid: CT, refused: true },
    spooled,
    committed,
  ];
  const v = evaluateCommitment(request(5), states, 10_000);
  t.true(v.ready);
  if (!v.ready) return;
  t.is(v.report.eventTypeId, 2);
  t.deepEqual(
    v.report.failed.map((f) => f.failureReason),
    [
      FailureReason.NoSuchObjectInstance,
      FailureReason.ClassInstanceConflict,
      FailureReason.ProcessingFailure,
      FailureReason.ProcessingFailure,
    ],
  );
  t.deepEqual(
    v.report.success.map((s) => s.sopInstanceUid),
    ['2.25.104'],
  );
  t.regex(v.report.why ?? '', /1 not received by the box; 1 stored under another SOP class; 1 refused by the PACS; 1 not confirmed/);
});
