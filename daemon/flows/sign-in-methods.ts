// The sign-in methods beyond the local password, composed onto the admin listener once it listens (the
// redirect URI and the WebAuthn origins need its port): single sign-on through the hospital's IdP when
// `admin.oidc` is configured, and WebAuthn second factors when `admin.hostNames` holds a DNS name. The
// IdP is discovered in the background: an unreachable IdP never delays or fails the start.
import { readFile } from 'node:fs/promises';
import type { AccessControl } from '../admin/access-control.ts';
import type { AdminListener } from '../admin/admin-listener.ts';
import { IdpAccounts } from '../admin/idp-accounts.ts';
import { OidcRelyingParty } from '../admin/oidc-relying-party.ts';
import { oidcRedirectUri, ssoRoutes } from '../admin/sso-routes.ts';
import { SsoSignIn } from '../admin/sso-sign-in.ts';
import { WebAuthnRelyingParty, webauthnRpId } from '../admin/webauthn-relying-party.ts';
import { webauthnRoutes } from '../admin/webauthn-routes.ts';
import { EdgeError } from '../core/errors.ts';
import type { FlowContext } from './flow-context.ts';

export interface SignInMethods {
  /** Mounts the routes; `port` is the admin listener's. */
  start(port: number): Promise<void>;
  stop(): Promise<void>;
}

export function signInMethods(
  ctx: FlowContext,
  listener: AdminListener,
  access: AccessControl,
  hostNames: readonly string[],
): SignInMethods {
  const admin = ctx.config.admin!;
  const logger = ctx.logger.child({ component: 'sign-in' });
  let relyingParty: OidcRelyingParty | undefined;
  let mounted = false;
  return {
    async start(port) {
      if (mounted) return;
      mounted = true;
      const webauthn =
        webauthnRpId(hostNames) === undefined
          ? undefined
          : new WebAuthnRelyingParty({ hostNames, port, rpName: `Imaging Edge ${ctx.config.site.name}` });
      listener.add(...webauthnRoutes(webauthn, access, ctx.audit, hostNames));
      const oidc = admin.oidc;
      if (oidc === undefined) {
        listener.add(...ssoRoutes(undefined, access, 0));
        return;
      }
      let clientAuth: { secret: string } | { privateKeyPem: string };
      let ca: string | undefined;
      try {
        clientAuth =
          oidc.clientKeyFile !== undefined
            ? { privateKeyPem: await readFile(oidc.clientKeyFile, 'utf8') }
            : { secret: (await readFile(oidc.clientSecretFile!, 'utf8')).trim() };
        ca = oidc.caFile === undefined ? undefined : await readFile(oidc.caFile, 'utf8');
      } catch (cause) {
        throw new EdgeError(
          'EDGE_TLS_MATERIAL',
          `cannot read admin.oidc.clientSecretFile, clientKeyFile or caFile: ${(cause as Error).message}`,
          { cause },
        );
      }
      const redirectUri = oidcRedirectUri(admin.hostNames ?? [], admin.listen.host, port);
      relyingParty = new OidcRelyingParty({
        issuer: oidc.issuer,
        clientId: oidc.clientId,
        clientAuth,
        ...(ca === undefined ? {} : { ca }),
        scopes: oidc.scopes,
        redirectUri,
        claims: { username: oidc.usernameClaim, displayName: oidc.displayNameClaim, groups: oidc.groupsClaim },
        requestTimeoutMs: oidc.requestTimeoutMs,
        maxResponseBytes: oidc.maxResponseBytes,
        signInTimeoutMs: oidc.signInTimeoutMs,
        logger,
      });
      const sso = new SsoSignIn({
        relyingParty,
        roleMapping: oidc.roleMapping,
        mfa: oidc.mfa,
        accounts: new IdpAccounts(access.users),
        audit: ctx.audit,
        logger,
      });
      listener.add(...ssoRoutes(sso, access, oidc.signInTimeoutMs));
      logger.info('sso.configured', { issuer: oidc.issuer, redirectUri });
      relyingParty.start();
    },
    async stop() {
      await relyingParty?.stop();
    },
  };
}
