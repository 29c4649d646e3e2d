// A software TPM 2.0 (swtpm, Debian's package) per test on free loopback ports, state in a temp dir.
// swtpm serves one client at a time; the TCTI for tpm2-tools is swtpm:host=127.0.0.1,port=N (control N+1).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './processes.ts';

async function portPairFree(port: number): Promise<boolean> {
  for (const p of [port, port + 1]) {
    const srv = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(p, '127.0.0.1', () => resolve(true));
    });
    if (ok) await new Promise<void>((r) => srv.close(() => r()));
    if (!ok) return false;
  }
  return true;
}

export class Swtpm {
  readonly stateDir: string;
  port = 0;
  #child: ChildProcess | undefined;
  readonly #ownsDir: boolean;

  private constructor(stateDir: string, ownsDir: boolean) {
    this.stateDir = stateDir;
    this.#ownsDir = ownsDir;
  }

  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  static async start(): Promise<Swtpm> {
    const dir = await mkdtemp(join(tmpdir(), 'edge-swtpm-'));
    const t = new Swtpm(dir, true);
    await t.#launch();
    return t;
  }

  async #launch(): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) {
      // A restart keeps the port (clients hold the TCTI string); the old socket may need a moment.
      const port = this.port !== 0 ? this.port : 20_000 + Math.floor(Math.random() * 40_000);
      if (!(await portPairFree(port))) {
        if (this.port !== 0) await new Promise((res) => setTimeout(res, 100));
        continue;
      }
      this.port = port;
      const child = spawn(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--tpmstate',
          `dir=${this.stateDir}`,
          '--server',
          `type=tcp,bindaddr=127.0.0.1,port=${port}`,
          '--ctrl',
          `type=tcp,bindaddr=127.0.0.1,port=${port + 1}`,
          '--flags',
          'not-need-init,startup-clear',
        ],
        { stdio: 'ignore' },
      );
      this.#child = child;
      for (let i = 0; i < 100; i++) {
        if (child.exitCode !== null) break;
        const r = await run('tpm2_getrandom', ['--hex', '4'], { env: { TPM2TOOLS_TCTI: this.tcti }, timeoutMs: 5000 });
        if (r.code === 0) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      await this.#kill();
    }
    throw new Error('swtpm did not start');
  }

  /** Power cycle with the same state: PCRs reset, persistent handles stay. */
  async restart(): Promise<void> {
    await this.#kill();
    await this.#launch();
  }

  /** Run a tpm2-tools command against this TPM (flushing transient objects afterwards). */
  async tool(tool: string, args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = { TPM2TOOLS_TCTI: this.tcti };
    const r = await run(tool, args, { env, timeoutMs: 15_000, ...(input === undefined ? {} : { input }) });
    for (const what of ['-t', '-l', '-s']) await run('tpm2_flushcontext', [what], { env, timeoutMs: 5000 });
    return r;
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    await run('swtpm_ioctl', ['--tcp', `127.0.0.1:${this.port + 1}`, '-s'], { timeoutMs: 5000 });
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.#kill();
    if (this.#ownsDir) await rm(this.stateDir, { recursive: true, force: true });
  }
}
