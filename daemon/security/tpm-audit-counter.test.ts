// The start check of the TPM head anchor: one step of lag is a crash between advancing and saving.
import test from 'ava';
import type { AuditCheckpoint } from '../core/audit-trail.ts';
import { counterProblem } from './tpm-audit-counter.ts';

const cp = (seq: number, counter?: number): AuditCheckpoint => ({
  seq,
  hash: '0'.repeat(64),
  at: 0,
  statement: '{}',
  cms: '',
  ...(counter === undefined ? {} : { counter }),
});

test('the counter within one step of the newest checkpoint is consistent; further ahead names the cut', (t) => {
  t.is(counterProblem(undefined, undefined, 10), undefined, 'no counter yet (first start, or before the upgrade)');
  t.is(counterProblem(7, cp(100, 7), 100), undefined);
  t.is(counterProblem(8, cp(100, 7), 100), undefined, 'crash after the increment, before the checkpoint was saved');
  t.regex(
    counterProblem(9, cp(100, 7), 100) ?? '',
    /TPM NV counter is at 9 but the newest stored checkpoint \(seq 100\) carries counter 7; records after seq 100 were removed/,
  );
  t.regex(counterProblem(3, undefined, 40) ?? '', /no checkpoint is left in the store; records after seq 40/);
  t.regex(counterProblem(3, cp(40), 40) ?? '', /carries no counter/);
});
