// The box as an OpenID Connect relying party (OIDC Core 1.0 §3.1, authorization code flow) through
// openid-client: discovery of the IdP's metadata, an authorization request with PKCE (RFC 7636, S256),
// state and nonce, and the token request whose ID token is checked in full: signature against the IdP's
// key set (non-repudiation checks, not just TLS), iss, aud, azp, exp, iat and nonce. Discovery runs in
// the background and retries while the IdP is unreachable, so a missing IdP never stops the listener or
// local sign-in: it only makes the SSO button answer "unavailable".
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import * as oidc from 'openid-client';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { idpFetch, type IdpFetch } from './oidc-fetch.ts';
import { PendingSignInSealer, type PendingSignIn } from './oidc-transaction.ts';

export interface OidcRelyingPartyOptions {
  readonly issuer: string;
  readonly clientId: string;
  /** How the box proves itself at the token endpoint: a client secret, or a private key (private_key_jwt). Never logged. */
  readonly clientAuth: { readonly secret: string } | { readonly privateKeyPem: string };
  /** PEM; undefined = Node's public CAs. */
  readonly ca?: string;
  readonly scopes: readonly string[];
  /** Derived from the admin listener's host name and port. */
  readonly redirectUri: string;
  readonly claims: { readonly username: string; readonly displayName: string; readonly groups: string };
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signInTimeoutMs: number;
  readonly logger: Logger;
  /** First retry of a failed discovery after this; doubles up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

/** Who the IdP says signed in, from a verified ID token. */
export interface OidcIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly username: string;
  readonly displayName: string;
  readonly groups: readonly string[];
  readonly amr: readonly string[];
  readonly acr: string | undefined;
}

export type OidcProviderState = 'discovering' | 'ready' | 'unreachable' | 'stopped';

/** Query parameters of the authorization response (RFC 6749 4.1.2, RFC 9207 `iss`); nothing else is passed on. */
const RESPONSE_PARAMETERS = ['code', 'state', 'iss', 'error', 'error_description', 'session_state'] as const;
const MAX_CLAIM_CHARS = 256;
const MAX_GROUPS = 1024;

export class OidcRelyingParty {
  readonly #options: OidcRelyingPartyOptions;
  readonly #fetch: IdpFetch;
  readonly #sealer = new PendingSignInSealer();
  #config: oidc.Configuration | undefined;
  #state: OidcProviderState = 'discovering';
  #discovering: Promise<oidc.Configuration | undefined> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs: number;

  constructor(options: OidcRelyingPartyOptions) {
    this.#options = options;
    this.#retryMs = options.retryMs ?? 5_000;
    this.#fetch = idpFetch({
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      timeoutMs: options.requestTimeoutMs,
      maxResponseBytes: options.maxResponseBytes,
    });
  }

  get state(): OidcProviderState {
    return this.#state;
  }

  /** Starts discovery in the background; never throws and never waits for the IdP. */
  start(): void {
    void this.#discover();
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    clearTimeout(this.#retryTimer);
    await this.#discovering;
    await this.#fetch.close();
  }

  /**
   * The IdP's authorization URL to send the browser to, and the sealed pending sign-in for the
   * browser's pre-sign-in cookie. Throws EDGE_OIDC_UNAVAILABLE while the IdP's metadata is unknown.
   */
  async beginSignIn(now = Date.now()): Promise<{ authorizationUrl: string; transaction: string }> {
    const config = await this.#ready();
    const pending: PendingSignIn = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      expiresAt: now + this.#options.signInTimeoutMs,
    };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.#options.redirectUri,
      response_type: 'code',
      scope: this.#options.scopes.join(' '),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    });
    return { authorizationUrl: url.href, transaction: this.#sealer.seal(pending) };
  }

  /**
   * Redeems the authorization response at the token endpoint and returns the verified identity.
   * `query` is the callback's query string; `transaction` the browser's pre-sign-in cookie.
   */
  async completeSignIn(query: URLSearchParams, transaction: string | undefined, now = Date.now()): Promise<OidcIdentity> {
    const pending = this.#sealer.open(transaction, now);
    if (pending === undefined) {
      throw new EdgeError(
        'EDGE_OIDC_RESPONSE_INVALID',
        'no sign-in is pending in this browser (expired, or started elsewhere): start again',
        {
          detail: { check: 'transaction' },
        },
      );
    }
    const idpError = query.get('error');
    if (idpError !== null) {
      // error_description is the IdP's text, sent through the browser: shown neither in logs nor to users.
      throw new EdgeError('EDGE_OIDC_RESPONSE_INVALID', `the identity provider refused the sign-in (${safeToken(idpError)})`, {
        detail: { check: 'authorization-response', idpError: safeToken(idpError) },
      });
    }
    const config = await this.#ready();
    const callback = new URL(this.#options.redirectUri);
    for (const name of RESPONSE_PARAMETERS) {
      const value = query.get(name);
      if (value !== null) callback.searchParams.set(name, value);
    }
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (cause) {
      throw this.#refusal(cause);
    }
    if (claims === undefined)
      throw new EdgeError('EDGE_OIDC_RESPONSE_INVALID', 'the token response holds no ID token', { detail: { check: 'id_token' } });
    return this.#identity(claims);
  }

  #identity(claims: oidc.IDToken): OidcIdentity {
    const names = this.#options.claims;
    const username = stringClaim(claims, names.username) ?? claims.sub;
    if (!/^[^\p{Cc}\s]{1,64}$/u.test(username)) {
      throw new EdgeError(
        'EDGE_OIDC_SIGN_IN_REFUSED',
        `the ID token's "${names.username}" claim is not a usable user name (1–64 characters, no spaces)`,
        {
          detail: { reason: 'username-claim' },
        },
      );
    }
    const rawGroups = claims[names.groups];
    const groups = (Array.isArray(rawGroups) ? rawGroups : typeof rawGroups === 'string' ? [rawGroups] : [])
      .filter((g): g is string => typeof g === 'string' && g.length <= MAX_CLAIM_CHARS)
      .slice(0, MAX_GROUPS);
    const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string').slice(0, 32) : [];
    return {
      issuer: claims.iss,
      subject: claims.sub,
      username,
      displayName: stringClaim(claims, names.displayName) ?? username,
      groups,
      amr,
      acr: typeof claims.acr === 'string' ? claims.acr.slice(0, MAX_CLAIM_CHARS) : undefined,
    };
  }

  /** What went wrong, as one of the box's codes: unreachable (transient) or a failed check (permanent). */
  #refusal(cause: unknown): EdgeError {
    if (isEdgeError(cause)) return cause;
    // openid-client wraps a failed fetch ("something went wrong"): the network's reason is further in.
    const unreachable = networkFailure(cause);
    if (unreachable !== undefined) {
      return new EdgeError('EDGE_OIDC_UNAVAILABLE', `the identity provider's token endpoint cannot be reached (${unreachable})`, {
        cause,
        detail: { check: 'token-request' },
      });
    }
    const check = failedCheck(cause);
    return new EdgeError('EDGE_OIDC_RESPONSE_INVALID', `the identity provider's answer failed a check: ${check.message}`, {
      cause,
      detail: { check: check.code },
    });
  }

  #clientAuthentication(): oidc.ClientAuth {
    const auth = this.#options.clientAuth;
    if ('secret' in auth) return oidc.ClientSecretBasic(auth.secret);
    return oidc.PrivateKeyJwt(clientAssertionKey(auth.privateKeyPem));
  }

  async #ready(): Promise<oidc.Configuration> {
    const config = this.#config ?? (await this.#discover());
    if (config === undefined) {
      throw new EdgeError(
        'EDGE_OIDC_UNAVAILABLE',
        `the identity provider ${this.#options.issuer} cannot be reached: sign in with a local account`,
        {
          detail: { check: 'discovery' },
        },
      );
    }
    return config;
  }

  /** One discovery at a time; on failure, schedule the next with back-off. */
  #discover(): Promise<oidc.Configuration | undefined> {
    if (this.#state === 'stopped') return Promise.resolve(undefined);
    this.#discovering ??= this.#discoverOnce().finally(() => {
      this.#discovering = undefined;
    });
    return this.#discovering;
  }

  async #discoverOnce(): Promise<oidc.Configuration | undefined> {
    const o = this.#options;
    clearTimeout(this.#retryTimer);
    try {
      const timeout = Math.ceil(o.requestTimeoutMs / 1000);
      const config = await oidc.discovery(new URL(o.issuer), o.clientId, undefined, this.#clientAuthentication(), {
        [oidc.customFetch]: this.#fetch,
        timeout,
        execute: [oidc.enableNonRepudiationChecks],
      });
      const supported = config.serverMetadata().token_endpoint_auth_methods_supported;
      if (
        'secret' in o.clientAuth &&
        supported !== undefined &&
        !supported.includes('client_secret_basic') &&
        supported.includes('client_secret_post')
      ) {
        const post = new oidc.Configuration(config.serverMetadata(), o.clientId, undefined, oidc.ClientSecretPost(o.clientAuth.secret));
        post[oidc.customFetch] = this.#fetch;
        post.timeout = timeout;
        oidc.enableNonRepudiationChecks(post);
        this.#config = post;
      } else {
        this.#config = config;
      }
      if (this.#state === 'stopped') return undefined;
      this.#state = 'ready';
      this.#retryMs = o.retryMs ?? 5_000;
      o.logger.info('oidc.discovered', { issuer: o.issuer });
      return this.#config;
    } catch (cause) {
      if (this.#state === 'stopped') return undefined;
      this.#state = 'unreachable';
      const code = (cause as { code?: unknown }).code;
      o.logger.warn('oidc.discovery-failed', {
        issuer: o.issuer,
        code: typeof code === 'string' ? code : 'EDGE_OIDC_UNAVAILABLE',
        reason: cause instanceof Error ? cause.message.slice(0, 200) : String(cause),
        retryInMs: this.#retryMs,
      });
      this.#retryTimer = setTimeout(() => void this.#discover(), this.#retryMs);
      this.#retryTimer.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, o.maxRetryMs ?? 300_000);
      return undefined;
    }
  }
}

/** The client's signing key for private_key_jwt: ES256 for a P-256 key, RS256 for RSA; kid = RFC 7638 thumbprint. */
export function clientAssertionKey(pem: string): oidc.PrivateKey {
  const key = createPrivateKey(pem);
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  let algorithm: { name: 'ECDSA'; namedCurve: 'P-256' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };
  let members: Record<string, unknown>;
  if (key.asymmetricKeyType === 'ec' && jwk.crv === 'P-256') {
    algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
    members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  } else if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) {
    algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  } else {
    throw new EdgeError('EDGE_TLS_MATERIAL', 'admin.oidc.clientKeyFile must hold an EC P-256 or an RSA (2048 bits or more) private key');
  }
  // RFC 7638: the required members in lexicographic order, no whitespace.
  const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url');
  return { key: key.toCryptoKey(algorithm, false, ['sign']) as oidc.CryptoKey, kid };
}

/** The network or TLS reason anywhere in the cause chain (ECONNREFUSED, a timeout, CERT_HAS_EXPIRED), if any. */
function networkFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    if (isEdgeError(e, 'EDGE_OIDC_UNAVAILABLE')) return e.message;
    const code = (e as { code?: unknown }).code;
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return e.name;
    if (
      typeof code === 'string' &&
      /^(UND_ERR|ECONN|ENOTFOUND|EAI_|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|CERT_|UNABLE_|DEPTH_|SELF_SIGNED|ERR_TLS|ERR_SSL)/.test(code)
    ) {
      return code;
    }
  }
  return undefined;
}

/**
 * The innermost check that failed, as oauth4webapi names it ('unexpected JWT "aud" (audience) claim
 * value', 'JWS signature verification failed'); openid-client wraps it in a generic message. The
 * messages and codes hold no token or code, only the name of the check.
 */
function failedCheck(err: unknown): { message: string; code: string } {
  let found: { message: string; code: string } | undefined;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    // The token endpoint's own error code (RFC 6749 5.2: invalid_client, invalid_grant, ...); its
    // error_description is the IdP's free text and is not repeated.
    const challenges = (e as { cause?: unknown }).cause;
    const challenged = Array.isArray(challenges)
      ? (challenges[0] as { parameters?: { error?: unknown } } | undefined)?.parameters?.error
      : undefined;
    const idpError = (e as { error?: unknown }).error ?? challenged;
    if (typeof idpError === 'string') return { message: `the token endpoint answered ${safeToken(idpError)}`, code: safeToken(idpError) };
    if (typeof code === 'string' && code.startsWith('OAUTH_')) found = { message: e.message.slice(0, 200), code };
  }
  if (found !== undefined) return found;
  return { message: err instanceof Error ? err.message.slice(0, 200) : 'unknown', code: 'token-response' };
}

function stringClaim(claims: oidc.IDToken, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' && value !== '' ? value.slice(0, MAX_CLAIM_CHARS) : undefined;
}

/** An OAuth error code (RFC 6749 4.1.2.1 allows %x20-21 / %x23-5B / %x5D-7E) cut to a loggable token. */
function safeToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64) || 'error';
}
