// What a verified IdP identity may be on the box: the role its groups map to (admin.oidc.roleMapping,
// first listed mapping the user's groups hold wins, so the operator orders them), and whether the
// IdP's own MFA claim counts, so the box asks for its own TOTP only when it does not.
import type { OidcIdentity } from './oidc-relying-party.ts';

export type SsoRole = 'viewer' | 'operator' | 'admin' | 'auditor';

export interface RoleMappingEntry {
  readonly group: string;
  readonly role: SsoRole;
}

export interface MfaClaimPolicy {
  /** RFC 8176 `amr` values that show a second factor was used at the IdP. */
  readonly amrValues: readonly string[];
  /** `acr` values that show the same. */
  readonly acrValues: readonly string[];
}

export type SsoDecision =
  | {
      readonly allowed: true;
      readonly role: SsoRole;
      readonly group: string;
      readonly mfaAtIdp: boolean;
      readonly mfaEvidence: string | undefined;
    }
  | { readonly allowed: false; readonly reason: 'no-mapped-group'; readonly message: string };

export function decideSsoAccess(identity: OidcIdentity, mapping: readonly RoleMappingEntry[], mfa: MfaClaimPolicy): SsoDecision {
  const groups = new Set(identity.groups);
  const entry = mapping.find((m) => groups.has(m.group));
  if (entry === undefined) {
    return {
      allowed: false,
      reason: 'no-mapped-group',
      message:
        identity.groups.length === 0
          ? 'the identity provider sent no groups for this user: add the user to a group listed in admin.oidc.roleMapping (and check admin.oidc.groupsClaim)'
          : "none of the user's groups is listed in admin.oidc.roleMapping: ask the box's administrator to map one, or the IdP team to add the user to a mapped group",
    };
  }
  const amr = identity.amr.find((v) => mfa.amrValues.includes(v));
  const acr = identity.acr !== undefined && mfa.acrValues.includes(identity.acr) ? identity.acr : undefined;
  const evidence = amr !== undefined ? `amr ${amr}` : acr !== undefined ? `acr ${acr}` : undefined;
  return { allowed: true, role: entry.role, group: entry.group, mfaAtIdp: evidence !== undefined, mfaEvidence: evidence };
}
