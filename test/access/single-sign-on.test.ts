// Single sign-on end to end: the live daemon's admin listener against a real OpenID Provider
// (oidc-provider over HTTPS on loopback, started here), the browser's side walked by an HTTP client
// that follows the redirects with its cookies. Group → role, an IdP user without the MFA claim held at
// the box's TOTP step, a tampered ID token and a wrong audience refused, a user in no mapped group and
// a user name of a local account refused, every outcome audited without a token or code; then the IdP
// unreachable from the start: the daemon starts, SSO answers unavailable, the local sign-in works.
import test from 'ava';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { totpCode } from '../../daemon/admin/totp.ts';
import { createAdminAccount } from '../../provisioning/admin-account.ts';
import { AdminClient, type AdminResponse } from '../support/admin-client.ts';
import { siteAuditEvents } from '../support/audit-store.ts';
import { startTestIdp, walkRedirects, type TestIdp } from '../support/oidc-idp.ts';
import { freePort } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { withSiteStore } from '../support/site-store.ts';

const CLIENT_ID = 'imaging-edge';
const CLIENT_SECRET = 'client-secret-of-the-sso-test-0123456789';

interface World {
  idp: TestIdp;
  site: Awaited<ReturnType<typeof createSite>>;
  daemon: Daemon;
  client: AdminClient;
  adminPort: number;
  localPassword: string;
  redirectUri: string;
}

let w: World;

test.before(async () => {
  const adminPort = await freePort();
  const redirectUri = `https://localhost:${adminPort}/api/v1/session/oidc/callback`;
  const idp = await startTestIdp([{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [redirectUri] }]);
  idp.accounts.set('alice-sub', {
    claims: { preferred_username: 'Alice', name: 'Alice Admin', groups: ['staff', 'edge-admins'] },
    amr: ['pwd', 'mfa'],
  });
  idp.accounts.set('bob-sub', { claims: { preferred_username: 'bob', name: 'Bob Operator', groups: ['radiology-it'] }, amr: ['pwd'] });
  idp.accounts.set('carol-sub', { claims: { preferred_username: 'carol', name: 'Carol', groups: ['staff'] }, amr: ['pwd', 'mfa'] });
  idp.accounts.set('admin-sub', {
    claims: { preferred_username: 'admin', name: 'Not the local admin', groups: ['edge-admins'] },
    amr: ['mfa'],
  });
  const site = await createSite((config) => {
    config['admin'].listen.port = adminPort;
    config['admin'].hostNames = ['localhost', '127.0.0.1'];
    config['admin'].oidc = {
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      clientSecretFile: 'oidc-client-secret',
      caFile: idp.caFile,
      scopes: ['openid', 'profile', 'groups'],
      roleMapping: [
        { group: 'edge-admins', role: 'admin' },
        { group: 'edge-auditors', role: 'auditor' },
        { group: 'radiology-it', role: 'operator' },
      ],
    };
  });
  const secretFile = join(site.dir, 'oidc-client-secret');
  await writeFile(secretFile, `${CLIENT_SECRET}\n`);
  await chmod(secretFile, 0o600);
  const { password } = await withSiteStore(site.dir, (store) => createAdminAccount(store, 'admin'));
  const daemon = await Daemon.start(site.configFile);
  const client = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  w = { idp, site, daemon, client, adminPort, localPassword: password, redirectUri };
});

test.after.always(async () => {
  await w?.daemon.stop();
  await w?.idp.stop();
  await w?.site.cleanup();
});

const host = () => `localhost:${w.adminPort}`;

/** One browser: start at the box, through the IdP's login, back to the box's callback. */
async function ssoSignIn(
  account: string,
  client = w.client.fresh(),
): Promise<{ client: AdminClient; start: AdminResponse; callback: AdminResponse }> {
  w.idp.nextLogin = account;
  const start = await client.get('/api/v1/session/oidc/start', { host: host() });
  if (start.status !== 303) return { client, start, callback: start };
  const txCookie = (start.headers['set-cookie'] as string[]).find((c) => c.startsWith('__Host-edge-oidc='))!;
  const walk = await walkRedirects(start.headers['location'] as string, w.redirectUri, w.idp.caPem);
  if (walk.callbackUrl === undefined) throw new Error(`the IdP did not come back (HTTP ${walk.lastStatus})`);
  const callback = await client.get(walk.callbackUrl.pathname + walk.callbackUrl.search, {
    host: host(),
    cookie: null,
    headers: { cookie: txCookie.split(';')[0]! },
  });
  return { client, start, callback };
}

test.serial('the sign-in button sends the browser to the IdP with PKCE, state and nonce, and a sealed Lax cookie', async (t) => {
  const start = await w.client.fresh().get('/api/v1/session/oidc/start', { host: host() });
  t.is(start.status, 303);
  const location = new URL(start.headers['location'] as string);
  t.is(location.origin, w.idp.issuer);
  t.is(location.searchParams.get('redirect_uri'), w.redirectUri);
  t.is(location.searchParams.get('client_id'), CLIENT_ID);
  t.is(location.searchParams.get('code_challenge_method'), 'S256');
  t.truthy(location.searchParams.get('state'));
  t.truthy(location.searchParams.get('nonce'));
  const cookie = (start.headers['set-cookie'] as string[]).find((c) => c.startsWith('__Host-edge-oidc='))!;
  t.regex(cookie, /^__Host-edge-oidc=[A-Za-z0-9_-]+; Secure; HttpOnly; SameSite=Lax; Path=\/; Max-Age=600$/);
  t.false(cookie.includes(location.searchParams.get('state')!), 'the state is sealed, not in clear');
});

test.serial('an IdP user with MFA in a mapped group signs in with that role; the account is kept with source oidc', async (t) => {
  const { client, callback } = await ssoSignIn('alice-sub');
  t.is(callback.status, 303, JSON.stringify(callback.body));
  t.is(callback.headers['location'], '/');
  t.like(callback.body, { signedIn: true, username: 'alice', stage: 'full' });
  const session = await client.get('/api/v1/session', { host: host() });
  t.like(session.body, { username: 'alice', displayName: 'Alice Admin', role: 'admin', stage: 'full', method: 'oidc' });
  t.true((session.body.amr as string[]).includes('mfa'));
  t.is((await client.get('/api/v1/status', { host: host() })).status, 200, 'a full session reaches the API');
  // The account exists now; a password sign-in for it fails like any wrong password (it has none).
  const password = await w.client
    .fresh()
    .post('/api/v1/session/sign-in', { username: 'alice', password: 'anything-at-all-123' }, { host: host() });
  t.is(password.status, 401);
});

test.serial('an IdP user without the MFA claim is held at the box TOTP step', async (t) => {
  const { client, callback } = await ssoSignIn('bob-sub');
  t.is(callback.status, 303);
  t.like(callback.body, { signedIn: true, username: 'bob', stage: 'enrol-mfa' });
  const session = await client.get('/api/v1/session', { host: host() });
  t.like(session.body, { username: 'bob', role: 'operator', stage: 'enrol-mfa', method: 'oidc' });
  const blocked = await client.get('/api/v1/status', { host: host() });
  t.is(blocked.status, 403);
  t.is(blocked.body.error.code, 'EDGE_ACCESS_SIGN_IN_INCOMPLETE');

  // The box's own TOTP: enrolled now, then asked at every later SSO sign-in of this user.
  const enrol = await client.post('/api/v1/session/totp/enrol', {}, { host: host() });
  t.is(enrol.status, 200);
  const secret = enrol.body.secret as string;
  const confirmed = await client.post('/api/v1/session/totp/confirm', { code: totpCode(secret) }, { host: host() });
  t.is(confirmed.body.stage, 'full');
  t.is((await client.get('/api/v1/status', { host: host() })).status, 200);

  const again = await ssoSignIn('bob-sub');
  t.like(again.callback.body, { signedIn: true, username: 'bob', stage: 'mfa' });
  t.is((await again.client.get('/api/v1/status', { host: host() })).status, 403);
  const wrong = await again.client.post('/api/v1/session/totp', { code: '000000' }, { host: host() });
  t.is(wrong.status, 401);
  const right = await again.client.post('/api/v1/session/totp', { code: totpCode(secret, Date.now() + 30_000) }, { host: host() });
  t.is(right.body.stage, 'full', JSON.stringify(right.body));
  const later = await again.client.get('/api/v1/session', { host: host() });
  t.deepEqual(later.body.amr, ['pwd', 'otp']);
  t.is(later.body.method, 'oidc');
});

test.serial('a user in no mapped group is refused with the reason', async (t) => {
  const { client, callback } = await ssoSignIn('carol-sub');
  t.is(callback.status, 303);
  t.is(callback.headers['location'], '/?sso=refused&code=EDGE_OIDC_SIGN_IN_REFUSED');
  t.like(callback.body, { signedIn: false, error: { code: 'EDGE_OIDC_SIGN_IN_REFUSED' } });
  t.regex(callback.body.error.message, /roleMapping/);
  t.is(callback.headers['set-cookie'], undefined, 'no session');
  t.is((await client.get('/api/v1/session', { host: host() })).status, 401);
});

test.serial('an IdP user whose name is a local account is refused, never merged into it', async (t) => {
  const { callback } = await ssoSignIn('admin-sub');
  t.like(callback.body, { signedIn: false, error: { code: 'EDGE_OIDC_SIGN_IN_REFUSED' } });
  t.regex(callback.body.error.message, /belongs to another account/);
});

test.serial('a tampered ID token is refused', async (t) => {
  w.idp.tamperIdToken = (token) => w.idp.corrupt(token, (p) => ({ ...p, groups: ['edge-admins'] }));
  try {
    const { callback } = await ssoSignIn('carol-sub');
    t.is(callback.headers['location'], '/?sso=failed&code=EDGE_OIDC_RESPONSE_INVALID');
    t.regex(callback.body.error.message, /signature/i);
  } finally {
    w.idp.tamperIdToken = undefined;
  }
});

test.serial('an ID token for another audience is refused, though signed by the IdP', async (t) => {
  w.idp.tamperIdToken = (token) => w.idp.resign(token, (p) => ({ ...p, aud: 'some-other-app', azp: 'some-other-app' }));
  try {
    const { callback } = await ssoSignIn('alice-sub');
    t.is(callback.headers['location'], '/?sso=failed&code=EDGE_OIDC_RESPONSE_INVALID');
    t.regex(callback.body.error.message, /aud/);
  } finally {
    w.idp.tamperIdToken = undefined;
  }
});

test.serial("a callback without this browser's pending sign-in is refused (login CSRF)", async (t) => {
  w.idp.nextLogin = 'alice-sub';
  const start = await w.client.fresh().get('/api/v1/session/oidc/start', { host: host() });
  const walk = await walkRedirects(start.headers['location'] as string, w.redirectUri, w.idp.caPem);
  const victim = w.client.fresh();
  const callback = await victim.get(walk.callbackUrl!.pathname + walk.callbackUrl!.search, { host: host() });
  t.is(callback.headers['location'], '/?sso=failed&code=EDGE_OIDC_RESPONSE_INVALID');
  t.is((await victim.get('/api/v1/session', { host: host() })).status, 401);
});

test.serial('every outcome is audited, and no code, token or state reaches a log line or audit record', async (t) => {
  const { callback } = await ssoSignIn('alice-sub');
  t.is(callback.status, 303);
  await w.daemon.stop();
  const events = await siteAuditEvents(w.site.dir);
  const sso = events.filter((e) => e.type.startsWith('sso.') || e.type === 'access.sign-in');
  const detail = (type: string) => sso.filter((e) => e.type === type).map((e) => `${e.participants[0]?.id}: ${e.detail ?? ''}`);
  t.true(
    detail('sso.sign-in').some((d) => /^alice: issuer https:\/\/127\.0\.0\.1:\d+; role admin via group edge-admins; mfa amr mfa$/.test(d)),
    detail('sso.sign-in').join('\n'),
  );
  t.true(detail('sso.sign-in').some((d) => /^bob: .*mfa box TOTP required$/.test(d)));
  t.true(detail('sso.sign-in-refused').some((d) => /^carol: no-mapped-group/.test(d)));
  t.true(detail('sso.sign-in-refused').some((d) => /^admin: username-taken/.test(d)));
  t.true(detail('sso.sign-in-failed').some((d) => /signature/i.test(d)));
  t.true(detail('sso.sign-in-failed').some((d) => /aud/.test(d)));
  t.true(detail('sso.sign-in-failed').some((d) => /transaction/.test(d)));
  t.true(
    detail('access.sign-in').some((d) => /^alice: oidc \(pwd, mfa\)/.test(d)),
    detail('access.sign-in').join('\n'),
  );
  for (const e of sso) t.is(e.participants[0]?.address, '127.0.0.1');
  // Nothing that grants anything: no JWT, no authorization code, no PKCE verifier, no client secret.
  const everything = JSON.stringify(events) + w.daemon.process.lines.join('\n');
  t.false(/eyJ[A-Za-z0-9_-]{10,}\./.test(everything), 'no JWT');
  t.false(everything.includes(CLIENT_SECRET), 'no client secret');
  t.false(/[?&]code=/.test(everything), 'no authorization response');
});

test.serial('IdP unreachable from the start: the daemon starts, SSO answers unavailable, local sign-in works', async (t) => {
  const deadPort = await freePort();
  const config = JSON.parse(await readFile(w.site.configFile, 'utf8')) as Record<string, any>;
  config['admin'].oidc.issuer = `https://127.0.0.1:${deadPort}`;
  config['admin'].oidc.requestTimeoutMs = 1000;
  await writeFile(w.site.configFile, JSON.stringify(config, null, 2));
  w.daemon = await Daemon.start(w.site.configFile);
  const client = await AdminClient.connect(w.daemon.ports.admin, w.site.pki.caCert);
  const started = Date.now();
  const sso = await client.get('/api/v1/session/oidc/start', { host: host() });
  t.is(sso.status, 503);
  t.is(sso.body.error.code, 'EDGE_OIDC_UNAVAILABLE');
  t.regex(sso.body.error.message, /local account/);
  t.true(Date.now() - started < 10_000);
  const local = await client.post('/api/v1/session/sign-in', { username: 'admin', password: w.localPassword }, { host: host() });
  t.is(local.status, 200);
  t.is(local.body.stage, 'change-password');
  t.true(w.daemon.process.events('oidc.discovery-failed').length >= 1);
});
