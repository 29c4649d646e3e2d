// IdP accounts in the real (encrypted) user store: found by issuer + subject, created on the first
// sign-in, updated later; a name held by a local account or by another IdP identity is never taken over.
import test from 'ava';
import { tempStore } from '../../test/support/audit-store.ts';
import { hashPassword } from '../core/password-hash.ts';
import { IdpAccounts } from './idp-accounts.ts';

const ISSUER = 'https://idp.hospital.example/realms/radiology';
const fields = (over: Partial<Parameters<IdpAccounts['upsertIdpAccount']>[0]> = {}) => ({
  issuer: ISSUER,
  subject: 'sub-1',
  username: 'JDoe@Hospital.Example',
  displayName: 'J. Doe',
  role: 'operator' as const,
  at: 1_000,
  ...over,
});

test('created on first sign-in with source oidc and no password, updated by issuer + subject later', async (t) => {
  const s = await tempStore();
  t.teardown(() => s.cleanup());
  const accounts = new IdpAccounts(s.store.users);
  t.deepEqual(await accounts.upsertIdpAccount(fields()), {
    ok: true,
    username: 'jdoe@hospital.example',
    active: true,
    totpEnrolled: false,
  });
  const created = await s.store.users.get('jdoe@hospital.example');
  t.like(created, { source: 'oidc', idp: { issuer: ISSUER, subject: 'sub-1' }, role: 'operator', mustChange: false, lastLoginAt: 1_000 });
  t.is(created?.password, undefined);

  // The user name claim changed at the IdP: still the same account (the subject is the identity).
  const later = await accounts.upsertIdpAccount(fields({ username: 'john.doe', displayName: 'John Doe', role: 'admin', at: 2_000 }));
  t.deepEqual(later, { ok: true, username: 'jdoe@hospital.example', active: true, totpEnrolled: false, previousRole: 'operator' });
  t.like(await s.store.users.get('jdoe@hospital.example'), { displayName: 'John Doe', role: 'admin', lastLoginAt: 2_000 });
  t.is(await s.store.users.get('john.doe'), undefined);
});

test('a local account, or another identity, keeps its name', async (t) => {
  const s = await tempStore();
  t.teardown(() => s.cleanup());
  await s.store.users.create({
    username: 'admin',
    role: 'admin',
    password: await hashPassword('a long local password'),
    mustChange: false,
    createdAt: 1,
  });
  const accounts = new IdpAccounts(s.store.users);
  t.deepEqual(await accounts.upsertIdpAccount(fields({ username: 'admin', role: 'viewer' })), { ok: false, reason: 'username-taken' });
  t.like(await s.store.users.get('admin'), { role: 'admin', source: undefined });
  t.true((await accounts.upsertIdpAccount(fields({ username: 'jdoe' }))).ok);
  t.deepEqual(await accounts.upsertIdpAccount(fields({ username: 'jdoe', subject: 'sub-2' })), { ok: false, reason: 'username-taken' });
  t.deepEqual(await accounts.upsertIdpAccount(fields({ username: 'jdoe', issuer: 'https://other-idp.example' })), {
    ok: false,
    reason: 'username-taken',
  });
});

test('a disabled account stays disabled and says so', async (t) => {
  const s = await tempStore();
  t.teardown(() => s.cleanup());
  const accounts = new IdpAccounts(s.store.users);
  await accounts.upsertIdpAccount(fields());
  await s.store.users.update('jdoe@hospital.example', (u) => ({ ...u, state: 'disabled' }));
  t.like(await accounts.upsertIdpAccount(fields({ at: 5_000 })), { ok: true, active: false });
  t.like(await s.store.users.get('jdoe@hospital.example'), { state: 'disabled' });
});
