// The admin listener against the live daemon: HTTPS with the box's certificate, sign-in with the
// provisioning admin's one-time password, the session cookie's attributes, the control routes mounted
// under /api/v1 behind the permission table, and the Host / Origin / Sec-Fetch-Site checks.
import test from 'ava';
import { connect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { createAdminAccount } from '../../provisioning/admin-account.ts';
import { AdminClient } from '../support/admin-client.ts';
import { Daemon, createSite } from '../support/site.ts';

async function siteWithAdmin(): Promise<{
  site: Awaited<ReturnType<typeof createSite>>;
  password: string;
  daemon: Daemon;
  client: AdminClient;
}> {
  const site = await createSite();
  const store = await openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const { password } = await createAdminAccount(store, 'admin');
  await store.close();
  const daemon = await Daemon.start(site.configFile);
  const client = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  return { site, password, daemon, client };
}

test('admin listener: TLS profile, sign-in with the one-time password, cookie attributes, routes behind the table', async (t) => {
  const { site, password, daemon, client } = await siteWithAdmin();
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  t.true(daemon.ports.admin > 0);

  // TLS 1.3 preferred; TLS 1.1 refused.
  const ca = await readFile(site.pki.caCert);
  const version = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: daemon.ports.admin, ca, servername: 'localhost' }, () => {
      resolve(s.getProtocol() ?? '');
      s.end();
    });
    s.on('error', reject);
  });
  t.is(version, 'TLSv1.3');
  const old = await new Promise<string>((resolve) => {
    const s = connect(
      { host: '127.0.0.1', port: daemon.ports.admin, ca, servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' },
      () => {
        resolve('connected');
        s.end();
      },
    );
    s.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
  });
  t.not(old, 'connected');

  t.is((await client.get('/api/v1/status')).status, 401, 'signed out: no status');
  const wrong = await client.signIn('admin', 'not-the-password');
  t.is(wrong.status, 401);
  t.is(wrong.body.error.code, 'EDGE_ACCESS_SIGN_IN_FAILED');

  const signIn = await client.signIn('admin', password);
  t.is(signIn.status, 200);
  t.is(signIn.body.stage, 'change-password');
  const setCookie = (signIn.headers['set-cookie'] as string[])[0]!;
  t.regex(setCookie, /^__Host-edge-session=[A-Za-z0-9_-]{43}; Secure; HttpOnly; SameSite=Strict; Path=\/$/);
  const blocked = await client.get('/api/v1/status');
  t.is(blocked.status, 403, 'a must-change session reaches nothing else');
  t.is(blocked.body.error.code, 'EDGE_ACCESS_SIGN_IN_INCOMPLETE');
  const session = await client.get('/api/v1/session');
  t.is(session.status, 200);
  t.like(session.body, { username: 'admin', role: 'admin', stage: 'change-password' });

  // DNS rebinding: a Host that is not the box's.
  const rebound = await client.get('/api/v1/session', { host: 'attacker.example' });
  t.is(rebound.status, 421);
  // CSRF: a write from another origin, a write without Origin, a cross-site fetch.
  t.is((await client.post('/api/v1/session/sign-out', undefined, { origin: 'https://attacker.example' })).status, 403);
  t.is((await client.post('/api/v1/session/sign-out', undefined, { origin: null })).status, 403);
  t.is((await client.post('/api/v1/session/sign-out', undefined, { secFetchSite: 'cross-site' })).status, 403);
  t.is((await client.get('/api/v1/session')).status, 200, 'the refused writes did not sign out');

  const out = await client.post('/api/v1/session/sign-out');
  t.is(out.status, 200);
  t.is((await client.get('/api/v1/session')).status, 401, 'signed out');
  const lines = daemon.process.lines.join('\n') + daemon.process.stderr;
  t.false(lines.includes(password), 'the password is never logged');
});
