// The first admin account, written to the store's users repository (daemon/store/user-repository.ts),
// which the admin page's user management will build on. The password is a one-time password shown
// once; `mustChange` forces a new one at first login.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { LevelUserRepository, UserRecord } from '../daemon/store/user-repository.ts';

export type { UserRecord } from '../daemon/store/user-repository.ts';

const scryptAsync = promisify(scrypt) as (
  pw: string,
  salt: Buffer,
  len: number,
  o: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;
const params = { N: 32_768, r: 8, p: 1 } as const;

async function hash(password: string, salt: Buffer): Promise<Buffer> {
  return scryptAsync(password, salt, 32, { ...params, maxmem: 64 * 1024 * 1024 });
}

export function oneTimePassword(): string {
  return randomBytes(15).toString('base64url');
}

export async function createAdminAccount(store: { readonly users: LevelUserRepository }, username: string): Promise<{ password: string }> {
  if (!/^[a-z][a-z0-9._-]{1,31}$/.test(username))
    throw new Error(`user name "${username}" must be 2–32 of a-z 0-9 . _ - starting with a letter`);
  const password = oneTimePassword();
  const salt = randomBytes(16);
  const record: UserRecord = {
    username,
    role: 'admin',
    password: { alg: 'scrypt', ...params, salt: salt.toString('base64'), hash: (await hash(password, salt)).toString('base64') },
    mustChange: true,
    createdAt: Date.now(),
  };
  await store.users.create(record);
  return { password };
}

export function readUser(store: { readonly users: LevelUserRepository }, username: string): Promise<UserRecord | undefined> {
  return store.users.get(username);
}

export async function verifyPassword(user: UserRecord, password: string): Promise<boolean> {
  const expected = Buffer.from(user.password.hash, 'base64');
  const got = await hash(password, Buffer.from(user.password.salt, 'base64'));
  return got.length === expected.length && timingSafeEqual(got, expected);
}
