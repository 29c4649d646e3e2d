// Password hashing: argon2id (RFC 9106) through Node's own crypto.argon2, which runs on libuv's thread
// pool, so a sign-in never blocks the event loop the HL7 and DICOM listeners share. Parameters are at
// least OWASP's minimum (m = 19 MiB, t = 2, p = 1). The scrypt form `edgectl provision` wrote before
// is still verified, and re-hashed to argon2id by the caller on the next successful sign-in.
import { argon2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { PasswordHash } from './user-account.ts';

export const Argon2idParams = { m: 19_456, t: 2, p: 1 } as const;
const TAG_BYTES = 32;

function argon2id(password: string, salt: Buffer, params: { m: number; t: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    argon2(
      'argon2id',
      { message: password, nonce: salt, parallelism: params.p, tagLength: TAG_BYTES, memory: params.m, passes: params.t },
      (err, key) => (err === null ? resolve(key) : reject(err)),
    );
  });
}

function scryptHash(password: string, salt: Buffer, params: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, { ...params, maxmem: 256 * params.N * params.r }, (err, key) =>
      err === null ? resolve(key) : reject(err),
    );
  });
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
