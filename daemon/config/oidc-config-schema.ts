// Config of single sign-on with the hospital's identity provider (OpenID Connect) under `admin.oidc`.
// Part of the one schema (edge-config-schema.ts). The redirect URI is not configured: it is derived
// from the admin listener's host name, so it cannot disagree with the address users reach the box on.
import { IssueCode, array, childPath, filePath, integer, object, oneOf, optional, refine, string, withDefault } from './schema-kit.ts';
import { certificateFileProblem } from './tls-material.ts';

/** RFC 8176 Authentication Method Reference values an IdP sends when more than one factor was used. */
export const DEFAULT_MFA_AMR_VALUES = ['mfa'] as const;

export const OIDC_ROLES = ['viewer', 'operator', 'admin', 'auditor'] as const;

function issuerProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL such as https://login.microsoftonline.com/TENANT/v2.0';
  }
  if (url.protocol !== 'https:') return 'must be an https:// URL (the IdP is only trusted over TLS)';
  if (url.search !== '' || url.hash !== '') return 'an issuer URL has no query or fragment';
  return undefined;
}

function claimNameProblem(value: string): string | undefined {
  return /^[A-Za-z0-9_:./-]{1,128}$/.test(value) ? undefined : 'must be a claim name (letters, digits, "_", ":", ".", "/", "-")';
}

function scopeProblem(value: string): string | undefined {
  return /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(value) ? undefined : 'must be a scope token (RFC 6749 3.3: no spaces or quotes)';
}

const claimName = (doc: string) => string({ doc, maxLength: 128, check: claimNameProblem, label: 'claim name' });

export const oidcSchema = refine(
  object(
    {
      issuer: string({
        doc: "the IdP's issuer URL; its `/.well-known/openid-configuration` is read at start and retried while it fails",
        maxLength: 512,
        check: issuerProblem,
        label: 'https URL',
      }),
      clientId: string({ doc: 'the client id the IdP registered for this box', maxLength: 256 }),
      clientSecretFile: optional(
        filePath({
          doc: 'file holding the client secret (mode 0600); sent to the token endpoint only (client_secret_basic, or _post when the IdP offers only that)',
          mustExist: 'file',
          secret: true,
        }),
      ),
      clientKeyFile: optional(
        filePath({
          doc: "instead of a secret: a PEM private key (PKCS#8, EC P-256 or RSA, mode 0600) that signs a client assertion (private_key_jwt, RFC 7523); its `kid` is the key's JWK thumbprint (RFC 7638); register the public key at the IdP",
          mustExist: 'file',
          secret: true,
        }),
      ),
      caFile: optional(
        filePath({
          doc: "PEM CA(s) the IdP's TLS certificate must chain to (omitted = the public CAs Node ships)",
          mustExist: 'file',
          contents: certificateFileProblem,
        }),
      ),
      scopes: withDefault(
        array(string({ doc: 'a scope', maxLength: 128, check: scopeProblem, label: 'scope' }), {
          doc: 'scopes asked for (`openid` is required)',
          minItems: 1,
          maxItems: 32,
          unique: [{ key: (s) => s, what: 'scope' }],
        }),
        ['openid', 'profile', 'email'],
      ),
      usernameClaim: withDefault(
        claimName('ID token claim that names the user on the box (the identity is issuer + `sub`)'),
        'preferred_username',
      ),
      displayNameClaim: withDefault(claimName('ID token claim with the display name'), 'name'),
      groupsClaim: withDefault(
        claimName('ID token claim listing the groups (Entra ID: `groups` or `roles`; Keycloak: the group mapper)'),
        'groups',
      ),
      roleMapping: array(
        object(
          {
            group: string({ doc: 'a group (or app role) value as the IdP sends it in the groups claim', maxLength: 256 }),
            role: oneOf(OIDC_ROLES, { doc: 'the role members get on the box' }),
          },
          { doc: 'one group → role' },
        ),
        {
          doc: 'groups that may sign in, and their role; a user in none of them is refused; in several, the first listed wins',
          minItems: 1,
          maxItems: 256,
          unique: [{ key: (m) => m.group, field: 'group', what: 'group' }],
        },
      ),
      mfa: withDefault(
        object(
          {
            amrValues: withDefault(
              array(claimName('an `amr` value'), { doc: '`amr` values (RFC 8176) that show the IdP used a second factor', maxItems: 32 }),
              [...DEFAULT_MFA_AMR_VALUES],
            ),
            acrValues: withDefault(
              array(string({ doc: 'an `acr` value', maxLength: 256 }), {
                doc: '`acr` values that show the IdP used a second factor',
                maxItems: 32,
              }),
              [],
            ),
          },
          { doc: "what in the ID token counts as the IdP's own MFA; without it the box asks for its own TOTP as well" },
        ),
        {},
      ),
      requestTimeoutMs: withDefault(
        integer({ doc: 'give up on one request to the IdP (discovery, keys, token) after (milliseconds)', min: 500, max: 60_000 }),
        10_000,
      ),
      maxResponseBytes: withDefault(
        integer({ doc: 'largest IdP response read (discovery document, key set, token response)', min: 4096, max: 4_194_304 }),
        262_144,
      ),
      signInTimeoutMs: withDefault(
        integer({ doc: 'a sign-in started at the box must come back from the IdP within (milliseconds)', min: 30_000, max: 3_600_000 }),
        600_000,
      ),
    },
    {
      doc: 'single sign-on with the hospital identity provider (OpenID Connect authorization code flow with PKCE); omitted = local accounts only',
    },
  ),
  (oidc, path, ctx) => {
    if ((oidc.clientSecretFile === undefined) === (oidc.clientKeyFile === undefined)) {
      ctx.report(
        'error',
        IssueCode.Required,
        childPath(path, 'clientSecretFile'),
        'give exactly one of clientSecretFile (a client secret) or clientKeyFile (private_key_jwt)',
      );
    }
    if (!oidc.scopes.includes('openid')) {
      ctx.report('error', IssueCode.Required, childPath(path, 'scopes'), 'must include "openid" (without it the IdP issues no ID token)');
    }
  },
);
