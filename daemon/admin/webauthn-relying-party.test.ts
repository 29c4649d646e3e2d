// WebAuthn ceremonies with a real browser and authenticator: headless Chromium with its CDP virtual
// authenticator on https://localhost (a valid rpID), against the relying party behind a small HTTPS
// page server of this test. The box's own routes are exercised in test/integration/sso-webauthn.test.ts.
import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { isEdgeError } from '../core/errors.ts';
import {
  addVirtualAuthenticator,
  chromiumPrecondition,
  launchChromiumTrusting,
  type TrustingBrowser,
} from '../../test/support/chromium-with-ca.ts';
import { whenMet } from '../../test/support/preconditions.ts';
import { PkiBuilder } from '../../test/support/test-pki.ts';
import { mfaMethodsFor, WebAuthnRelyingParty, webauthnRpId, type WebAuthnCredentialRecord } from './webauthn-relying-party.ts';

interface Harness {
  readonly server: Server;
  readonly port: number;
  readonly caFile: string;
  rp: WebAuthnRelyingParty | undefined;
  credentials: WebAuthnCredentialRecord[];
  lastAssertion: unknown;
}

const user = { username: 'alice', displayName: 'Alice', userHandle: new Uint8Array(randomBytes(16)) };

async function startHarness(): Promise<Harness> {
  const pki = new PkiBuilder(mkdtempSync(join(tmpdir(), 'edge-webauthn-')));
  const caFile = pki.ca('ca');
  const leaf = pki.leaf('box', 'ca', 'localhost', 'serverAuth', 'DNS:localhost,IP:127.0.0.1');
  const h: Harness = { server: undefined as unknown as Server, port: 0, caFile, rp: undefined, credentials: [], lastAssertion: undefined };
  const server = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const rp = h.rp!;
        const body = chunks.length === 0 ? undefined : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
        try {
          let out: unknown = {};
          if (req.url === '/reg/options') out = await rp.registrationOptions('session-1', user, h.credentials);
          else if (req.url === '/reg/verify') h.credentials.push(await rp.verifyRegistration('session-1', body));
          else if (req.url === '/auth/options') out = await rp.authenticationOptions('session-1', h.credentials);
          else if (req.url === '/auth/verify') {
            h.lastAssertion = body;
            const updated = await rp.verifyAuthentication('session-1', body, h.credentials);
            h.credentials = h.credentials.map((c) => (c.id === updated.id ? updated : c));
          } else {
            res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>edge</title>');
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        } catch (err) {
          res.writeHead(isEdgeError(err) ? 400 : 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) }));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(h, { server, port: (server.address() as AddressInfo).port });
}

const REGISTER = `(async () => {
  const options = await (await fetch('/reg/options', { method: 'POST' })).json();
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
  const r = await fetch('/reg/verify', { method: 'POST', body: JSON.stringify(credential.toJSON()) });
  return { status: r.status, body: await r.text() };
})()`;

const SIGN_IN = `(async () => {
  const options = await (await fetch('/auth/options', { method: 'POST' })).json();
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
  const r = await fetch('/auth/verify', { method: 'POST', body: JSON.stringify(credential.toJSON()) });
  return { status: r.status, body: await r.text() };
})()`;

const REPLAY = (assertion: unknown) => `(async () => {
  await fetch('/auth/options', { method: 'POST' });
  const r = await fetch('/auth/verify', { method: 'POST', body: ${JSON.stringify(JSON.stringify(assertion))} });
  return { status: r.status, body: await r.text() };
})()`;

interface PageAnswer {
  readonly status: number;
  readonly body: string;
}

const browserTest = whenMet(chromiumPrecondition());
let harness: Harness;
let chrome: TrustingBrowser;
let page: Page;

test.before(async () => {
  if (chromiumPrecondition() !== undefined) return;
  harness = await startHarness();
  harness.rp = new WebAuthnRelyingParty({ hostNames: ['localhost', '127.0.0.1'], port: harness.port, rpName: 'Imaging Edge test' });
  chrome = await launchChromiumTrusting(harness.caFile);
  page = await chrome.browser.newPage();
  await addVirtualAuthenticator(page);
  await page.goto(`https://localhost:${harness.port}/`);
});

test.after.always(async () => {
  await chrome?.close();
  harness?.server.closeAllConnections();
  harness?.server.close();
});

browserTest.serial('a virtual authenticator registers on https://localhost and signs in; the counter is stored', async (t) => {
  const reg = (await page.evaluate(REGISTER)) as PageAnswer;
  t.is(reg.status, 200, reg.body);
  t.is(harness.credentials.length, 1);
  const before = harness.credentials[0]!.counter;
  const signIn = (await page.evaluate(SIGN_IN)) as PageAnswer;
  t.is(signIn.status, 200, signIn.body);
  t.true(harness.credentials[0]!.counter > before, 'the new signature counter is kept');
  t.truthy(harness.credentials[0]!.lastUsedAt);
});

browserTest.serial('a replayed assertion is refused: its challenge was used', async (t) => {
  const replay = (await page.evaluate(REPLAY(harness.lastAssertion))) as PageAnswer;
  t.is(replay.status, 400);
  t.regex(replay.body, /challenge/i);
});

browserTest.serial('an authenticator whose counter went back (a clone) is refused', async (t) => {
  harness.credentials = harness.credentials.map((c) => ({ ...c, counter: c.counter + 1000 }));
  const signIn = (await page.evaluate(SIGN_IN)) as PageAnswer;
  t.is(signIn.status, 400);
  t.regex(signIn.body, /counter/i);
});

browserTest.serial('the browser itself refuses an IP address as relying party id', async (t) => {
  const ipPage = await chrome.browser.newPage();
  try {
    await addVirtualAuthenticator(ipPage);
    await ipPage.goto(`https://127.0.0.1:${harness.port}/`);
    const error = await ipPage.evaluate(`(async () => {
      try {
        await navigator.credentials.create({ publicKey: {
          rp: { id: '127.0.0.1', name: 'x' }, user: { id: new Uint8Array(16), name: 'a', displayName: 'a' },
          challenge: new Uint8Array(32), pubKeyCredParams: [{ type: 'public-key', alg: -7 }] } });
        return 'created';
      } catch (e) { return e.name; }
    })()`);
    t.is(error, 'SecurityError');
  } finally {
    await ipPage.close();
  }
});

test('an IP-only box offers TOTP only and says why; a DNS name offers WebAuthn', (t) => {
  t.deepEqual(mfaMethodsFor(['192.0.2.10', '2001:db8::1']).methods, ['totp']);
  t.regex(mfaMethodsFor(['192.0.2.10']).webauthnUnavailable ?? '', /DNS name/);
  t.deepEqual(mfaMethodsFor(['192.0.2.10', 'edge-ct.hospital.example']), { methods: ['totp', 'webauthn'] });
  t.is(webauthnRpId(['192.0.2.10', 'Edge-CT.Hospital.Example']), 'edge-ct.hospital.example');
  const err = t.throws(() => new WebAuthnRelyingParty({ hostNames: ['192.0.2.10'], port: 8443, rpName: 'x' }));
  t.true(isEdgeError(err, 'EDGE_WEBAUTHN_UNAVAILABLE'));
});

test('expected origins are the DNS names under the rpID, with the port unless 443', (t) => {
  const rp = new WebAuthnRelyingParty({
    hostNames: ['edge.hospital.example', '10.1.1.1', 'ct.edge.hospital.example', 'other.example'],
    port: 8443,
    rpName: 'x',
  });
  t.is(rp.rpId, 'edge.hospital.example');
  t.deepEqual(rp.origins, ['https://edge.hospital.example:8443', 'https://ct.edge.hospital.example:8443']);
  t.deepEqual(new WebAuthnRelyingParty({ hostNames: ['edge.hospital.example'], port: 443, rpName: 'x' }).origins, [
    'https://edge.hospital.example',
  ]);
});
