// The relying party against a real OpenID Provider (oidc-provider over HTTPS on loopback): the whole
// authorization code flow with PKCE, and every ID token check that matters refusing a token that fails it.
import test from 'ava';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { isEdgeError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import { startTestIdp, walkRedirects, type TestIdp } from '../../test/support/oidc-idp.ts';
import { freePort } from '../../test/support/processes.ts';
import { clientAssertionKey, OidcRelyingParty, type OidcRelyingPartyOptions } from './oidc-relying-party.ts';
import { PkiBuilder } from '../../test/support/test-pki.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REDIRECT = 'https://edge.test:8443/api/v1/auth/oidc/callback';
const CLIENT = { clientId: 'edge-box', clientSecret: 'a-client-secret-of-the-test', redirectUris: [REDIRECT] };
const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEY_CLIENT = {
  clientId: 'edge-box-with-key',
  publicJwk: {
    ...clientKey.publicKey.export({ format: 'jwk' }),
    kid: clientAssertionKey(clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()).kid,
    alg: 'ES256',
    use: 'sig',
  },
  redirectUris: [REDIRECT],
};

let idp: TestIdp;

test.before(async () => {
  idp = await startTestIdp([CLIENT, KEY_CLIENT]);
  idp.accounts.set('alice', {
    claims: { preferred_username: 'alice', name: 'Alice Admin', groups: ['edge-admins', 'staff'] },
    amr: ['pwd', 'mfa'],
  });
  idp.accounts.set('bob', {
    claims: { preferred_username: 'bob', name: 'Bob Viewer', groups: 'edge-viewers' },
    amr: ['pwd'],
    acr: 'urn:test:loa:1',
  });
});

test.after.always(async () => {
  await idp?.stop();
});

function relyingParty(overrides: Partial<OidcRelyingPartyOptions> = {}): OidcRelyingParty {
  return new OidcRelyingParty({
    issuer: idp.issuer,
    clientId: CLIENT.clientId,
    clientAuth: { secret: CLIENT.clientSecret },
    ca: idp.caPem,
    scopes: ['openid', 'profile', 'groups'],
    redirectUri: REDIRECT,
    claims: { username: 'preferred_username', displayName: 'name', groups: 'groups' },
    requestTimeoutMs: 5_000,
    maxResponseBytes: 262_144,
    signInTimeoutMs: 600_000,
    logger: silentLogger,
    ...overrides,
  });
}

async function signIn(rp: OidcRelyingParty, account: string) {
  idp.nextLogin = account;
  const { authorizationUrl, transaction } = await rp.beginSignIn();
  const walk = await walkRedirects(authorizationUrl, REDIRECT, idp.caPem);
  if (walk.callbackUrl === undefined) throw new Error(`the IdP did not redirect back (HTTP ${walk.lastStatus})`);
  return { callback: walk.callbackUrl, transaction, authorizationUrl };
}

test.serial('a sign-in through the IdP yields the verified identity, groups and amr', async (t) => {
  const rp = relyingParty();
  try {
    const { callback, transaction, authorizationUrl } = await signIn(rp, 'alice');
    const asked = new URL(authorizationUrl).searchParams;
    t.is(asked.get('code_challenge_method'), 'S256');
    t.truthy(asked.get('nonce'));
    t.truthy(asked.get('state'));
    const redeemStarted = performance.now();
    const identity = await rp.completeSignIn(callback.searchParams, transaction);
    t.log(`token request + ID token checks (first: key set fetched too): ${(performance.now() - redeemStarted).toFixed(1)} ms`);
    t.like(identity, { issuer: idp.issuer, subject: 'alice', username: 'alice', displayName: 'Alice Admin' });
    t.deepEqual(identity.groups, ['edge-admins', 'staff']);
    t.deepEqual(identity.amr, ['pwd', 'mfa']);
    t.is(rp.state, 'ready');

    const bob = await signIn(rp, 'bob');
    const again = performance.now();
    const b = await rp.completeSignIn(bob.callback.searchParams, bob.transaction);
    t.log(`token request + ID token checks (key set cached): ${(performance.now() - again).toFixed(1)} ms`);
    t.deepEqual(b.groups, ['edge-viewers'], 'a single group string is one group');
    t.is(b.acr, 'urn:test:loa:1');
  } finally {
    await rp.stop();
  }
});

async function refusal(t: import('ava').ExecutionContext, tamper: (token: string) => string) {
  const rp = relyingParty();
  try {
    const { callback, transaction } = await signIn(rp, 'alice');
    idp.tamperIdToken = tamper;
    const err = await t.throwsAsync(rp.completeSignIn(callback.searchParams, transaction));
    t.true(isEdgeError(err, 'EDGE_OIDC_RESPONSE_INVALID'), String(err));
    t.false(/eyJ/.test(err?.message ?? ''), 'no token in the message');
    return err!;
  } finally {
    idp.tamperIdToken = undefined;
    await rp.stop();
  }
}

test.serial('an ID token altered after signing is refused (signature)', async (t) => {
  const err = await refusal(t, (token) => idp.corrupt(token, (p) => ({ ...p, groups: ['edge-admins'], sub: 'mallory' })));
  t.regex(err.message, /signature/i);
});

test.serial('an ID token for another client is refused (audience), even signed by the IdP', async (t) => {
  const err = await refusal(t, (token) => idp.resign(token, (p) => ({ ...p, aud: 'another-client', azp: 'another-client' })));
  t.regex(err.message, /aud/);
});

test.serial('an expired ID token is refused', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const err = await refusal(t, (token) => idp.resign(token, (p) => ({ ...p, iat: now - 7200, exp: now - 3600 })));
  t.regex(err.message, /exp/);
});

test.serial('an ID token with another nonce (replayed from another sign-in) is refused', async (t) => {
  const err = await refusal(t, (token) => idp.resign(token, (p) => ({ ...p, nonce: 'a-nonce-of-another-sign-in' })));
  t.regex(err.message, /nonce/);
});

test.serial('an ID token from another issuer is refused', async (t) => {
  const err = await refusal(t, (token) => idp.resign(token, (p) => ({ ...p, iss: 'https://evil.test' })));
  t.regex(err.message, /iss/);
});

test.serial('a callback without the pending sign-in of this browser is refused (login CSRF), and a code is redeemed once', async (t) => {
  const rp = relyingParty();
  try {
    const { callback, transaction } = await signIn(rp, 'alice');
    const other = await rp.beginSignIn();
    await t.throwsAsync(rp.completeSignIn(callback.searchParams, undefined), { message: /no sign-in is pending/ });
    const mismatch = await t.throwsAsync(rp.completeSignIn(callback.searchParams, other.transaction));
    t.true(isEdgeError(mismatch, 'EDGE_OIDC_RESPONSE_INVALID'), String(mismatch));
    await rp.completeSignIn(callback.searchParams, transaction);
    const again = await t.throwsAsync(rp.completeSignIn(callback.searchParams, transaction));
    t.true(isEdgeError(again, 'EDGE_OIDC_RESPONSE_INVALID'), String(again));
  } finally {
    await rp.stop();
  }
});

test.serial('a pending sign-in expires after signInTimeoutMs', async (t) => {
  const rp = relyingParty({ signInTimeoutMs: 30_000 });
  try {
    const { callback, transaction } = await signIn(rp, 'alice');
    await t.throwsAsync(rp.completeSignIn(callback.searchParams, transaction, Date.now() + 31_000), { message: /no sign-in is pending/ });
  } finally {
    await rp.stop();
  }
});

test.serial('an IdP refusal (error=access_denied) is reported without the IdP text', async (t) => {
  const rp = relyingParty();
  try {
    const { callback, transaction } = await signIn(rp, 'nobody');
    t.is(callback.searchParams.get('error'), 'access_denied');
    const err = await t.throwsAsync(rp.completeSignIn(callback.searchParams, transaction));
    t.true(isEdgeError(err, 'EDGE_OIDC_RESPONSE_INVALID'));
    t.notRegex(err!.message, /no such test account/);
  } finally {
    await rp.stop();
  }
});

test('an unreachable IdP makes sign-in unavailable quickly, and discovery keeps retrying', async (t) => {
  const port = await freePort();
  const rp = relyingParty({ issuer: `https://127.0.0.1:${port}`, requestTimeoutMs: 1_000, retryMs: 200 });
  try {
    rp.start();
    const started = Date.now();
    const err = await t.throwsAsync(rp.beginSignIn());
    t.true(isEdgeError(err, 'EDGE_OIDC_UNAVAILABLE'), String(err));
    t.true(Date.now() - started < 5_000);
    t.is(rp.state, 'unreachable');
  } finally {
    await rp.stop();
  }
});

test("the IdP's certificate is verified: without its CA the IdP is unavailable", async (t) => {
  const rp = relyingParty({ ca: undefined });
  try {
    const err = await t.throwsAsync(rp.beginSignIn());
    t.true(isEdgeError(err, 'EDGE_OIDC_UNAVAILABLE'), String(err));
  } finally {
    await rp.stop();
  }
});

test('an IdP that answers discovery with too much is unavailable, not a memory sink', async (t) => {
  const pki = new PkiBuilder(mkdtempSync(join(tmpdir(), 'edge-bigidp-')));
  pki.ca('ca');
  const leaf = pki.leaf('big', 'ca', 'big.test', 'serverAuth', 'IP:127.0.0.1');
  const big = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"issuer":"x","pad":"${'a'.repeat(2_000_000)}"}`);
  });
  await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
  const rp = relyingParty({ issuer: `https://127.0.0.1:${(big.address() as AddressInfo).port}`, ca: readFileSync(pki.cert('ca'), 'utf8') });
  try {
    const err = await t.throwsAsync(rp.beginSignIn());
    t.true(isEdgeError(err, 'EDGE_OIDC_UNAVAILABLE'), String(err));
  } finally {
    await rp.stop();
    big.closeAllConnections();
    big.close();
  }
});

test('an IdP that goes away after discovery fails the sign-in as unavailable, not as a bad answer', async (t) => {
  const gone = await startTestIdp([CLIENT]);
  gone.accounts.set('alice', { claims: { preferred_username: 'alice', groups: ['g'] }, amr: ['mfa'] });
  gone.nextLogin = 'alice';
  const rp = relyingParty({ issuer: gone.issuer, ca: gone.caPem, requestTimeoutMs: 2_000 });
  try {
    const { authorizationUrl, transaction } = await rp.beginSignIn();
    const walk = await walkRedirects(authorizationUrl, REDIRECT, gone.caPem);
    await gone.stop();
    const err = await t.throwsAsync(rp.completeSignIn(walk.callbackUrl!.searchParams, transaction));
    t.true(isEdgeError(err, 'EDGE_OIDC_UNAVAILABLE'), String(err));
  } finally {
    await rp.stop();
  }
});

test.serial('private_key_jwt: the box signs a client assertion with its key instead of sending a secret', async (t) => {
  const pem = clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const rp = relyingParty({ clientId: KEY_CLIENT.clientId, clientAuth: { privateKeyPem: pem } });
  try {
    const { callback, transaction } = await signIn(rp, 'alice');
    t.like(await rp.completeSignIn(callback.searchParams, transaction), { subject: 'alice' });
    // The same client with a secret it does not have is refused by the IdP.
    const wrong = relyingParty({ clientId: KEY_CLIENT.clientId, clientAuth: { secret: 'guess' } });
    try {
      const second = await signIn(wrong, 'alice');
      const err = await t.throwsAsync(wrong.completeSignIn(second.callback.searchParams, second.transaction));
      t.true(isEdgeError(err, 'EDGE_OIDC_RESPONSE_INVALID'), String(err));
      t.regex(err!.message, /invalid_client/);
    } finally {
      await wrong.stop();
    }
  } finally {
    await rp.stop();
  }
});

test('the client assertion key: P-256 or RSA only, kid is the RFC 7638 thumbprint', (t) => {
  const pem = clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const { kid } = clientAssertionKey(pem);
  const jwk = clientKey.publicKey.export({ format: 'jwk' });
  const expected = createHash('sha256').update(`{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`).digest('base64url');
  t.is(kid, expected);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  t.throws(() => clientAssertionKey(p384), { message: /P-256 or an RSA/ });
});
