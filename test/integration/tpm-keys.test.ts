// TPM backend against a real swtpm + tpm2-tools: seal/unseal, PCR extend → unseal refused → safe mode,
// power cycle → unseal works, recovery reseal, lockout reported clearly.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TpmClient } from '../../daemon/security/tpm-client.ts';
import { isEdgeError } from '../../daemon/core/errors.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { Supervised, run } from '../support/processes.ts';
import { Daemon, repoRoot } from '../support/site.ts';
import { Swtpm } from '../support/swtpm.ts';
import { createTpmSite } from '../support/tpm-site.ts';

const edgectl = join(repoRoot, 'bin/edgectl');
const extend7 = (t: TpmClient) => t.pcrExtend(7, randomBytes(32).toString('hex'));

test('seal → unseal round trip; PCR extend refuses; power cycle with the same state unseals again', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const tpm = new TpmClient({ tcti: swtpm.tcti });
  const secret = randomBytes(32);
  await tpm.seal(secret, 'sha256:7', 0x81010180);
  t.true((await tpm.unseal(0x81010180, 'sha256:7')).equals(secret));
  t.true((await tpm.persistentHandles()).includes(0x81010180));
  await extend7(tpm);
  const err = await t.throwsAsync(tpm.unseal(0x81010180, 'sha256:7'));
  t.true(isEdgeError(err, 'EDGE_TPM_POLICY_MISMATCH'), String(err));
  t.regex(err.message, /tpm2_unseal/);
  await swtpm.restart();
  t.true((await tpm.unseal(0x81010180, 'sha256:7')).equals(secret));
  await tpm.evict(0x81010180);
  const gone = await t.throwsAsync(tpm.unseal(0x81010180, 'sha256:7'));
  t.true(isEdgeError(gone, 'EDGE_TPM_OBJECT_MISSING'), String(gone));
  const none = new TpmClient({ tcti: 'swtpm:host=127.0.0.1,port=1', commandTimeoutMs: 5000 });
  const unavailable = await t.throwsAsync(none.probe());
  t.true(isEdgeError(unavailable, 'EDGE_TPM_UNAVAILABLE'), String(unavailable));
});

test('daemon serves with TPM-sealed keys; boot-state change → safe mode; recovery reseal → serves again', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const site = await createTpmSite(swtpm);
  t.teardown(() => site.cleanup());
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };

  let daemon = await Daemon.start(site.configFile);
  const ready = daemon.process.events('edged.ready')[0]!;
  t.is(ready['keysBackend'], 'tpm');
  const client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
  t.is(msa(await client.send(ormNew(1))), 'AA');
  client.close();
  t.is(await daemon.stop(), 0);

  // Firmware / boot chain changed: PCR 7 differs from the sealing state.
  await extend7(site.tpm);
  const safe = new Supervised(join(repoRoot, 'bin/edged'), ['--config', site.configFile]);
  t.teardown(() => safe.stop('SIGKILL'));
  const event = await safe.waitForEvent('edged.safe-mode', 30_000);
  t.is(event['code'], 'EDGE_TPM_POLICY_MISMATCH');
  t.is(safe.events('edged.ready').length, 0);
  const st = await run(edgectl, ['status', '--config', site.configFile, '--json'], { timeoutMs: 20_000 });
  t.is(st.code, 0, st.stderr);
  const body = JSON.parse(st.stdout) as { mode: string; reason: { code: string } };
  t.is(body.mode, 'safe');
  t.is(body.reason.code, 'EDGE_TPM_POLICY_MISMATCH');
  t.true(existsSync(join(site.dataDir, 'safe-mode-events.jsonl')));

  // Wrong recovery secret is refused; the right one reseals under the new PCR value.
  const dir = await mkdtemp(join(tmpdir(), 'edge-recovery-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'wrong'), 'AAAAA-BBBBB-CCCCC-DDDDD-EEEEE-FFFFF');
  await writeFile(join(dir, 'right'), site.recoverySecret);
  const wrong = await run(edgectl, ['keys', 'reseal', '--config', site.configFile, '--recovery-secret-file', join(dir, 'wrong')], {
    timeoutMs: 60_000,
  });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /recovery secret/);
  const right = await run(edgectl, ['keys', 'reseal', '--config', site.configFile, '--recovery-secret-file', join(dir, 'right')], {
    timeoutMs: 60_000,
  });
  t.is(right.code, 0, right.stderr + right.stdout);
  t.is(await safe.stop('SIGTERM'), 77);

  daemon = await Daemon.start(site.configFile);
  t.false(existsSync(join(site.dataDir, 'safe-mode-events.jsonl')), 'safe-mode events moved into the audit chain');
  const again = await MllpTlsClient.connect(daemon.ports.hl7, ris);
  t.is(msa(await again.send(ormNew(2))), 'AA');
  again.close();
  t.is(await daemon.stop(), 0);
});

test('a TPM in dictionary-attack lockout is reported clearly and the daemon does not serve', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const site = await createTpmSite(swtpm);
  t.teardown(() => site.cleanup());
  const work = await mkdtemp(join(tmpdir(), 'edge-lockout-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  // An object with a password (DA-protected): wrong passwords until the TPM locks out.
  const p = join(work, 'p.ctx');
  const o = join(work, 'o.ctx');
  t.is((await swtpm.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-c', p])).code, 0);
  t.is((await swtpm.tool('tpm2_create', ['-Q', '-C', p, '-p', 'right', '-i', '-', '-c', o], 'secret')).code, 0);
  for (let i = 0; i < 4; i++) await swtpm.tool('tpm2_unseal', ['-c', o, '-p', 'wrong']);
  t.true((await site.tpm.lockoutStatus()).inLockout);

  const safe = new Supervised(join(repoRoot, 'bin/edged'), ['--config', site.configFile]);
  t.teardown(() => safe.stop('SIGKILL'));
  const event = await safe.waitForEvent('edged.safe-mode', 30_000);
  t.is(event['code'], 'EDGE_TPM_LOCKOUT');
  t.regex(String(event['error']), /dictionary-attack lockout/);
  t.is(await safe.stop('SIGTERM'), 77);
});
