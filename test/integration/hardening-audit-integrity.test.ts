// The audit trail's integrity against an attacker: a bundle forged with another key from the site CA, a
// chain whose tail was cut with the box stopped (file backend and swtpm TPM backend), and audit records
// damaged on disk. The tamper steps edit the store as an attacker with disk access and no key material
// would: the classic-level database opened directly, values deleted or one byte flipped.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { exportBundle, keyFileSigner, signDetached } from '../../daemon/audit/index.ts';
import { BundleFile } from '../../daemon/audit/bundle.ts';
import { readTar, tarBytes } from '../../daemon/audit/tar.ts';
import { makeAuditTestPki } from '../support/test-pki.ts';
import type { KeySource } from '../../daemon/core/keys.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { TpmClient } from '../../daemon/security/tpm-client.ts';
import { TpmKeySource } from '../../daemon/security/tpm-key-source.ts';
import { openDatabase } from '../../daemon/store/database.ts';
import { auditKey, openStore } from '../../daemon/store/index.ts';
import { sampleEvent } from '../support/audit-store.ts';
import { needsCommand, whenMet } from '../support/preconditions.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';
import { Swtpm } from '../support/swtpm.ts';
import { createTpmSite } from '../support/tpm-site.ts';

const SEP = '\u0000';
const CHECKPOINT_PREFIX = `z${SEP}audit.checkpoint${SEP}`;
const edgectl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), ['audit', 'verify', ...args], { timeoutMs: 60_000 });

/** Append `count` records to a stopped box's chain with its own key source (the box's past traffic). */
async function preload(dataDir: string, keySource: KeySource, count: number): Promise<void> {
  const store = await openStore({ dataDir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  for (let i = 1; i <= count; i++) store.audit.record(sampleEvent(i));
  await store.flush();
  await store.close();
}

/** Every audit record of a stopped box, decrypted with its key source, as parsed lines. */
async function chainOf(dataDir: string, keySource: KeySource): Promise<Array<{ seq: number; event: { type: string; detail?: string } }>> {
  const store = await openStore({ dataDir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    const out = [];
    for await (const r of store.audit.read(store.audit.firstSeq))
      out.push(JSON.parse(r.line) as { seq: number; event: { type: string; detail?: string } });
    return out;
  } finally {
    await store.close();
  }
}

/** The attacker: the database opened raw; the last `n` audit records and every checkpoint deleted. */
async function cutTail(dataDir: string, n: number): Promise<{ from: number; to: number }> {
  const db = await openDatabase(dataDir);
  try {
    const keys: string[] = [];
    for await (const k of db.keys({ gt: `a${SEP}`, lt: `a${SEP}\uffff` })) keys.push(k);
    const cut = keys.slice(-n);
    const ops = cut.map((key) => ({ type: 'del' as const, key }));
    for await (const k of db.keys({ gte: CHECKPOINT_PREFIX, lt: `${CHECKPOINT_PREFIX}\uffff` })) ops.push({ type: 'del', key: k });
    await db.batch(ops);
    return { from: Number(cut[0]!.slice(2)), to: Number(cut.at(-1)!.slice(2)) };
  } finally {
    await db.close();
  }
}

/** The attacker: one byte of a stored audit value flipped (its ciphertext). Returns the damaged bytes. */
async function flipByte(dataDir: string, seq: number | 'newest'): Promise<{ seq: number; damaged: Buffer }> {
  const db = await openDatabase(dataDir);
  try {
    let key = seq === 'newest' ? undefined : auditKey(seq);
    if (key === undefined) for await (const k of db.keys({ gt: `a${SEP}`, lt: `a${SEP}\uffff`, reverse: true, limit: 1 })) key = k;
    const value = Buffer.from((await db.get(key!))!);
    value[Math.floor(value.length / 2)]! ^= 0x01;
    await db.put(key!, value);
    return { seq: Number(key!.slice(2)), damaged: value };
  } finally {
    await db.close();
  }
}

async function stoppedCleanly(t: { is(a: unknown, b: unknown, m?: string): void }, daemon: Daemon): Promise<void> {
  t.is(await daemon.stop(), 0, `the daemon stops on the first SIGTERM; stderr: ${daemon.process.stderr.slice(-1000)}`);
}

// ---- Item: a forged bundle must not verify ------------------------------------------------------------

/** Re-hash the whole chain with new content and re-sign the manifest with `signerFiles`. */
async function forgedBundle(genuine: string, out: string, signerFiles: { cert: string; key: string }): Promise<void> {
  const entries = await readTar(genuine);
  let prev = '0'.repeat(64);
  const manifest = JSON.parse(entries.get(BundleFile.manifest)!.toString('utf8')) as Record<string, any>;
  prev = manifest['previousHash'] as string;
  const lines = entries
    .get(BundleFile.records)!
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l) as { seq: number; event: Record<string, unknown> };
      const line = JSON.stringify({ seq: r.seq, prevHash: prev, event: { ...r.event, detail: 'nothing happened' } });
      prev = createHash('sha256').update(line).digest('hex');
      return line;
    });
  const records = Buffer.from(`${lines.join('\n')}\n`);
  const signer = keyFileSigner(signerFiles.cert, signerFiles.key);
  manifest['firstHash'] = createHash('sha256').update(lines[0]!).digest('hex');
  manifest['lastHash'] = prev;
  manifest['files'][BundleFile.records] = { bytes: records.length, sha256: createHash('sha256').update(records).digest('hex') };
  manifest['device'] = { ...manifest['device'], certificateSha256: createHash('sha256').update(signer.certificates[0]!).digest('hex') };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  await writeFile(
    out,
    tarBytes([
      { name: BundleFile.records, data: records },
      { name: BundleFile.xml, data: entries.get(BundleFile.xml)! },
      { name: BundleFile.manifest, data: manifestBytes },
      { name: BundleFile.signature, data: await signDetached(signer, manifestBytes) },
    ]),
  );
}

test('a bundle forged with the CT01 or RIS key from the site CA is refused; without --ca verify does not say verified', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const dataDir = join(site.dir, 'data');
  const keySource = new FileKeySource(join(site.dir, 'keys/data.key'));
  await preload(dataDir, keySource, 40);
  const store = await openStore({ dataDir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  const work = await mkdtemp(join(site.dir, 'bundles-'));
  const device = keyFileSigner(site.pki.serverCert, site.pki.serverKey);
  const first = join(work, 'b1.tar');
  const second = join(work, 'b2.tar');
  try {
    await exportBundle({ trail: store.audit, signer: device, site: 'edge-dev', fromSeq: 1, toSeq: 20, path: first });
    await exportBundle({ trail: store.audit, signer: device, site: 'edge-dev', fromSeq: 21, toSeq: 40, path: second });
  } finally {
    await store.close();
  }
  const ca = site.pki.caCert;
  const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
  const byCt01 = join(work, 'forged-ct01.tar');
  await forgedBundle(second, byCt01, { cert: ct01.certFile!, key: ct01.keyFile! });
  const f1 = await edgectl(byCt01, '--ca', ca);
  t.is(f1.code, 1, f1.stdout);
  t.regex(f1.stdout, /FAIL {2}signer: .*CT01.* is not a device certificate/);
  t.notRegex(f1.stdout, /^OK/m);

  const byRis = join(work, 'forged-ris.tar');
  await forgedBundle(second, byRis, { cert: site.ris.certFile, key: site.ris.keyFile });
  const f2 = await edgectl(byRis, '--ca', ca, '--after', first);
  t.is(f2.code, 1, f2.stdout);
  t.regex(
    f2.stdout,
    /FAIL {2}signer: the signing certificate changed since the previous bundle .*without a key-change statement signed by the previous device key/,
  );
  const f3 = await edgectl(byRis, '--ca', ca, '--device-cert', site.pki.serverCert);
  t.is(f3.code, 1, f3.stdout);
  t.regex(f3.stdout, /FAIL {2}signer: .* is not the pinned device certificate/);

  // The genuine pair verifies against the pinned device certificate and as a series.
  const g1 = await edgectl(first, '--ca', ca, '--device-cert', site.pki.serverCert);
  t.is(g1.code, 0, g1.stdout + g1.stderr);
  const g2 = await edgectl(second, '--ca', ca, '--after', first);
  t.is(g2.code, 0, g2.stdout + g2.stderr);

  // No --ca: the signer was not checked, and the exit status says so (never 0).
  const loose = await edgectl(byRis);
  t.is(loose.code, 3, loose.stdout);
  t.notRegex(loose.stdout, /^OK/m);
  t.regex(loose.stdout, /NOT VERIFIED AS THE DEVICE/);
});

// ---- Item: a cut tail must be detected at start -------------------------------------------------------

interface AlertRecord {
  seq: number;
  event: { type: string; detail?: string };
}

function alertsOf(chain: AlertRecord[], type: string): AlertRecord[] {
  return chain.filter((r) => r.event.type === type);
}

test('file backend: the last 500 records and the checkpoints deleted on a stopped box → alert naming the gap, still serving', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const dataDir = join(site.dir, 'data');
  const keySource = new FileKeySource(join(site.dir, 'keys/data.key'));
  await preload(dataDir, keySource, 1500);
  const first = await Daemon.start(site.configFile);
  await stoppedCleanly(t, first);

  const cut = await cutTail(dataDir, 500);
  const daemon = await Daemon.start(site.configFile);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await daemon.stop();
  });
  const logged = daemon.process.events('audit.chain-truncated');
  t.is(
    logged.length,
    1,
    `expected one audit.chain-truncated log line; got: ${daemon.process.lines.filter((l) => l.includes('audit.')).join('\n')}`,
  );
  t.regex(String(logged[0]?.['problem']), new RegExp(`seq ${cut.from}\\.\\.${cut.to}`));
  t.is(await servingProblem(site, daemon, 15_000), undefined);
  const status = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile, '--json'], { timeoutMs: 30_000 });
  const integrity = (JSON.parse(status.stdout) as { audit: { integrity: { truncated: string | null } } }).audit.integrity;
  t.regex(integrity.truncated ?? '', new RegExp(`seq ${cut.from}\\.\\.${cut.to}`), 'edgectl status says the chain was cut');
  await stoppedCleanly(t, daemon);
  stopped = true;
  const alerts = alertsOf(await chainOf(dataDir, keySource), 'audit.chain-truncated');
  t.is(alerts.length, 1);
  t.regex(alerts[0]?.event.detail ?? '', new RegExp(`seq ${cut.from}\\.\\.${cut.to}`));
});

const withSwtpm = whenMet(needsCommand('swtpm', 'tpm2_getrandom'));

withSwtpm('TPM backend (swtpm): records, checkpoints and the head file deleted → the NV counter exposes the cut at start', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const site = await createTpmSite(swtpm);
  t.teardown(() => site.cleanup());
  const keySource = new TpmKeySource({
    tpm: new TpmClient({ tcti: swtpm.tcti }),
    keysDir: join(site.dataDir, 'keys'),
    logger: silentLogger,
  });
  await preload(site.dataDir, keySource, 1500);
  const first = await Daemon.start(site.configFile);
  // The clean stop signs the head: the counter is defined and advanced, the head file written.
  await stoppedCleanly(t, first);

  const cut = await cutTail(site.dataDir, 500);
  // The attacker also removes every file that names the head (they are on the same disk).
  await rm(join(site.dataDir, 'keys', 'audit-head.json'), { force: true });
  const daemon = await Daemon.start(site.configFile);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await daemon.stop();
  });
  const logged = daemon.process.events('audit.chain-truncated');
  t.is(
    logged.length,
    1,
    `expected one audit.chain-truncated log line; got: ${daemon.process.lines.filter((l) => l.includes('audit.')).join('\n')}`,
  );
  t.regex(String(logged[0]?.['problem']), new RegExp(`after seq ${cut.from - 1}`));
  t.regex(String(logged[0]?.['problem']), /TPM NV counter/);
  t.is(await servingProblem(site, daemon, 15_000), undefined);
  await stoppedCleanly(t, daemon);
  stopped = true;
  const alerts = alertsOf(await chainOf(site.dataDir, keySource), 'audit.chain-truncated');
  t.is(alerts.length, 1);
});

// ---- Item: damaged records are found at start, quarantined, and the box keeps serving -----------------

function get(
  port: number,
  path: string,
  client: { cert: string; key: string },
  ca: string,
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        servername: 'localhost',
        ca,
        cert: client.cert,
        key: client.key,
        timeout: 30_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function damagedSite(t: { teardown(fn: () => unknown): void }) {
  const pki = makeAuditTestPki();
  t.teardown(() => pki.cleanup());
  const site = await createSite((config) => {
    config['audit'] = { pull: { listen: { host: '127.0.0.1', port: 0 }, centralCaFile: pki.centralCa } };
  });
  t.teardown(() => site.cleanup());
  const dataDir = join(site.dir, 'data');
  const keySource = new FileKeySource(join(site.dir, 'keys/data.key'));
  await preload(dataDir, keySource, 200);
  return { pki, site, dataDir, keySource };
}

async function quarantined(dataDir: string): Promise<Map<number, Buffer>> {
  const db = await openDatabase(dataDir);
  const out = new Map<number, Buffer>();
  try {
    const prefix = `z${SEP}audit.quarantine${SEP}`;
    for await (const [k, v] of db.iterator({ gte: prefix, lt: `${prefix}\uffff` })) out.set(Number(k.slice(prefix.length)), Buffer.from(v));
  } finally {
    await db.close();
  }
  return out;
}

for (const where of ['middle', 'newest'] as const) {
  test(`one flipped byte in the ${where} audit record: start, alert naming the seq, damaged value kept, bundle verifies around it`, async (t) => {
    const { pki, site, dataDir, keySource } = await damagedSite(t);
    const flipped = await flipByte(dataDir, where === 'middle' ? 100 : 'newest');
    const daemon = await Daemon.start(site.configFile);
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await daemon.stop();
    });
    const logged = daemon.process.events('audit.records-damaged');
    t.is(logged.length, 1, `expected audit.records-damaged; got: ${daemon.process.lines.filter((l) => l.includes('audit.')).join('\n')}`);
    t.regex(String(logged[0]?.['problem']), new RegExp(`seq ${flipped.seq}\\.\\.${flipped.seq}\\b`));
    t.is(await servingProblem(site, daemon, 15_000), undefined);
    const status = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile, '--json'], { timeoutMs: 30_000 });
    const integrity = (JSON.parse(status.stdout) as { audit: { integrity: { damaged: Array<{ fromSeq: number }> } } }).audit.integrity;
    t.deepEqual(
      integrity.damaged.map((d) => d.fromSeq),
      [flipped.seq],
      'edgectl status lists the damaged range',
    );

    const ready = daemon.process.events('edged.ready')[0] as { auditPull: number };
    const central = { cert: await readFile(pki.central.cert, 'utf8'), key: await readFile(pki.central.key, 'utf8') };
    const ca = await readFile(site.pki.caCert, 'utf8');
    const pulled = await get(ready.auditPull, '/v1/audit/bundle?fromSeq=1', central, ca);
    t.is(pulled.status, 200, pulled.body.toString('utf8').slice(0, 300));
    const bundle = join(site.dir, 'pulled.tar');
    await writeFile(bundle, pulled.body);
    const v = await edgectl(bundle, '--ca', site.pki.caCert, '--device-cert', site.pki.serverCert);
    t.is(v.code, 4, v.stdout + v.stderr);
    t.regex(v.stdout, new RegExp(`GAP  seq ${flipped.seq}\\.\\.${flipped.seq}: `));
    t.notRegex(v.stdout, /^FAIL/m);

    await stoppedCleanly(t, daemon);
    stopped = true;
    const kept = await quarantined(dataDir);
    t.deepEqual(kept.get(flipped.seq), flipped.damaged, 'the damaged value is kept byte for byte under the quarantine prefix');
    const chain = await chainOf(dataDir, keySource);
    const alerts = alertsOf(chain, 'audit.records-damaged');
    t.is(alerts.length, 1);
    t.regex(alerts[0]?.event.detail ?? '', new RegExp(`seq ${flipped.seq}\\.\\.${flipped.seq}\\b`));
    // A second start finds nothing new: the damage is handled once.
    const again = await Daemon.start(site.configFile);
    t.is(again.process.events('audit.records-damaged').length, 0);
    t.is(await again.stop(), 0);
    t.true(existsSync(dataDir));
  });
}

test('a new device key since the newest checkpoint is raised as a Security Alert at start', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const first = await Daemon.start(site.configFile);
  await stoppedCleanly(t, first);
  // The box's key material replaced by another key of the same site CA (here the RIS's pair).
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['tls'].certFile = site.ris.certFile;
  config['tls'].keyFile = site.ris.keyFile;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(site.configFile);
  const logged = daemon.process.events('audit.signing-key-changed');
  await stoppedCleanly(t, daemon);
  t.is(logged.length, 1);
  t.regex(
    String(logged[0]?.['problem']),
    /the device key changed since the checkpoint at seq \d+: certificate [0-9a-f]{64} → [0-9a-f]{64} \(.*CN=RIS/,
  );
  const chain = await chainOf(join(site.dir, 'data'), new FileKeySource(join(site.dir, 'keys/data.key')));
  t.is(alertsOf(chain, 'audit.signing-key-changed').length, 1);
});
