// The password hashing thread (password-hash.ts): argon2id and scrypt computed here, one at a time, at a
// lower CPU priority than the rest of the process. Not on libuv's thread pool, which the store's
// database work shares (four sign-ins at once stalled every HL7 commit), and never on the event loop.
import { argon2Sync, scryptSync } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';

export type HashJob =
  | {
      readonly id: number;
      readonly alg: 'argon2id';
      readonly password: string;
      readonly salt: Uint8Array;
      readonly m: number;
      readonly t: number;
      readonly p: number;
      readonly length: number;
    }
  | {
      readonly id: number;
      readonly alg: 'scrypt';
      readonly password: string;
      readonly salt: Uint8Array;
      readonly N: number;
      readonly r: number;
      readonly p: number;
      readonly length: number;
    };

export type HashAnswer = { readonly id: number; readonly hash: Uint8Array } | { readonly id: number; readonly error: string };

// Linux: setpriority on this thread's id renices this thread only; a sign-in burst then yields the CPU
// to the listeners. Where that is not possible the hashes still run here, at the normal priority.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10);
} catch {
  // no /proc/thread-self or not allowed: normal priority
}

parentPort?.on('message', (job: HashJob) => {
  try {
    const hash =
      job.alg === 'argon2id'
        ? argon2Sync('argon2id', {
            message: job.password,
            nonce: job.salt,
            parallelism: job.p,
            tagLength: job.length,
            memory: job.m,
            passes: job.t,
          })
        : scryptSync(job.password, job.salt, job.length, { N: job.N, r: job.r, p: job.p, maxmem: 256 * job.N * job.r });
    parentPort?.postMessage({ id: job.id, hash } satisfies HashAnswer);
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) } satisfies HashAnswer);
  }
});
