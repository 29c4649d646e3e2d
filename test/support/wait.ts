// Waiting for state outside the test's own control (a peer's files, a port a child opens, a daemon's
// counters): the one polling loop the tests share. Prefer an event when there is one.
import { connect } from 'node:net';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Answer<T> = T | undefined | false;

/**
 * Ask `probe` every `intervalMs` until it answers (anything but undefined or false), asking once more when
 * `timeoutMs` has passed; its answer, or undefined when it never answered. A probe that throws ends the wait.
 */
export async function poll<T>(probe: () => Answer<T> | Promise<Answer<T>>, timeoutMs: number, intervalMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if (answer !== undefined && answer !== false) return answer;
    if (Date.now() >= deadline) return undefined;
    await pause(intervalMs);
  }
}

/** `poll`, where not answering within `timeoutMs` is an error naming `what` was awaited. */
export async function eventually<T>(
  probe: () => Answer<T> | Promise<Answer<T>>,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<T> {
  const answer = await poll(probe, timeoutMs, intervalMs);
  if (answer === undefined) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  return answer;
}

/** Whether `condition` came true within `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 250): Promise<boolean> {
  return (await poll(condition, timeoutMs, intervalMs)) === true;
}

/** Whether a TCP connection to host:port is accepted now. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Wait until a peer accepts connections on 127.0.0.1:port. `exited` says why the peer can no longer
 * open it (its process ended), which fails the wait at once instead of at the timeout.
 */
export async function waitForPort(port: number, options: { timeoutMs?: number; exited?: () => string | undefined } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  await eventually(
    async () => {
      const gone = options.exited?.();
      if (gone !== undefined) throw new Error(`port ${port} will not open: ${gone}`);
      return canConnect(port);
    },
    timeoutMs,
    `port ${port} to open`,
    50,
  );
}
