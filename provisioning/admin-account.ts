// The first admin account, written to the store's users repository (daemon/store/user-repository.ts),
// which the admin listener's sign-in reads. The password is a one-time password shown once;
// `mustChange` and `mustEnrolMfa` force a new password and TOTP enrolment at the first sign-in.
import { randomBytes } from 'node:crypto';
import { hashPassword, verifyPasswordHash } from '../daemon/core/password-hash.ts';
import type { UserDirectory, UserRecord } from '../daemon/core/user-account.ts';

export type { UserRecord } from '../daemon/core/user-account.ts';

export function oneTimePassword(): string {
  return randomBytes(15).toString('base64url');
}

export async function createAdminAccount(store: { readonly users: UserDirectory }, username: string): Promise<{ password: string }> {
  if (!/^[a-z][a-z0-9._-]{1,31}$/.test(username))
    throw new Error(`user name "${username}" must be 2–32 of a-z 0-9 . _ - starting with a letter`);
  const password = oneTimePassword();
  const record: UserRecord = {
    username,
    displayName: 'First administrator',
    role: 'admin',
    state: 'active',
    password: await hashPassword(password),
    mustChange: true,
    mustEnrolMfa: true,
    createdAt: Date.now(),
    sessionEpoch: 0,
  };
  await store.users.create(record);
  return { password };
}

export function readUser(store: { readonly users: UserDirectory }, username: string): Promise<UserRecord | undefined> {
  return store.users.get(username);
}

export function verifyPassword(user: UserRecord, password: string): Promise<boolean> {
  return verifyPasswordHash(user.password, password);
}
