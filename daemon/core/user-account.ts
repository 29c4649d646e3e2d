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

export interface UserRecord {
  readonly username: string;
  readonly displayName?: string;
  readonly role: RoleName;
  readonly state?: UserStateName;
  readonly password: PasswordHash;
  readonly mustChange: boolean;
  /** Must enrol TOTP at the next sign-in (the first admin; after `edgectl user reset-mfa`). */
  readonly mustEnrolMfa?: boolean;
  readonly totp?: TotpEnrolment;
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
