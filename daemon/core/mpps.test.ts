import test from 'ava';
import type { DataSet } from './dataset.ts';
import { Tag } from './data-dictionary.ts';
import { matchScore } from './mpps-linking.ts';
import { applyNSet, isMppsRefusal, stepFromNCreate, type PerformedProcedureStep } from './mpps.ts';
import { testOrder, testStep } from '../../test/support/orders.ts';

const cs = (v: string) => ({ vr: 'CS' as const, value: v });
const create = (status = 'IN PROGRESS'): DataSet =>
  new Map<number, any>([
    [Tag.PerformedProcedureStepStatus, cs(status)],
    [
      Tag.ScheduledStepAttributesSequence,
      { vr: 'SQ', value: [new Map<number, any>([[Tag.AccessionNumber, { vr: 'SH', value: 'ACC1' }]])] },
    ],
  ]);

function created(): PerformedProcedureStep {
  const s = stepFromNCreate('1.2', create(), { callingAeTitle: 'CT01', now: 1 });
  if (isMppsRefusal(s)) throw new Error('refused');
  return { ...s, linkedOrders: [], unscheduled: true };
}

test('N-CREATE must be IN PROGRESS with a Scheduled Step Attributes Sequence', (t) => {
  t.like(stepFromNCreate('1', create('COMPLETED'), { callingAeTitle: 'A', now: 0 }), { refused: 'invalid-value' });
  t.like(stepFromNCreate('1', new Map([[Tag.PerformedProcedureStepStatus, cs('IN PROGRESS')]]), { callingAeTitle: 'A', now: 0 }), {
    refused: 'missing-attribute',
  });
  t.deepEqual(created().scheduledSteps, [
    { accessionNumber: 'ACC1', requestedProcedureId: '', scheduledProcedureStepId: '', studyInstanceUid: '' },
  ]);
});

test('N-SET: IN PROGRESS → COMPLETED once; then final; invalid status and not-settable attributes refused', (t) => {
  const step = created();
  t.like(applyNSet(step, new Map([[Tag.PerformedProcedureStepStatus, cs('DONE')]]), 2), { refused: 'invalid-value' });
  t.like(applyNSet(step, create(), 2), { refused: 'not-settable' });
  const same = applyNSet(step, new Map([[Tag.PerformedProcedureStepDescription, { vr: 'LO', value: 'X' }]]), 2);
  t.true(!isMppsRefusal(same) && !same.statusChanged && same.step.description === 'X');
  const done = applyNSet(step, new Map([[Tag.PerformedProcedureStepStatus, cs('COMPLETED')]]), 3);
  if (isMppsRefusal(done)) return t.fail();
  t.true(done.statusChanged);
  t.like(applyNSet(done.step, new Map([[Tag.PerformedProcedureStepStatus, cs('IN PROGRESS')]]), 4), { refused: 'final-state' });
});

test('linking prefers accession + SPS id, falls back to the Study Instance UID, and never matches a different accession', (t) => {
  const item = { order: testOrder(1, { accessionNumber: 'ACC1', studyInstanceUid: '1.9' }), step: testStep({ id: 'S1' }) };
  const ref = { accessionNumber: 'ACC1', requestedProcedureId: '', scheduledProcedureStepId: 'S1', studyInstanceUid: '' };
  t.true(matchScore(ref, item) > matchScore({ ...ref, scheduledProcedureStepId: 'S2' }, item));
  t.is(matchScore({ ...ref, accessionNumber: 'ACC2', studyInstanceUid: '1.9' }, item), 0);
  t.true(matchScore({ accessionNumber: '', requestedProcedureId: '', scheduledProcedureStepId: '', studyInstanceUid: '1.9' }, item) > 0);
});
