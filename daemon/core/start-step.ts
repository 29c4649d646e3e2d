// Start steps that touch the file system (open the store, the spool, the audit folders) can block
// forever on a hung mount or a FIFO where a file should be; the daemon would sit before `edged.ready`
// with nothing in the log, and hold SIGTERM until it is up. Each such step runs under a deadline that
// logs the step's name and fails the start.
import { EdgeError } from './errors.ts';
import type { Logger } from './log.ts';

export async function startStep<T>(step: string, timeoutMs: number, logger: Logger, work: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      logger.error('edged.start-step-timeout', { step, timeoutMs });
      reject(
        new EdgeError('EDGE_START_STEP_TIMEOUT', `start step "${step}" did not finish within ${timeoutMs} ms`, {
          detail: { step, timeoutMs },
        }),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
