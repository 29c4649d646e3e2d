// WebAuthn on the live daemon's admin listener, with headless Chromium and its virtual authenticator
// on https://localhost (a valid relying party id; the site CA trusted as a hospital PC trusts it): a
// signed-in user registers an authenticator, the next password sign-in then stops at the second-factor
// stage until the authenticator answers, and the authenticator steps up. A box whose admin host names
// are IP addresses only offers TOTP alone and says why.
import test from 'ava';
import type { Page } from 'playwright-core';
import { hashPassword } from '../../daemon/core/password-hash.ts';
import { AdminClient } from '../support/admin-client.ts';
import { siteAuditEvents } from '../support/audit-store.ts';
import {
  addVirtualAuthenticator,
  chromiumPrecondition,
  launchChromiumTrusting,
  type TrustingBrowser,
} from '../support/chromium-with-ca.ts';
import { whenMet } from '../support/preconditions.ts';
import { Daemon, createSite } from '../support/site.ts';
import { withSiteStore } from '../support/site-store.ts';

const PASSWORD = 'correct horse battery staple 42';

async function siteWithUser(hostNames: readonly string[]) {
  const site = await createSite((config) => {
    config['admin'].hostNames = [...hostNames];
  });
  await withSiteStore(site.dir, async (store) =>
    store.users.create({
      username: 'olga',
      displayName: 'Olga Operator',
      role: 'operator',
      state: 'active',
      password: await hashPassword(PASSWORD),
      mustChange: false,
      createdAt: Date.now(),
    }),
  );
  const daemon = await Daemon.start(site.configFile);
  return { site, daemon };
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A JSON call from the page (same origin: the browser adds Origin, Sec-Fetch-Site and the session cookie). */
const call = (page: Page, path: string, body?: unknown): Promise<Answer> =>
  page.evaluate(
    `(async () => {
      const r = await fetch(${JSON.stringify(path)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(${JSON.stringify(body ?? {})}) });
      return { status: r.status, body: await r.json() };
    })()`,
  ) as Promise<Answer>;

const get = (page: Page, path: string): Promise<Answer> =>
  page.evaluate(
    `(async () => { const r = await fetch(${JSON.stringify(path)}); return { status: r.status, body: await r.json() }; })()`,
  ) as Promise<Answer>;

const REGISTER = `(async () => {
  const o = await fetch('/api/v1/session/webauthn/register/options', { method: 'POST' });
  if (o.status !== 200) return { status: o.status, body: await o.json() };
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(await o.json()) });
  const r = await fetch('/api/v1/session/webauthn/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credential.toJSON()) });
  return { status: r.status, body: await r.json() };
})()`;

const ASSERT = `(async () => {
  const o = await fetch('/api/v1/session/webauthn/options', { method: 'POST' });
  if (o.status !== 200) return { status: o.status, body: await o.json() };
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(await o.json()) });
  const r = await fetch('/api/v1/session/webauthn', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credential.toJSON()) });
  return { status: r.status, body: await r.json() };
})()`;

const browserTest = whenMet(chromiumPrecondition());

browserTest('a registered authenticator becomes the second factor at sign-in and steps up', async (t) => {
  const { site, daemon } = await siteWithUser(['localhost']);
  let chrome: TrustingBrowser | undefined;
  t.teardown(async () => {
    await chrome?.close();
    await daemon.stop();
    await site.cleanup();
  });
  chrome = await launchChromiumTrusting(site.pki.caCert);
  const page = await chrome.browser.newPage();
  await addVirtualAuthenticator(page);
  await page.goto(`https://localhost:${daemon.ports.admin}/`);

  const methods = await get(page, '/api/v1/session/mfa-methods');
  t.deepEqual(methods.body, { methods: ['totp', 'webauthn'], rpId: 'localhost' });

  const first = await call(page, '/api/v1/session/sign-in', { username: 'olga', password: PASSWORD });
  t.is(first.status, 200);
  t.is(first.body['stage'], 'full', 'no second factor yet');
  const registered = (await page.evaluate(REGISTER)) as Answer;
  t.is(registered.status, 200, JSON.stringify(registered.body));
  t.like(registered.body, { registered: true, credentials: 1 });
  t.is((await call(page, '/api/v1/session/sign-out')).status, 200);

  const second = await call(page, '/api/v1/session/sign-in', { username: 'olga', password: PASSWORD });
  t.is(second.body['stage'], 'mfa', 'the authenticator is now asked for');
  t.is((await get(page, '/api/v1/status')).status, 403, 'the password alone reaches nothing');
  const asserted = (await page.evaluate(ASSERT)) as Answer;
  t.is(asserted.status, 200, JSON.stringify(asserted.body));
  t.is(asserted.body['stage'], 'full');
  const session = await get(page, '/api/v1/session');
  t.deepEqual(session.body['amr'], ['pwd', 'hwk']);
  t.is((await get(page, '/api/v1/status')).status, 200);

  const stepUp = (await page.evaluate(ASSERT)) as Answer;
  t.is(stepUp.status, 200, 'the authenticator steps up a full session');

  // An assertion answered for nothing the box asked: refused and audited.
  const forged = await call(page, '/api/v1/session/webauthn', { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: {} });
  t.is(forged.status, 401);
  t.is((forged.body['error'] as { code: string }).code, 'EDGE_WEBAUTHN_FAILED');

  await daemon.stop();
  const events = await siteAuditEvents(site.dir);
  t.true(events.some((e) => e.type === 'webauthn.credential-registered' && e.participants[0]?.id === 'olga'));
  t.true(events.some((e) => e.type === 'webauthn.assertion-failed' && e.participants[0]?.id === 'olga'));
  t.true(events.some((e) => e.type === 'access.sign-in' && /password \(pwd, hwk\)/.test(e.detail ?? '')));
});

test('a box reached by IP address only offers TOTP alone and says why', async (t) => {
  const { site, daemon } = await siteWithUser(['127.0.0.1']);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  const client = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  const methods = await client.get('/api/v1/session/mfa-methods');
  t.is(methods.status, 200);
  t.deepEqual(methods.body.methods, ['totp']);
  t.regex(methods.body.webauthnUnavailable, /DNS name/);
  t.is((await client.signIn('olga', PASSWORD)).status, 200);
  const register = await client.post('/api/v1/session/webauthn/register/options');
  t.is(register.status, 409);
  t.is(register.body.error.code, 'EDGE_WEBAUTHN_UNAVAILABLE');
});
