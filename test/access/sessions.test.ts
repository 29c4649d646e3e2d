// Sessions against the live daemon: the idle timeout counts user actions only (background refreshes
// keep running and still the session ends), forged, expired and signed-out cookies are refused, sign-in
// always issues a new id, a TOTP code works once, step-up is demanded and honoured, and a session is
// bound to the address it began on. Timeouts are configured to seconds so the test can watch them.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { AdminClient } from '../support/admin-client.ts';
import { addUser, firstSignIn, totpNext, userWithRole, type SignedInUser } from '../support/access.ts';
import { Daemon, createSite } from '../support/site.ts';
import { waitFor } from '../support/wait.ts';

const IDLE_MS = 4000;
const STEP_UP_MS = 1000;

let site: Awaited<ReturnType<typeof createSite>>;
let daemon: Daemon;
let connect: () => Promise<AdminClient>;

test.before(async () => {
  site = await createSite((c) => {
    c['admin'].session = { idleTimeoutMs: IDLE_MS, stepUpWindowMs: STEP_UP_MS };
  });
  daemon = await Daemon.start(site.configFile);
  connect = () => AdminClient.connect(daemon.ports.admin, site.pki.caCert);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('the idle timeout fires while background refreshes keep running; user actions keep a session alive', async (t) => {
  const polling = await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, 'idle-polling', 'viewer');
  const active = await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, 'idle-active', 'viewer');
  const startedAt = Date.now();
  const seen: number[] = [];
  let activeStatus = 0;
  while (Date.now() - startedAt < IDLE_MS + 2500) {
    // The page's refreshes: a background route, and a normal route marked as a background refresh.
    seen.push((await polling.client.get('/api/v1/session')).status);
    seen.push((await polling.client.get('/api/v1/status', { headers: { 'x-edge-background': '1' } })).status);
    activeStatus = (await active.client.get('/api/v1/status')).status;
    await sleep(400);
  }
  t.is(seen[0], 200, 'background refreshes work while the session lasts');
  t.is(seen.at(-1), 401, 'and do not keep it alive');
  t.is(seen.at(-2), 401);
  t.is(activeStatus, 200, 'a user acting every ~0.5 s stays signed in past the idle timeout');
  const expired = daemon.process.events('access.session-expired');
  t.true(
    expired.some((e) => e['user'] === 'idle-polling' && e['reason'] === 'idle timeout'),
    'the automatic logoff is logged',
  );
  t.false(expired.some((e) => e['user'] === 'idle-active'));
  // The ended session's cookie stays refused.
  t.is((await polling.client.get('/api/v1/session')).status, 401);
});

test.serial('forged, malformed and signed-out cookies are refused; sign-in never keeps an offered id', async (t) => {
  const user = await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, 'cookies', 'viewer');
  t.is((await user.client.get('/api/v1/status')).status, 200);
  const forged = await user.client.get('/api/v1/status', { cookie: randomBytes(32).toString('base64url') });
  t.is(forged.status, 401);
  t.is(forged.body.error.code, 'EDGE_ACCESS_UNAUTHENTICATED');
  t.is((await user.client.get('/api/v1/status', { cookie: 'x'.repeat(5000) })).status, 401);
  t.is((await user.client.get('/api/v1/status', { cookie: `${user.client.cookie!.slice(0, -1)}A` })).status, 401, 'one character changed');

  // Fixation: whatever cookie the client brings, sign-in answers a fresh id; the planted one stays dead.
  const before = user.client.cookie!;
  const browser = await connect();
  const planted = randomBytes(32).toString('base64url');
  browser.cookie = planted;
  const signIn = await browser.signIn('cookies', user.password);
  t.is(signIn.status, 200);
  t.is(signIn.body.stage, 'mfa');
  t.not(browser.cookie, planted);
  t.not(browser.cookie, before);
  t.is((await browser.get('/api/v1/status', { cookie: planted })).status, 401);
  t.is((await browser.post('/api/v1/session/totp', { code: totpNext(user.totpSecret) })).status, 200);
  t.is((await browser.get('/api/v1/status')).status, 200);

  // Signed out: the old cookie is refused, also when replayed later.
  const old = browser.cookie!;
  t.is((await browser.post('/api/v1/session/sign-out')).status, 200);
  t.is(browser.cookie as string | undefined, undefined, 'the answer clears the cookie');
  t.is((await browser.get('/api/v1/status', { cookie: old })).status, 401);
  t.is((await user.client.get('/api/v1/status')).status, 200, 'the other session of the user is untouched');
});

test.serial('a TOTP code is accepted once: the same code at a second sign-in is refused', async (t) => {
  const otp = await addUser(site.configFile, 'replay', 'viewer');
  const first = await connect();
  const user = await firstSignIn(first, 'replay', otp);
  t.is((await first.post('/api/v1/session/sign-out')).status, 200);
  const code = totpNext(user.totpSecret);
  const a = await connect();
  t.is((await a.signIn('replay', user.password)).body.stage, 'mfa');
  const accepted = await a.post('/api/v1/session/totp', { code });
  t.is(accepted.status, 200);
  t.is(accepted.body.stage, 'full');
  const b = await connect();
  t.is((await b.signIn('replay', user.password)).body.stage, 'mfa');
  const replayed = await b.post('/api/v1/session/totp', { code });
  t.is(replayed.status, 401);
  t.is(replayed.body.error.code, 'EDGE_ACCESS_MFA_INVALID');
  t.is((await b.get('/api/v1/status')).status, 403, 'the session is still waiting for its second factor');
  // A recovery code works in its place, once.
  const recovery = user.recoveryCodes[0]!;
  t.is((await b.post('/api/v1/session/totp', { code: recovery })).status, 200);
  t.is((await b.get('/api/v1/status')).status, 200);
  const c = await connect();
  await c.signIn('replay', user.password);
  t.is((await c.post('/api/v1/session/totp', { code: recovery })).status, 401, 'a used recovery code is refused');
});

test.serial('step-up: a sensitive action after the window asks for the password again, then goes through', async (t) => {
  const admin: SignedInUser = await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, 'stepper', 'admin');
  await sleep(STEP_UP_MS + 600);
  const demanded = await admin.client.post('/api/v1/config/reload', {});
  t.is(demanded.status, 401);
  t.is(demanded.body.error.code, 'EDGE_ACCESS_STEP_UP_REQUIRED');
  t.is((await admin.client.get('/api/v1/status')).status, 200, 'non-sensitive routes need no step-up');
  const wrong = await admin.client.post('/api/v1/session/step-up', { password: 'not-my-password-at-all' });
  t.is(wrong.status, 401);
  t.is((await admin.client.post('/api/v1/session/step-up', { password: admin.password })).status, 200);
  const honoured = await admin.client.post('/api/v1/config/reload', {});
  t.is(honoured.status, 200, JSON.stringify(honoured.body));
  t.true(
    daemon.process.lines.some((l) => l.includes('"event":"config.')),
    'the reload ran',
  );
});

test.serial('a session is bound to the client address it began on', async (t) => {
  const user = await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, 'bound', 'viewer');
  const elsewhere = user.client.fresh('127.0.0.2');
  const stolen = await elsewhere.get('/api/v1/status', { cookie: user.client.cookie! });
  t.is(stolen.status, 401);
  t.is((await user.client.get('/api/v1/status')).status, 401, 'the copied session was ended for both');
  t.true(await waitFor(() => daemon.process.events('access.session-refused').some((e) => e['user'] === 'bound'), 5000), 'logged');
});

test.serial('no password, TOTP code or session id appears in the log', (t) => {
  const text = daemon.process.lines.join('\n') + daemon.process.stderr;
  t.false(text.includes('Zq7!vR2#pL9'), 'no password');
  t.false(/__Host-edge-session=[A-Za-z0-9_-]{43}/.test(text), 'no cookie');
  t.false(/"code":"\d{6}"/.test(text), 'no TOTP code');
});
