// Spawning real peers and the daemon in tests: every child is tracked and killed when the test ends.
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion with a hard timeout; never throws on a non-zero exit. */
export async function run(
  cmd: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number; input?: string | Buffer } = {},
): Promise<RunResult> {
  const child = spawn(cmd, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...options,
    env: { TCP_NODELAY: '1', ...process.env, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (options.input !== undefined) child.stdin?.end(options.input);
  else child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/**
 * A free loopback TCP port (for peers that cannot listen on port 0 and report it). Taken below Linux's
 * ephemeral range (32768–60999): a port from that range, left unbound while a test simulates an outage,
 * is soon handed to some other test's outgoing connection, and the peer then cannot start on it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const srv = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    srv.close();
    await once(srv, 'close');
    return port;
  }
  throw new Error('no free loopback port found in 20000–31999');
}

/** A long-running child whose stdout is JSON lines (the daemon) or text; lines are kept for assertions. */
export class Supervised {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly #waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];
  stderr = '';

  constructor(cmd: string, args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (line) => {
      this.lines.push(line);
      for (const w of [...this.#waiters]) {
        if (w.test(line)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  /** Wait for a stdout line passing `test`, or fail after `timeoutMs` or if the process exits first. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(
          new Error(
            `process exited (${code}) before the expected line; stderr: ${this.stderr.slice(-2000)}; stdout tail: ${this.lines.slice(-10).join('\n')}`,
          ),
        );
      const timer = setTimeout(
        () =>
          reject(
            new Error(`timed out waiting for a line; stdout tail: ${this.lines.slice(-10).join('\n')} stderr: ${this.stderr.slice(-2000)}`),
          ),
        timeoutMs,
      );
      this.child.once('exit', onExit);
      this.#waiters.push({
        test,
        resolve: (line) => {
          clearTimeout(timer);
          this.child.off('exit', onExit);
          resolve(line);
        },
      });
    });
  }

  /** Wait for a JSON log line with this `event`. */
  async waitForEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const line = await this.waitForLine((l) => l.includes(`"event":"${event}"`), timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  events(event: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.exited) return this.child.exitCode;
    const done = once(this.child, 'exit');
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const [code] = (await done) as [number | null];
    clearTimeout(timer);
    return code;
  }
}
