// A real OpenID Provider for the SSO tests: panva's oidc-provider (a certified implementation) on
// 127.0.0.1 over HTTPS with a certificate from a throwaway test CA. Its login page is replaced by one
// that signs in whichever account the test names next (with the amr/acr the test gives it), so a plain
// HTTP client can walk the redirects. `tamperIdToken` plays a man-in-the-middle on the token response:
// the tests use it to hand the box an altered or re-signed ID token.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider from 'oidc-provider';
import { Agent, request } from 'undici';
import { PkiBuilder } from './test-pki.ts';

export interface IdpAccount {
  readonly claims: Record<string, unknown>;
  readonly amr?: readonly string[];
  readonly acr?: string;
}

export interface IdpClient {
  readonly clientId: string;
  /** A secret (client_secret_basic), or the public JWK of the client's key (private_key_jwt). */
  readonly clientSecret?: string;
  readonly publicJwk?: Record<string, unknown>;
  readonly redirectUris: readonly string[];
}

export interface TestIdp {
  readonly issuer: string;
  readonly port: number;
  /** PEM of the CA that issued the IdP's certificate. */
  readonly caPem: string;
  readonly caFile: string;
  readonly accounts: Map<string, IdpAccount>;
  /** The account the next login interaction signs in. */
  nextLogin: string | undefined;
  /** Rewrites the ID token of the next token responses (undefined = leave it alone). */
  tamperIdToken: ((idToken: string) => string) | undefined;
  /** Signs a JWS with the IdP's own key (a token that passes the signature check, with other claims). */
  resign(idToken: string, change: (payload: Record<string, unknown>) => Record<string, unknown>): string;
  /** Flips a character of the payload: the signature no longer matches. */
  corrupt(idToken: string, change: (payload: Record<string, unknown>) => Record<string, unknown>): string;
  stop(): Promise<void>;
}

export async function startTestIdp(clients: readonly IdpClient[]): Promise<TestIdp> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-idp-'));
  const pki = new PkiBuilder(dir);
  const caFile = pki.ca('idp-ca');
  const leaf = pki.leaf('idp', 'idp-ca', 'idp.test', 'serverAuth', 'IP:127.0.0.1,DNS:localhost');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

  let handler: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined;
  const server: Server = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
    if (handler === undefined) res.writeHead(503).end();
    else handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `https://127.0.0.1:${port}`;

  const accounts = new Map<string, IdpAccount>();
  const idp: TestIdp = {
    issuer,
    port,
    caPem: readFileSync(caFile, 'utf8'),
    caFile,
    accounts,
    nextLogin: undefined,
    tamperIdToken: undefined,
    resign: (token, change) => resignJws(token, change, privateKey),
    corrupt: (token, change) => {
      const [h, p, s] = token.split('.') as [string, string, string];
      const payload = change(JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
      return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.clientId,
      ...(c.publicJwk === undefined
        ? { client_secret: c.clientSecret }
        : { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [c.publicJwk] } }),
      redirect_uris: [...c.redirectUris],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [createHash('sha256').update(dir).digest('hex')] },
    claims: {
      sid: null,
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, id) {
      const account = accounts.get(id);
      if (account === undefined) return undefined;
      return { accountId: id, claims: () => ({ sub: id, ...account.claims }) };
    },
    // First-party client: the grant covers whatever was asked, so no consent page stands in the way.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope(String(ctx.oidc.params?.['scope'] ?? 'openid'));
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', () => {});
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { id_token?: unknown } | undefined;
    if (ctx.path === '/token' && idp.tamperIdToken !== undefined && typeof body?.id_token === 'string') {
      body.id_token = idp.tamperIdToken(body.id_token);
    }
  });
  const callback = provider.callback();
  handler = (req, res) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    if (m === null) {
      callback(req, res);
      return;
    }
    void (async () => {
      try {
        await provider.interactionDetails(req, res);
        const accountId = idp.nextLogin;
        const account = accountId === undefined ? undefined : accounts.get(accountId);
        if (accountId === undefined || account === undefined) {
          await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'no such test account' });
          return;
        }
        await provider.interactionFinished(
          req,
          res,
          {
            login: {
              accountId,
              ...(account.amr === undefined ? {} : { amr: [...account.amr] }),
              ...(account.acr === undefined ? {} : { acr: account.acr }),
            },
          },
          { mergeWithLastSubmission: false },
        );
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    })();
  };
  return idp;
}

function resignJws(token: string, change: (payload: Record<string, unknown>) => Record<string, unknown>, key: KeyObject): string {
  const [h, p] = token.split('.') as [string, string, string];
  const payload = change(JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
  const input = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** Where a redirect chain ended: the URL at `stopAt` (not fetched), or the last response that did not redirect. */
export interface BrowserWalk {
  readonly callbackUrl: URL | undefined;
  readonly lastStatus: number;
}

/**
 * Walks the browser's side of the flow: GET `url`, follow redirects with a cookie jar, stop at the
 * first URL that starts with `stopAt` (the box's callback) without fetching it.
 */
export async function walkRedirects(url: string, stopAt: string, caPem: string, jar = new Map<string, string>()): Promise<BrowserWalk> {
  const agent = new Agent({ connect: { ca: caPem, timeout: 10_000 }, headersTimeout: 10_000, bodyTimeout: 10_000 });
  try {
    let next = new URL(url);
    for (let hop = 0; hop < 12; hop++) {
      if (next.href.startsWith(stopAt)) return { callbackUrl: next, lastStatus: 302 };
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await request(next, { method: 'GET', dispatcher: agent, headers: cookie === '' ? {} : { cookie } });
      await res.body.text();
      const setCookie = res.headers['set-cookie'];
      for (const line of Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie]) {
        const [pair = ''] = line.split(';');
        const eq = pair.indexOf('=');
        if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      const location = res.headers['location'];
      if (res.statusCode < 300 || res.statusCode >= 400 || typeof location !== 'string')
        return { callbackUrl: undefined, lastStatus: res.statusCode };
      next = new URL(location, next);
    }
    throw new Error(`more than 12 redirects from ${url}`);
  } finally {
    await agent.close();
  }
}
