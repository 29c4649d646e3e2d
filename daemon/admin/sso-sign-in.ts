// Single sign-on from the box's side: the relying party proves who the IdP says the user is, the role
// mapping says what they may be here, the account store keeps them as a user of source `oidc` (issuer +
// subject as identity, no local password), and every outcome is a User Authentication audit record.
// The caller (the admin listener's routes) turns the outcome into a session, or into the box's own
// TOTP step when the IdP did not show a second factor.
import { auditEvent, securityAlert } from '../core/audit-event-builders.ts';
import type { AuditSink } from '../core/audit.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { OidcIdentity, OidcRelyingParty } from './oidc-relying-party.ts';
import { decideSsoAccess, type MfaClaimPolicy, type RoleMappingEntry, type SsoRole } from './oidc-role-mapping.ts';

export interface IdpAccountFields {
  readonly issuer: string;
  readonly subject: string;
  readonly username: string;
  readonly displayName: string;
  readonly role: SsoRole;
  readonly at: number;
}

export type IdpAccountResult =
  | {
      readonly ok: true;
      readonly username: string;
      readonly active: boolean;
      readonly totpEnrolled: boolean;
      /** The role before this sign-in, when the IdP's groups changed it. */
      readonly previousRole?: SsoRole;
    }
  | { readonly ok: false; readonly reason: 'username-taken' };

/** Where IdP users live: the user store, found by (issuer, subject), never by user name alone. */
export interface IdpAccountStore {
  upsertIdpAccount(fields: IdpAccountFields): Promise<IdpAccountResult>;
}

export interface SsoAccount {
  readonly username: string;
  readonly displayName: string;
  readonly role: SsoRole;
  readonly amr: readonly string[];
  readonly previousRole: SsoRole | undefined;
}

export type SsoOutcome =
  | ({ readonly kind: 'signed-in' } & SsoAccount)
  | ({ readonly kind: 'totp-required'; readonly totpEnrolled: boolean } & SsoAccount)
  | { readonly kind: 'refused'; readonly error: EdgeError };

export interface SsoSignInOptions {
  readonly relyingParty: OidcRelyingParty;
  readonly roleMapping: readonly RoleMappingEntry[];
  readonly mfa: MfaClaimPolicy;
  readonly accounts: IdpAccountStore;
  readonly audit: AuditSink;
  readonly logger: Logger;
}

export class SsoSignIn {
  readonly #o: SsoSignInOptions;

  constructor(options: SsoSignInOptions) {
    this.#o = options;
  }

  get relyingParty(): OidcRelyingParty {
    return this.#o.relyingParty;
  }

  begin(): Promise<{ authorizationUrl: string; transaction: string }> {
    return this.#o.relyingParty.beginSignIn();
  }

  /** Never throws: every way it can end is an outcome, audited. */
  async complete(query: URLSearchParams, transaction: string | undefined, sourceAddress: string): Promise<SsoOutcome> {
    let identity: OidcIdentity;
    try {
      identity = await this.#o.relyingParty.completeSignIn(query, transaction);
    } catch (err) {
      const error = isEdgeError(err)
        ? err
        : new EdgeError('EDGE_OIDC_RESPONSE_INVALID', 'the sign-in could not be completed', { cause: err });
      const refusedUser = error.code === 'EDGE_OIDC_SIGN_IN_REFUSED';
      const check = error.detail?.['check'] ?? error.detail?.['reason'];
      this.#record(
        refusedUser ? 'sso.sign-in-refused' : 'sso.sign-in-failed',
        'unknown',
        sourceAddress,
        `${error.code}${check === undefined ? '' : ` ${String(check)}`}: ${error.message}`,
      );
      this.#o.logger.warn('sso.sign-in-failed', {
        code: error.code,
        check: check === undefined ? undefined : String(check),
        sourceAddress,
      });
      return { kind: 'refused', error };
    }
    const decision = decideSsoAccess(identity, this.#o.roleMapping, this.#o.mfa);
    if (!decision.allowed) return this.#refuse(identity, sourceAddress, decision.reason, decision.message);
    const account = await this.#o.accounts.upsertIdpAccount({
      issuer: identity.issuer,
      subject: identity.subject,
      username: identity.username,
      displayName: identity.displayName,
      role: decision.role,
      at: Date.now(),
    });
    if (!account.ok) {
      return this.#refuse(
        identity,
        sourceAddress,
        'username-taken',
        `the user name "${identity.username}" belongs to another account on the box (a local account, or another IdP identity): rename that account, or choose another admin.oidc.usernameClaim`,
      );
    }
    if (!account.active) {
      return this.#refuse(
        identity,
        sourceAddress,
        'account-disabled',
        `the account "${account.username}" is disabled on the box: an admin enables it`,
      );
    }
    if (account.previousRole !== undefined) {
      this.#o.audit.record(
        securityAlert(
          'access.role-changed',
          [{ kind: 'user', id: account.username, address: sourceAddress, requestor: true }],
          `${account.previousRole} → ${decision.role}: the groups at the identity provider changed (group ${decision.group})`,
        ),
      );
    }
    const mfa = decision.mfaAtIdp ? `mfa ${decision.mfaEvidence}` : 'mfa box TOTP required';
    this.#record(
      'sso.sign-in',
      account.username,
      sourceAddress,
      `issuer ${identity.issuer}; role ${decision.role} via group ${decision.group}; ${mfa}`,
    );
    this.#o.logger.info('sso.signed-in', { user: account.username, role: decision.role, mfaAtIdp: decision.mfaAtIdp, sourceAddress });
    const signedIn: SsoAccount = {
      username: account.username,
      displayName: identity.displayName,
      role: decision.role,
      // RFC 8176: `mfa` stands for the IdP's second factor in the session's amr (the IdP's own values are kept).
      amr: decision.mfaAtIdp ? [...new Set([...identity.amr, 'mfa'])] : identity.amr,
      previousRole: account.previousRole,
    };
    if (!decision.mfaAtIdp) return { kind: 'totp-required', totpEnrolled: account.totpEnrolled, ...signedIn };
    return { kind: 'signed-in', ...signedIn };
  }

  #refuse(identity: OidcIdentity, sourceAddress: string, reason: string, message: string): SsoOutcome {
    this.#record('sso.sign-in-refused', identity.username, sourceAddress, `${reason}; issuer ${identity.issuer}`);
    this.#o.logger.warn('sso.sign-in-refused', { reason, sourceAddress });
    return { kind: 'refused', error: new EdgeError('EDGE_OIDC_SIGN_IN_REFUSED', message, { detail: { reason } }) };
  }

  #record(type: 'sso.sign-in' | 'sso.sign-in-failed' | 'sso.sign-in-refused', user: string, address: string, detail: string): void {
    this.#o.audit.record(
      auditEvent(type, {
        at: Date.now(),
        participants: [{ kind: 'user', id: user, address, requestor: true }],
        detail: detail.slice(0, 400),
      }),
    );
  }
}
