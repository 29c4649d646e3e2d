// A local user account of the admin listener (sealed in the store like everything else) and the port
// the admin adapter reads and changes accounts through. Passwords are argon2id hashes
// (core/password-hash.ts); the scrypt form is what `edgectl provision` wrote before, still accepted.
import type { RoleName } from './control-route.ts';

export type PasswordHash =
  | {
      readonly alg: 'argon2id';
      /** Memory in KiB, passes, lanes (RFC 9106 m, t, p). */
      readonly m: number;
      readonly t: number;
      readonly p: number;
      readonly salt: string;
      readonly hash: string;
    }
  | { readonly alg: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string; readonly hash: string };

export const UserState = {
  active: 'may sign in',
  disabled: 'may not sign in (an admin disabled it)',
  locked: 'too many failed sign-ins',
} as const;
export type UserStateName = keyof typeof UserState;

export interface TotpEnrolment {
  /** Base32 secret (the record is sealed at rest). */
  readonly secret: string;
  /** The last time step a code was accepted for: a code of that step or before is refused (replay). */
  readonly lastStep: number;
  readonly enrolledAt: number;
}

/** Who vouches for the account: its own password on the box, or the hospital's identity provider. */
export const UserSource = {
  local: 'a password kept on the box',
  oidc: "the hospital's identity provider (OpenID Connect); no password on the box",
} as const;
export type UserSourceName = keyof typeof UserSource;

/** A WebAuthn authenticator registered to the user (the public half only; the record is sealed at rest). */
export interface WebAuthnCredential {
  /** Credential ID, base64url. */
  readonly id: string;
  /** COSE public key, base64url. */
  readonly publicKey: string;
  /** Signature counter last seen; 0 for authenticators that do not count. */
  readonly counter: number;
  readonly transports?: readonly string[];
  readonly createdAt: number;
  readonly lastUsedAt?: number;
}

export interface UserRecord {
  readonly username: string;
  readonly displayName?: string;
  readonly role: RoleName;
  readonly state?: UserStateName;
  /** Absent: `local` (every record written before SSO existed). */
  readonly source?: UserSourceName;
  /** For source `oidc`: the identity is the issuer plus the IdP's `sub`, never the user name alone. */
  readonly idp?: { readonly issuer: string; readonly subject: string };
  /** Absent for source `oidc`: such an account cannot sign in with a password. */
  readonly password?: PasswordHash;
  readonly mustChange: boolean;
  /** Must enrol TOTP at the next sign-in (the first admin; after `edgectl user reset-mfa`). */
  readonly mustEnrolMfa?: boolean;
  readonly totp?: TotpEnrolment;
  /** WebAuthn second factors: the opaque user handle given to authenticators, and the credentials. */
  readonly webauthn?: { readonly userHandle: string; readonly credentials: readonly WebAuthnCredential[] };
  /** SHA-256 hashes (hex) of the unused recovery codes. */
  readonly recoveryCodes?: readonly string[];
  readonly createdAt: number;
  readonly lastLoginAt?: number;
  /** Bumped on password and role change: sessions of an older epoch end (sign-out everywhere). */
  readonly sessionEpoch?: number;
}

export interface UserDirectory {
  get(username: string): Promise<UserRecord | undefined>;
  list(): Promise<readonly UserRecord[]>;
  /** Durable before it resolves; refuses a name that exists. */
  create(record: UserRecord): Promise<void>;
  /**
   * Read, change and write one account in one commit; `change` returns undefined to write nothing.
   * Resolves with the record written (or the unchanged one), undefined when there is no such user.
   */
  update(username: string, change: (current: UserRecord) => UserRecord | undefined): Promise<UserRecord | undefined>;
}

/** The account's state, reading a record written before states existed as active. */
export function stateOf(user: UserRecord): UserStateName {
  return user.state ?? 'active';
}
