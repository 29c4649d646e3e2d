import test from 'ava';
import { type AuditBudgetChange, AuditDiskBudget, budgetLevel } from './audit-disk-budget.ts';

test('levels: ok below 80 %, warning from 80 %, exceeded from 100 %, with a margin on the way down', (t) => {
  t.is(budgetLevel(0, 1000), 'ok');
  t.is(budgetLevel(799, 1000), 'ok');
  t.is(budgetLevel(800, 1000), 'warning');
  t.is(budgetLevel(999, 1000), 'warning');
  t.is(budgetLevel(1000, 1000), 'exceeded');
  t.is(budgetLevel(5000, 1000), 'exceeded');
  t.is(budgetLevel(990, 1000, 'exceeded'), 'exceeded', 'hovering at 100 % does not flap');
  t.is(budgetLevel(970, 1000, 'exceeded'), 'warning');
  t.is(budgetLevel(790, 1000, 'warning'), 'warning', 'hovering at 80 % does not flap');
  t.is(budgetLevel(770, 1000, 'warning'), 'ok');
  t.is(budgetLevel(770, 1000, 'exceeded'), 'ok');
});

test('each change of level is reported once, and a failed measurement keeps the level', async (t) => {
  const sizes: Array<number | Error> = [100, 850, 860, 1200, 1100, new Error('database is not open'), 500];
  const changes: AuditBudgetChange[] = [];
  const failures: string[] = [];
  const budget = new AuditDiskBudget({
    budgetBytes: 1000,
    checkEveryMs: 3_600_000,
    measure: async () => {
      const next = sizes.shift()!;
      if (next instanceof Error) throw next;
      return next;
    },
    onChange: (c) => changes.push(c),
    onMeasureFailed: (e) => failures.push(e),
    now: () => 42,
  });
  await budget.start();
  t.like(budget.status, { usedBytes: 100, level: 'ok', measuredAt: 42, budgetBytes: 1000 });
  for (let i = 0; i < 4; i++) await budget.check();
  t.deepEqual(
    changes.map((c) => `${c.from}>${c.to}@${c.usedBytes}`),
    ['ok>warning@850', 'warning>exceeded@1200'],
  );
  await budget.check();
  t.deepEqual(failures, ['database is not open']);
  t.like(budget.status, { level: 'exceeded', usedBytes: 1100, problem: 'database is not open' });
  await budget.check();
  t.is(changes.at(-1)!.to, 'ok');
  t.is(budget.status.problem, undefined);
  await budget.stop();
});

test('concurrent checks share one measurement', async (t) => {
  let calls = 0;
  const budget = new AuditDiskBudget({
    budgetBytes: 1000,
    checkEveryMs: 3_600_000,
    measure: async () => {
      calls++;
      return 1;
    },
    onChange: () => undefined,
  });
  await Promise.all([budget.check(), budget.check(), budget.check()]);
  t.is(calls, 1);
});
