// The first admin account. There is no user store yet: this is its seed, one sealed record per user
// under the `u` prefix, which the admin page's user management will build on. The password is a
// one-time password shown once; `mustChange` forces a new one at first login.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { CommitQueue } from '../daemon/store/commit-queue.ts';
import { Prefix } from '../daemon/store/record-keys.ts';
import type { ValueCodec } from '../daemon/store/value-codec.ts';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number, o: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;
const params = { N: 32_768, r: 8, p: 1 } as const;

export interface UserRecord {
  readonly username: string;
  readonly role: 'admin' | 'operator' | 'viewer' | 'auditor';
  readonly password: { readonly alg: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string; readonly hash: string };
  readonly mustChange: boolean;
  readonly createdAt: number;
}

export function userKey(username: string): string {
  return `${Prefix.user}\u0000${username}`;
}

async function hash(password: string, salt: Buffer): Promise<Buffer> {
  return scryptAsync(password, salt, 32, { ...params, maxmem: 64 * 1024 * 1024 });
}

export function oneTimePassword(): string {
  return randomBytes(15).toString('base64url');
}

export async function createAdminAccount(store: { queue: CommitQueue; codec: ValueCodec }, username: string): Promise<{ password: string }> {
  if (!/^[a-z][a-z0-9._-]{1,31}$/.test(username)) throw new Error(`user name "${username}" must be 2–32 of a-z 0-9 . _ - starting with a letter`);
  const password = oneTimePassword();
  const salt = randomBytes(16);
  const record: UserRecord = {
    username,
    role: 'admin',
    password: { alg: 'scrypt', ...params, salt: salt.toString('base64'), hash: (await hash(password, salt)).toString('base64') },
    mustChange: true,
    createdAt: Date.now(),
  };
  const key = userKey(username);
  await store.queue.commit(async () => {
    if ((await store.queue.get(key)) !== undefined) throw new Error(`user "${username}" exists`);
    return { ops: [{ type: 'put', key, value: store.codec.seal(key, Buffer.from(JSON.stringify(record), 'utf8')) }], result: undefined };
  });
  return { password };
}

export async function readUser(store: { queue: CommitQueue; codec: ValueCodec }, username: string): Promise<UserRecord | undefined> {
  const key = userKey(username);
  const sealed = await store.queue.get(key);
  return sealed === undefined ? undefined : (JSON.parse(store.codec.open(key, sealed).toString('utf8')) as UserRecord);
}

export async function verifyPassword(user: UserRecord, password: string): Promise<boolean> {
  const expected = Buffer.from(user.password.hash, 'base64');
  const got = await hash(password, Buffer.from(user.password.salt, 'base64'));
  return got.length === expected.length && timingSafeEqual(got, expected);
}
