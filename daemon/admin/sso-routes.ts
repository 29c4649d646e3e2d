// The admin listener's single sign-on routes. `start` sends the browser to the IdP with the pending
// sign-in sealed in a `__Host-` cookie; `callback` is the redirect URI the IdP sends it back to. The
// cookie is SameSite=Lax because the callback is a top-level navigation from the IdP's site (a Strict
// cookie would not be sent on it); it grants nothing by itself: it only carries the state, nonce and
// PKCE verifier of one sign-in, sealed. Both answer with redirects, since a browser walks them.
import type { ControlResponse, ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { AccessControl } from './access-control.ts';
import type { SsoSignIn } from './sso-sign-in.ts';

export const OIDC_TRANSACTION_COOKIE = '__Host-edge-oidc';
export const OIDC_CALLBACK_PATH = '/v1/session/oidc/callback';
export const OIDC_START_PATH = '/v1/session/oidc/start';

/** The redirect URI the IdP must have registered for this box: the first admin host name and the listener's port. */
export function oidcRedirectUri(hostNames: readonly string[], listenHost: string, port: number): string {
  const host = hostNames[0] ?? listenHost;
  const authority = host.includes(':') ? `[${host}]` : host;
  return `https://${authority.toLowerCase()}${port === 443 ? '' : `:${port}`}/api${OIDC_CALLBACK_PATH}`;
}

/**
 * Mounted whether or not `admin.oidc` is configured (so the route table is the same on every box);
 * without it (`sso` undefined) both answer EDGE_OIDC_NOT_CONFIGURED.
 */
export function ssoRoutes(sso: SsoSignIn | undefined, access: AccessControl, signInTimeoutMs: number): ControlRoute[] {
  const configured = (): SsoSignIn => {
    if (sso === undefined) {
      throw new EdgeError(
        'EDGE_OIDC_NOT_CONFIGURED',
        'single sign-on is not configured on this box (admin.oidc): sign in with a local account',
      );
    }
    return sso;
  };
  return [
    {
      method: 'GET',
      path: OIDC_START_PATH,
      permission: 'public',
      adminOnly: true,
      handle: async () => {
        const { authorizationUrl, transaction } = await configured().begin();
        return {
          status: 303,
          body: { redirect: authorizationUrl },
          headers: {
            location: authorizationUrl,
            'set-cookie': `${OIDC_TRANSACTION_COOKIE}=${transaction}; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=${Math.floor(signInTimeoutMs / 1000)}`,
          },
        };
      },
    },
    {
      method: 'GET',
      path: OIDC_CALLBACK_PATH,
      permission: 'public',
      adminOnly: true,
      handle: async (req): Promise<ControlResponse> => {
        const address = req.caller?.address ?? 'unknown';
        const outcome = await configured().complete(req.query, req.cookie?.(OIDC_TRANSACTION_COOKIE), address);
        if (outcome.kind === 'refused') {
          const which = outcome.error.code === 'EDGE_OIDC_SIGN_IN_REFUSED' ? 'refused' : 'failed';
          return {
            status: 303,
            body: { signedIn: false, error: { code: outcome.error.code, message: outcome.error.message } },
            headers: { location: `/?sso=${which}&code=${outcome.error.code}` },
          };
        }
        if (outcome.previousRole !== undefined) {
          // A role changed at the IdP: every session of the old role ends (sign-out everywhere).
          access.endSessionsOf(outcome.username, `role changed from ${outcome.previousRole} to ${outcome.role} at the identity provider`);
        }
        const stage = outcome.kind === 'signed-in' ? 'full' : outcome.totpEnrolled ? 'mfa' : 'enrol-mfa';
        const { cookie, session } = access.establishSession(
          { username: outcome.username, displayName: outcome.displayName, role: outcome.role, epoch: 0 },
          { method: 'oidc', amr: outcome.amr, address, stage },
        );
        return {
          status: 303,
          body: { signedIn: true, username: session.username, stage: session.stage },
          headers: { location: '/', 'set-cookie': cookie },
        };
      },
    },
  ];
}
