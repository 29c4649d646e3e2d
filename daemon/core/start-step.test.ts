import test from 'ava';
import type { Logger } from './log.ts';
import { isEdgeError } from './errors.ts';
import { startStep } from './start-step.ts';

function recordingLogger(): { logger: Logger; lines: Array<{ level: string; event: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; event: string; fields: Record<string, unknown> }> = [];
  const at =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, event, fields });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return { logger, lines };
}

test('a step that finishes in time returns its value and logs nothing', async (t) => {
  const { logger, lines } = recordingLogger();
  t.is(await startStep('open the store', 1000, logger, () => Promise.resolve(42)), 42);
  t.deepEqual(lines, []);
});

test('a step past its deadline fails with EDGE_START_STEP_TIMEOUT and a log line naming it', async (t) => {
  const { logger, lines } = recordingLogger();
  const began = Date.now();
  const err = await t.throwsAsync(startStep('open the spool', 200, logger, () => new Promise<never>(() => {})));
  t.true(isEdgeError(err, 'EDGE_START_STEP_TIMEOUT'));
  t.regex(err?.message ?? '', /"open the spool" did not finish within 200 ms/);
  t.true(Date.now() - began >= 190);
  t.deepEqual(lines, [{ level: 'error', event: 'edged.start-step-timeout', fields: { step: 'open the spool', timeoutMs: 200 } }]);
});

test('a step that fails keeps its own error', async (t) => {
  const { logger } = recordingLogger();
  const err = await t.throwsAsync(startStep('x', 1000, logger, () => Promise.reject(new Error('disk'))));
  t.is(err?.message, 'disk');
});
