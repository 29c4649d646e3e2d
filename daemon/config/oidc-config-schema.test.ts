// admin.oidc through the whole config check: defaults, the issuer's https rule, `openid` in the scopes,
// roles from the role table only, and the warning when the redirect URI would carry an IP address.
import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tlsFiles } from '../../test/support/test-pki.ts';
import { checkConfig } from './check-config.ts';

function site(oidc: Record<string, unknown>, hostNames: string[] | null = ['edge-ct.hospital.example']) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-oidc-config-'));
  mkdirSync(join(dir, 'pki'));
  mkdirSync(join(dir, 'keys'), { mode: 0o700 });
  const tls = tlsFiles();
  for (const f of ['pki/ca.crt', 'pki/server.crt', 'pki/idp-ca.crt']) writeFileSync(join(dir, f), tls.certificate);
  writeFileSync(join(dir, 'pki/server.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(dir, 'keys/data.key'), Buffer.alloc(32), { mode: 0o600 });
  writeFileSync(join(dir, 'oidc-secret'), 'secret\n', { mode: 0o600 });
  const raw = {
    site: { name: 'GENHOSP-RAD1' },
    keys: { backend: 'file', file: { path: './keys/data.key' } },
    tls: { caFile: './pki/ca.crt', certFile: 'pki/server.crt', keyFile: './pki/server.key' },
    admin: {
      listen: { host: '127.0.0.1', port: 8443 },
      ...(hostNames === null ? {} : { hostNames }),
      oidc: {
        issuer: 'https://login.microsoftonline.com/tenant/v2.0',
        clientId: 'edge',
        clientSecretFile: 'oidc-secret',
        roleMapping: [{ group: 'g1', role: 'admin' }],
        ...oidc,
      },
    },
  };
  return checkConfig(raw, { baseDir: dir });
}

const errorsAt = (r: ReturnType<typeof site>, path: string) => r.issues.filter((i) => i.severity === 'error' && i.path === path);

test('a minimal admin.oidc gets its defaults', (t) => {
  const r = site({ caFile: 'pki/idp-ca.crt' });
  t.deepEqual(
    r.issues.filter((i) => i.path.startsWith('admin')),
    [],
  );
  t.like(r.config?.admin?.oidc, {
    scopes: ['openid', 'profile', 'email'],
    usernameClaim: 'preferred_username',
    groupsClaim: 'groups',
    mfa: { amrValues: ['mfa'], acrValues: [] },
    requestTimeoutMs: 10_000,
    maxResponseBytes: 262_144,
    signInTimeoutMs: 600_000,
  });
});

test('the issuer must be https, the scopes must hold openid, roles come from the role table', (t) => {
  t.is(errorsAt(site({ issuer: 'http://idp.example' }), 'admin.oidc.issuer').length, 1);
  t.is(errorsAt(site({ scopes: ['profile'] }), 'admin.oidc.scopes').length, 1);
  t.is(errorsAt(site({ roleMapping: [{ group: 'g', role: 'root' }] }), 'admin.oidc.roleMapping[0].role').length, 1);
  t.is(errorsAt(site({ roleMapping: [] }), 'admin.oidc.roleMapping').length, 1);
  t.true(
    site({
      roleMapping: [
        { group: 'g', role: 'admin' },
        { group: 'g', role: 'viewer' },
      ],
    }).issues.some((i) => i.severity === 'error' && i.path.startsWith('admin.oidc.roleMapping')),
  );
  t.true(site({ clientSecretFile: 'missing' }).issues.some((i) => i.severity === 'error' && i.path === 'admin.oidc.clientSecretFile'));
  // Exactly one way to authenticate at the token endpoint: a secret, or a key (private_key_jwt).
  t.is(errorsAt(site({ clientKeyFile: 'oidc-secret' }), 'admin.oidc.clientSecretFile').length, 1);
  t.is(errorsAt(site({ clientSecretFile: undefined }), 'admin.oidc.clientSecretFile').length, 1);
});

test('a redirect URI that would carry an IP address is warned about', (t) => {
  for (const hostNames of [null, ['10.1.2.3', 'edge.hospital.example']]) {
    const r = site({}, hostNames);
    t.truthy(r.config);
    t.true(r.issues.some((i) => i.severity === 'warning' && i.path === 'admin.hostNames' && /redirect URI/.test(i.message)));
  }
  t.false(site({}).issues.some((i) => i.path === 'admin.hostNames'));
});
