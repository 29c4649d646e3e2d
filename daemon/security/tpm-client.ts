// A small typed wrapper over tpm2-tools (Debian's package), run with spawn (no shell) and TPM2TOOLS_TCTI.
// No maintained TPM 2.0 package exists on the registry, and the tools are what the box's image carries.
// Calls are serialised: swtpm serves one connection at a time, and without a resource manager every
// tool leaves transient objects and sessions loaded, so each command is followed by a flush.
// Secrets travel over stdin/stdout pipes only, never argv, environment or files.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export interface TpmClientOptions {
  /** e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321` */
  readonly tcti: string;
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
}

export interface LockoutStatus {
  readonly inLockout: boolean;
  readonly failedTries: number;
  readonly maxTries: number;
  readonly recoverySeconds: number;
}

/** The largest secret a TPM sealed-data object holds (MAX_SYM_DATA). */
export const maxSealedBytes = 128;

const maxOutputBytes = 1_048_576;

export class TpmClient {
  readonly tcti: string;
  readonly #timeoutMs: number;
  readonly #log: Logger | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: TpmClientOptions) {
    this.tcti = options.tcti;
    this.#timeoutMs = options.commandTimeoutMs ?? 30_000;
    this.#log = options.logger;
  }

  async getRandom(bytes: number): Promise<Buffer> {
    const out = await this.#exclusive(() => this.#tool('tpm2_getrandom', [String(bytes)]));
    if (out.length !== bytes) throw new EdgeError('EDGE_TPM_COMMAND_FAILED', `tpm2_getrandom returned ${out.length} of ${bytes} bytes`);
    return out;
  }

  /** Throws EDGE_TPM_UNAVAILABLE when nothing answers at the TCTI. */
  async probe(): Promise<void> {
    await this.getRandom(8);
  }

  async lockoutStatus(): Promise<LockoutStatus> {
    const text = (await this.#exclusive(() => this.#tool('tpm2_getcap', ['properties-variable']))).toString('utf8');
    const num = (name: string): number => {
      const m = new RegExp(`${name}:\\s*(0x[0-9a-fA-F]+|\\d+)`).exec(text);
      return m?.[1] === undefined ? 0 : Number(m[1]);
    };
    return {
      inLockout: num('inLockout') === 1,
      failedTries: num('TPM2_PT_LOCKOUT_COUNTER'),
      maxTries: num('TPM2_PT_MAX_AUTH_FAIL'),
      recoverySeconds: num('TPM2_PT_LOCKOUT_INTERVAL'),
    };
  }

  async persistentHandles(): Promise<number[]> {
    const text = (await this.#exclusive(() => this.#tool('tpm2_getcap', ['handles-persistent']))).toString('utf8');
    return [...text.matchAll(/0x[0-9a-fA-F]{8}/g)].map((m) => Number(m[0]));
  }

  /**
   * Seal `secret` under a policy on `pcrs` (e.g. `sha256:7`) as a child of the owner hierarchy's ECC
   * primary, and persist it at `handle`. Only the policy can authorise unsealing (no userwithauth).
   */
  async seal(secret: Uint8Array, pcrs: string, handle: number): Promise<void> {
    if (secret.length === 0 || secret.length > maxSealedBytes) throw new TypeError(`a sealed secret is 1–${maxSealedBytes} bytes`);
    await this.#exclusive(() =>
      withWorkDir(async (dir) => {
        const primary = join(dir, 'primary.ctx');
        const policy = join(dir, 'pcr.policy');
        const object = join(dir, 'seal.ctx');
        await this.#tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256', '-c', primary]);
        await this.#tool('tpm2_createpolicy', ['-Q', '--policy-pcr', '-l', pcrs, '-L', policy]);
        await this.#tool(
          'tpm2_create',
          ['-Q', '-C', primary, '-g', 'sha256', '-L', policy, '-a', 'fixedtpm|fixedparent', '-i', '-', '-c', object],
          secret,
        );
        await this.#tool('tpm2_evictcontrol', ['-Q', '-C', 'o', '-c', object, hex(handle)]);
      }),
    );
  }

  /** The sealed secret at `handle`, if the PCRs match the policy it was sealed under. */
  async unseal(handle: number, pcrs: string): Promise<Buffer> {
    return this.#exclusive(() => this.#tool('tpm2_unseal', ['-c', hex(handle), '-p', `pcr:${pcrs}`]));
  }

  /** Remove a persistent object from the TPM (its secret is gone with it). */
  async evict(handle: number): Promise<void> {
    await this.#exclusive(() => this.#tool('tpm2_evictcontrol', ['-Q', '-C', 'o', '-c', hex(handle)]));
  }

  /**
   * Define an NV monotonic counter (TPM_NT_COUNTER: it can only go up, and it survives deleting every
   * file) at `index` under the owner hierarchy. False when the index was already defined.
   */
  async nvDefineCounter(index: number): Promise<boolean> {
    try {
      await this.#exclusive(() =>
        this.#tool('tpm2_nvdefine', ['-Q', hex(index), '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|nt=counter']),
      );
      return true;
    } catch (err) {
      if (rcOf(err) === 0x14c) return false;
      throw err;
    }
  }

  /** Remove an NV index; false when there was none. */
  async nvUndefine(index: number): Promise<boolean> {
    try {
      await this.#exclusive(() => this.#tool('tpm2_nvundefine', ['-Q', '-C', 'o', hex(index)]));
      return true;
    } catch (err) {
      if (rcOf(err) === 0x18b) return false;
      throw err;
    }
  }

  async nvIncrement(index: number): Promise<void> {
    await this.#exclusive(() => this.#tool('tpm2_nvincrement', ['-Q', '-C', 'o', hex(index)]));
  }

  /** The counter's value; undefined when the index is not defined, or defined but never incremented. */
  async nvReadCounter(index: number): Promise<number | undefined> {
    let out: Buffer;
    try {
      out = await this.#exclusive(() => this.#tool('tpm2_nvread', ['-C', 'o', '-s', '8', hex(index)]));
    } catch (err) {
      const rc = rcOf(err);
      if (rc === 0x18b || rc === 0x14a) return undefined;
      throw err;
    }
    if (out.length !== 8) throw new EdgeError('EDGE_TPM_COMMAND_FAILED', `tpm2_nvread returned ${out.length} of 8 bytes`);
    return Number(out.readBigUInt64BE(0));
  }

  /** For tests and diagnostics: extend a PCR with a digest. */
  async pcrExtend(pcr: number, sha256Hex: string): Promise<void> {
    await this.#exclusive(() => this.#tool('tpm2_pcrextend', [`${pcr}:sha256=${sha256Hex}`]));
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** One tool, then flush transient objects and sessions it left (no resource manager on swtpm). */
  async #tool(tool: string, args: readonly string[], input?: Uint8Array): Promise<Buffer> {
    const started = Date.now();
    try {
      return await this.#spawn(tool, args, input);
    } finally {
      if (!this.tcti.startsWith('device:/dev/tpmrm')) {
        for (const what of ['-t', '-l', '-s']) await this.#spawn('tpm2_flushcontext', [what]).catch(() => undefined);
      }
      this.#log?.debug('tpm.command', { tool, ms: Date.now() - started });
    }
  }

  #spawn(tool: string, args: readonly string[], input?: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn(tool, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TPM2TOOLS_TCTI: this.tcti },
      });
      const out: Buffer[] = [];
      let outBytes = 0;
      let err = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.#timeoutMs);
      child.stdout.on('data', (c: Buffer) => {
        outBytes += c.length;
        if (outBytes > maxOutputBytes) child.kill('SIGKILL');
        else out.push(c);
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (err.length < 16_384) err += d;
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(input === undefined ? undefined : Buffer.from(input));
      child.on('error', (cause: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new EdgeError('EDGE_TPM_UNAVAILABLE', `cannot run ${tool} (${cause.code ?? cause.message}): is tpm2-tools installed?`, { cause }),
        );
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const data = Buffer.concat(out);
        if (timedOut) {
          data.fill(0);
          reject(new EdgeError('EDGE_TPM_TIMEOUT', `${tool} did not finish within ${this.#timeoutMs} ms`, { detail: { tool } }));
          return;
        }
        if (code === 0) {
          resolve(data);
          return;
        }
        data.fill(0);
        reject(classifyFailure(tool, code, err));
      });
    });
  }
}

/** Map tpm2-tools' stderr to a stable code and a message that says which command failed and why. */
export function classifyFailure(tool: string, exitCode: number | null, stderr: string): EdgeError {
  const rc = /ErrorCode \((0x[0-9a-fA-F]+)\)/.exec(stderr)?.[1] ?? /\((0x[0-9a-fA-F]+)\) -/.exec(stderr)?.[1];
  const reason =
    /ERROR: [^\n]*\(0x[0-9A-Fa-f]+\) - ([^\n]+)/.exec(stderr)?.[1]?.trim() ??
    stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('ERROR'))
      .pop() ??
    `exit status ${exitCode ?? 'signal'}`;
  const detail = { tool, ...(rc === undefined ? {} : { rc }) };
  const n = rc === undefined ? undefined : Number(rc) & 0xfff;
  if (/Could not load tcti|Cannot connect|Failed to connect|tcti/i.test(stderr) && rc === undefined) {
    return new EdgeError('EDGE_TPM_UNAVAILABLE', `${tool}: no TPM answers (${reason})`, { detail });
  }
  if (n === 0x921 || /lockout/i.test(stderr)) {
    return new EdgeError('EDGE_TPM_LOCKOUT', `${tool}: the TPM is in dictionary-attack lockout (${reason})`, { detail });
  }
  if (n === 0x99d || /policy check failed/.test(stderr)) {
    return new EdgeError(
      'EDGE_TPM_POLICY_MISMATCH',
      `${tool}: PCR policy check failed; the boot state differs from the one the key was sealed to`,
      { detail },
    );
  }
  if (n === 0x18b) {
    return new EdgeError('EDGE_TPM_OBJECT_MISSING', `${tool}: the sealed object is not in this TPM (${reason})`, { detail });
  }
  return new EdgeError('EDGE_TPM_COMMAND_FAILED', `${tool} failed: ${reason}`, { detail });
}

/** The TPM response code of a failed tool, without the format bits' noise (e.g. 0x14c), if known. */
function rcOf(err: unknown): number | undefined {
  const rc = err instanceof EdgeError ? err.detail?.['rc'] : undefined;
  return typeof rc === 'string' ? Number(rc) & 0xfff : undefined;
}

function hex(handle: number): string {
  return `0x${handle.toString(16).padStart(8, '0')}`;
}

async function withWorkDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-tpm-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
