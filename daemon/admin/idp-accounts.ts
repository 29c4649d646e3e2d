// The user store as seen by single sign-on: an IdP user is found by issuer + subject (the `sub` claim
// never changes for a person at one IdP; the user name claim may), created on the first sign-in and
// updated on every later one. A user name already held by a local account or another IdP identity is
// never taken over: that sign-in is refused.
import type { UserDirectory, UserRecord } from '../core/user-account.ts';
import { stateOf } from '../core/user-account.ts';
import type { IdpAccountFields, IdpAccountResult, IdpAccountStore } from './sso-sign-in.ts';

export class IdpAccounts implements IdpAccountStore {
  readonly #users: UserDirectory;

  constructor(users: UserDirectory) {
    this.#users = users;
  }

  async upsertIdpAccount(fields: IdpAccountFields): Promise<IdpAccountResult> {
    // The box holds tens of accounts: a scan is cheaper than keeping a second index consistent.
    const linked = (await this.#users.list()).find((u) => sameIdentity(u, fields));
    if (linked !== undefined) {
      const updated = await this.#users.update(linked.username, (u) =>
        sameIdentity(u, fields) ? { ...u, displayName: fields.displayName, role: fields.role, lastLoginAt: fields.at } : undefined,
      );
      if (updated !== undefined && sameIdentity(updated, fields)) return result(updated, linked.role);
    }
    const username = fields.username.toLowerCase();
    const record: UserRecord = {
      username,
      displayName: fields.displayName,
      role: fields.role,
      state: 'active',
      source: 'oidc',
      idp: { issuer: fields.issuer, subject: fields.subject },
      mustChange: false,
      createdAt: fields.at,
      lastLoginAt: fields.at,
    };
    try {
      await this.#users.create(record);
    } catch {
      // The name exists (a local account, another identity, or a sign-in of the same user a moment ago).
      const holder = await this.#users.get(username);
      if (holder !== undefined && sameIdentity(holder, fields)) return this.upsertIdpAccount(fields);
      return { ok: false, reason: 'username-taken' };
    }
    return result(record, undefined);
  }
}

function sameIdentity(user: UserRecord, fields: Pick<IdpAccountFields, 'issuer' | 'subject'>): boolean {
  return user.source === 'oidc' && user.idp?.issuer === fields.issuer && user.idp.subject === fields.subject;
}

function result(user: UserRecord, previousRole: UserRecord['role'] | undefined): IdpAccountResult {
  return {
    ok: true,
    username: user.username,
    active: stateOf(user) === 'active',
    totpEnrolled: user.totp !== undefined,
    ...(previousRole === undefined || previousRole === user.role ? {} : { previousRole }),
  };
}
