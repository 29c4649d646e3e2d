// Password hashing: argon2id (RFC 9106, Node's own crypto.argon2) with at least OWASP's minimum
// parameters (m = 19 MiB, t = 2, p = 1), off the main thread on one hashing thread of its own
// (password-hash-worker.ts), one hash at a time, at a lower CPU priority. Not on libuv's thread pool:
// the store's database work runs there, and a burst of 20 sign-ins holding its threads stalled every
// HL7 commit behind them (bench: ACK p99 ×13). The scrypt form `edgectl provision` wrote before is
// still verified, and re-hashed to argon2id by the caller on the next successful sign-in.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { EdgeError } from './errors.ts';
import type { HashAnswer, HashJob } from './password-hash-worker.ts';
import type { PasswordHash } from './user-account.ts';

export const Argon2idParams = { m: 19_456, t: 2, p: 1 } as const;
const TAG_BYTES = 32;

const MAX_WAITING = 256;

interface Pending {
  readonly resolve: (hash: Buffer) => void;
  readonly reject: (err: Error) => void;
}

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

/** The one hashing thread, started on first use; it does not keep the process alive. */
function hashingThread(): Worker {
  if (worker !== undefined) return worker;
  const w = new Worker(new URL('./password-hash-worker.ts', import.meta.url));
  w.on('message', (answer: HashAnswer) => {
    const p = pending.get(answer.id);
    if (p === undefined) return;
    pending.delete(answer.id);
    if (pending.size === 0) w.unref();
    if ('hash' in answer) p.resolve(Buffer.from(answer.hash));
    else p.reject(new Error(`password hashing failed: ${answer.error}`));
  });
  const fail = (err: Error): void => {
    worker = undefined;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`the password hashing thread exited (${code})`)));
  // Held (ref) only while a hash is pending: an idle hashing thread never keeps the process alive.
  w.unref();
  worker = w;
  return w;
}

type Job = DistributiveOmit<HashJob, 'id'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function run(job: Job): Promise<Buffer> {
  if (pending.size >= MAX_WAITING) {
    return Promise.reject(new EdgeError('EDGE_ACCESS_THROTTLED', 'too many sign-ins at once: try again in a few seconds'));
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    const w = hashingThread();
    w.ref();
    w.postMessage({ ...job, id });
  });
}

function argon2id(password: string, salt: Buffer, params: { m: number; t: number; p: number }): Promise<Buffer> {
  return run({ alg: 'argon2id', password, salt, m: params.m, t: params.t, p: params.p, length: TAG_BYTES });
}

function scryptHash(password: string, salt: Buffer, params: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  return run({ alg: 'scrypt', password, salt, N: params.N, r: params.r, p: params.p, length });
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const hash = await argon2id(password, salt, Argon2idParams);
  return { alg: 'argon2id', ...Argon2idParams, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifyPasswordHash(stored: PasswordHash, password: string): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const salt = Buffer.from(stored.salt, 'base64');
  const got =
    stored.alg === 'argon2id'
      ? await argon2id(password, salt, stored)
      : await scryptHash(password, salt, { N: stored.N, r: stored.r, p: stored.p }, expected.length);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** A hash that no password opens: verified against for an unknown user, so it takes the same time. */
export const DummyPasswordHash: PasswordHash = {
  alg: 'argon2id',
  ...Argon2idParams,
  salt: randomBytes(16).toString('base64'),
  hash: randomBytes(TAG_BYTES).toString('base64'),
};

/** Whether a stored hash is weaker than today's parameters (re-hash on the next successful sign-in). */
export function needsRehash(stored: PasswordHash): boolean {
  return stored.alg !== 'argon2id' || stored.m < Argon2idParams.m || stored.t < Argon2idParams.t;
}
