// Field provisioning against swtpm: factory state → provisioned → CSR signed by a test CA → cert install
// (wrong certificates refused) → the daemon serves a worklist query over TLS → decommission crypto-erases.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../daemon/config/index.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { TpmClient } from '../../daemon/security/tpm-client.ts';
import { TpmKeySource } from '../../daemon/security/tpm-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { readUser, verifyPassword } from '../../provisioning/admin-account.ts';
import { certificateProblems } from '../../provisioning/cert-command.ts';
import { makeCa, makeLeaf, openssl } from '../../provisioning/dev-pki.ts';
import { totpNow } from '../support/access.ts';
import { AdminClient } from '../support/admin-client.ts';
import { findscu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { Supervised, run } from '../support/processes.ts';
import { Daemon, repoRoot } from '../support/site.ts';
import { Swtpm } from '../support/swtpm.ts';

const edgectl = join(repoRoot, 'bin/edgectl');

async function signCsr(csr: string, ca: { certFile: string; keyFile: string }, out: string, work: string): Promise<void> {
  const ext = join(work, `${Math.random()}.ext`);
  await writeFile(
    ext,
    [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth,clientAuth',
      'subjectAltName = DNS:localhost,IP:127.0.0.1',
    ].join('\n'),
  );
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-set_serial',
    String(Date.now()),
    '-sha256',
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    out,
  ]);
}

test('provision from factory state, install the CA-signed certificate, serve a TLS worklist query, decommission', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const dir = await mkdtemp(join(tmpdir(), 'edge-provision-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pki = join(dir, 'test-pki');
  await mkdir(pki, { mode: 0o700 });
  const ca = await makeCa(pki, 'ca', 'Test Site CA', 30);
  const rogueCa = await makeCa(pki, 'rogue', 'Rogue CA', 30);
  const ris = await makeLeaf(pki, 'ris', ca, { cn: 'RIS.GENHOSP', extendedKeyUsage: ['clientAuth'] }, 30);
  const ct = await makeLeaf(pki, 'ct01', ca, { cn: 'CT01.GENHOSP', extendedKeyUsage: ['clientAuth'] }, 30);
  const other = await makeLeaf(pki, 'other', ca, { cn: 'localhost', extendedKeyUsage: ['serverAuth', 'clientAuth'] }, 30);

  const profile = {
    site: { name: 'RAD-TEST' },
    dataDir: './box/data',
    caFile: ca.certFile,
    tpm: { tcti: swtpm.tcti, pcrs: 'sha256:7' },
    device: { hostname: 'localhost', addresses: ['127.0.0.1'], subject: { O: 'General Hospital', C: 'DE' } },
    admin: { username: 'admin' },
    config: {
      hl7: {
        listen: { host: '127.0.0.1', port: 0 },
        peers: [{ name: 'ris', certificateCn: 'RIS.GENHOSP', sendingApplication: 'RIS', sendingFacility: 'GENHOSP' }],
      },
      dicom: {
        tls: { host: '127.0.0.1', port: 0 },
        modalities: [{ name: 'ct1', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP' }],
      },
      shutdown: { drainTimeoutMs: 3000 },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    },
  };
  const profileFile = join(dir, 'profile.json');
  await writeFile(profileFile, JSON.stringify(profile));
  const configFile = join(dir, 'box', 'etc', 'edge.json');
  await mkdir(join(dir, 'box', 'etc'), { recursive: true });

  const started = Date.now();
  const p = await run(edgectl, ['provision', '--profile', profileFile, '--config', configFile, '--json'], { timeoutMs: 120_000 });
  t.is(p.code, 0, p.stdout + p.stderr);
  const report = JSON.parse(p.stdout) as {
    ok: boolean;
    recoverySecret: string;
    admin: { username: string; oneTimePassword: string };
    csrFile: string;
    steps: Array<{ step: string }>;
  };
  t.true(report.ok);
  t.log(`provision (incl. self-test) ${Date.now() - started} ms`);
  t.regex(report.recoverySecret, /^[A-Z2-9]{5}(-[A-Z2-9]{5}){5}$/);
  t.deepEqual(
    report.steps.map((s) => s.step),
    ['hardware-check', 'device-key', 'keys-sealed', 'certificate-files', 'config-written', 'store-and-admin', 'self-test'],
  );
  const dataDir = join(dir, 'box', 'data');
  // No private key and no recovery secret on disk.
  const configText = await readFile(configFile, 'utf8');
  t.false(configText.includes('keyFile'));
  t.false((await readFile(join(dataDir, 'keys', 'keyring.json'), 'utf8')).includes(report.recoverySecret));

  // The CSR verifies with OpenSSL and carries the SAN.
  const csrText = await openssl(['req', '-in', report.csrFile, '-verify', '-noout', '-text']);
  t.regex(csrText, /DNS:localhost, IP Address:127\.0\.0\.1/);

  // Wrong certificates are refused by cert install.
  const good = join(dir, 'device.crt');
  await signCsr(report.csrFile, ca, good, dir);
  const wrongCa = join(dir, 'rogue-signed.crt');
  await signCsr(report.csrFile, rogueCa, wrongCa, dir);
  const otherKey = await run(edgectl, ['cert', 'install', other.certFile, '--config', configFile], { timeoutMs: 30_000 });
  t.is(otherKey.code, 1);
  t.regex(otherKey.stderr, /another key/);
  const rogue = await run(edgectl, ['cert', 'install', wrongCa, '--config', configFile], { timeoutMs: 30_000 });
  t.is(rogue.code, 1);
  t.regex(rogue.stderr, /does not chain to the configured CA/);
  const { config } = loadConfig(configFile);
  const expired = await certificateProblems(config, await readFile(good, 'utf8'), undefined, Date.now() + 60 * 86_400_000);
  t.true(
    expired.some((x) => x.includes('expired')),
    expired.join('; '),
  );
  const ok = await run(edgectl, ['cert', 'install', good, '--config', configFile], { timeoutMs: 30_000 });
  t.is(ok.code, 0, ok.stderr);
  const status = await run(edgectl, ['cert', 'status', '--config', configFile, '--json'], { timeoutMs: 30_000 });
  const certs = JSON.parse(status.stdout) as Array<{ role: string; state: string; daysLeft: number }>;
  t.true(
    certs.some((c) => c.role === 'box' && c.state === 'expiring'),
    'a 30-day certificate is within the warning window',
  );

  // The admin account: hashed, must change at first login.
  const tpm = new TpmClient({ tcti: swtpm.tcti });
  const source = new TpmKeySource({ tpm, keysDir: join(dataDir, 'keys'), logger: silentLogger });
  const store = await openStore({ dataDir, keySource: source, replayWindowMs: 3_600_000, logger: silentLogger });
  const admin = await readUser(store, 'admin');
  await store.close();
  t.truthy(admin);
  t.true(admin!.mustChange);
  t.true(admin!.mustEnrolMfa);
  t.is(admin!.password.alg, 'argon2id');
  t.true(await verifyPassword(admin!, report.admin.oneTimePassword));

  // Serving with the installed certificate: an order over MLLP/TLS, then a worklist query over DICOM TLS.
  const daemon = await Daemon.start(configFile);
  const client = await MllpTlsClient.connect(daemon.ports.hl7, { certFile: ris.certFile, keyFile: ris.keyFile, caFile: ca.certFile });
  t.is(msa(await client.send(ormNew(1))), 'AA');
  client.close();

  // The first admin signs in on the admin listener with the one-time password, and must change it and
  // enrol TOTP before anything else answers.
  const browser = await AdminClient.connect(daemon.ports.admin, ca.certFile);
  const first = await browser.signIn('admin', report.admin.oneTimePassword);
  t.is(first.status, 200, JSON.stringify(first.body));
  t.is(first.body.stage, 'change-password');
  t.is((await browser.get('/api/v1/status')).status, 403, 'nothing else before the new password');
  const weak = await browser.post('/api/v1/session/password', {
    currentPassword: report.admin.oneTimePassword,
    newPassword: 'password2024!',
  });
  t.is(weak.body.error?.code, 'EDGE_ACCESS_PASSWORD_POLICY');
  const changed = await browser.post('/api/v1/session/password', {
    currentPassword: report.admin.oneTimePassword,
    newPassword: 'Rad-Test field engineer 7#q',
  });
  t.is(changed.status, 200, JSON.stringify(changed.body));
  t.is(changed.body.stage, 'enrol-mfa');
  t.is((await browser.get('/api/v1/status')).status, 403, 'nothing else before TOTP enrolment');
  const enrol = await browser.post('/api/v1/session/totp/enrol');
  t.regex(enrol.body.qrSvg, /^<svg /);
  const confirmed = await browser.post('/api/v1/session/totp/confirm', { code: totpNow(enrol.body.secret) });
  t.is(confirmed.body.stage, 'full');
  t.is(confirmed.body.recoveryCodes.length, 10);
  t.is((await browser.get('/api/v1/status')).status, 200);
  t.is((await browser.fresh().signIn('admin', report.admin.oneTimePassword)).status, 401, 'the one-time password is spent');
  browser.close();

  const found = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: { certFile: ct.certFile, keyFile: ct.keyFile, caFile: ca.certFile },
    keys: ['ScheduledProcedureStepSequence[0].Modality=CT', 'AccessionNumber', 'PatientID'],
  });
  t.is(found.finalStatus, 'Success', found.stdout + found.stderr);
  t.is(found.responses.length, 1);
  t.is(await daemon.stop(), 0);

  // Decommission: refused without the word; then crypto-erase, verified.
  const refused = await run(edgectl, ['decommission', '--config', configFile], { timeoutMs: 30_000 });
  t.is(refused.code, 2);
  t.true(existsSync(join(dataDir, 'keys', 'keyring.json')));
  const erased = await run(edgectl, ['decommission', '--config', configFile, '--confirm', 'ERASE'], { timeoutMs: 60_000 });
  t.is(erased.code, 0, erased.stderr + erased.stdout);
  t.regex(erased.stdout, /evicted 3 sealed key/);
  t.false(existsSync(join(dataDir, 'keys', 'keyring.json')));
  t.deepEqual(
    (await tpm.persistentHandles()).filter((h) => h >= 0x81010100 && h < 0x81010140),
    [],
  );
  await t.throwsAsync(openStore({ dataDir, keySource: source, replayWindowMs: 3_600_000, logger: silentLogger }));
  const after = new Supervised(join(repoRoot, 'bin/edged'), ['--config', configFile]);
  t.teardown(() => after.stop('SIGKILL'));
  t.is((await after.waitForEvent('edged.safe-mode', 30_000))['code'], 'EDGE_KEYS_UNAVAILABLE');
});
