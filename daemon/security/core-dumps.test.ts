import test from 'ava';
import { readFileSync } from 'node:fs';
import { coreLimitOf } from './core-dumps.ts';

test('the core limit row of /proc/PID/limits is read as the kernel writes it', (t) => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max cpu time              unlimited            unlimited            seconds   ',
    'Max core file size        0                    unlimited            bytes     ',
    'Max resident set          unlimited            unlimited            bytes     ',
  ].join('\n');
  t.deepEqual(coreLimitOf(text), { soft: '0', hard: 'unlimited' });
  t.is(coreLimitOf('Limit Soft Hard\nMax cpu time 1 1 seconds\n'), undefined);
  // This process's own table has the row (the daemon relies on it at every start).
  const own = coreLimitOf(readFileSync('/proc/self/limits', 'utf8'));
  t.truthy(own);
  t.regex(`${own?.soft} ${own?.hard}`, /^(\d+|unlimited) (\d+|unlimited)$/);
});
