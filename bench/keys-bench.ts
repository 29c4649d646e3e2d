// Keys benchmark on swtpm (issue 4 targets): start-up incl. unseal ≤ 1.5 s; `edgectl provision` factory →
// serving ≤ 60 s; data-key rotation of 100,000 orders ≤ 30 s while serving. Prints one JSON line.
// Env: KEYS_BENCH_ORDERS (default 100000), KEYS_BENCH_STARTS (default 5).
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../daemon/core/log.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { TpmKeySource } from '../daemon/security/tpm-key-source.ts';
import { openStoreWithInternals } from '../daemon/store/testing/store-internals.ts';
import { makeCa } from '../provisioning/dev-pki.ts';
import { MllpTlsClient, msa, ormNew } from '../test/support/hl7-peers.ts';
import { run } from '../test/support/processes.ts';
import { Daemon, repoRoot } from '../test/support/site.ts';
import { Swtpm } from '../test/support/swtpm.ts';
import { createTpmSite } from '../test/support/tpm-site.ts';

const orders = Number(process.env['KEYS_BENCH_ORDERS'] ?? 100_000);
const starts = Number(process.env['KEYS_BENCH_STARTS'] ?? 5);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const out: Record<string, unknown> = { orders };

// 1. provision, factory → serving (self-test included: edged started and every listener answered)
{
  const swtpm = await Swtpm.start();
  const dir = await mkdtemp(join(tmpdir(), 'keys-bench-prov-'));
  try {
    await mkdir(join(dir, 'pki'));
    const ca = await makeCa(join(dir, 'pki'), 'ca', 'Bench CA', 30);
    const profile = {
      site: { name: 'BENCH', environment: 'production' },
      dataDir: './data',
      caFile: ca.certFile,
      tpm: { tcti: swtpm.tcti },
      device: { hostname: 'localhost', addresses: ['127.0.0.1'] },
      config: { hl7: { listen: { host: '127.0.0.1', port: 0 } }, dicom: { tls: { host: '127.0.0.1', port: 0 } } },
    };
    await writeFile(join(dir, 'profile.json'), JSON.stringify(profile));
    const t0 = Date.now();
    const r = await run(
      join(repoRoot, 'bin/edgectl'),
      ['provision', '--profile', join(dir, 'profile.json'), '--config', join(dir, 'edge.json'), '--json'],
      { timeoutMs: 120_000 },
    );
    out['provisionMs'] = Date.now() - t0;
    out['provisionOk'] = r.code === 0;
  } finally {
    await swtpm.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// 2. start-up incl. unseal, and 3. rotation while serving
const swtpm = await Swtpm.start();
const site = await createTpmSite(swtpm);
try {
  const startMs: number[] = [];
  const wallMs: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = Date.now();
    const d = await Daemon.start(site.configFile);
    wallMs.push(Date.now() - t0);
    startMs.push(Number(d.process.events('edged.ready')[0]?.['startMs'] ?? NaN));
    await d.stop();
  }
  out['startupMedianMs'] = median(startMs);
  out['startupProcessWallMedianMs'] = median(wallMs);

  // Seed `orders` sealed values (~1 KiB each, the size of a stored order) straight through the store.
  const { store, internals } = await openStoreWithInternals({
    dataDir: site.dataDir,
    keySource: new TpmKeySource({ tpm: new TpmClient({ tcti: swtpm.tcti }), keysDir: join(site.dataDir, 'keys'), logger: silentLogger }),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const filler = randomBytes(700).toString('base64');
  for (let i = 0; i < orders; i += 5000) {
    await internals.queue.commit(async () => ({
      ops: Array.from({ length: Math.min(5000, orders - i) }, (_, j) => {
        const key = `o\u0000bench${String(i + j).padStart(8, '0')}`;
        return { type: 'put' as const, key, value: internals.codec.seal(key, Buffer.from(JSON.stringify({ n: i + j, filler }))) };
      }),
      result: undefined,
    }));
  }
  await store.close();

  const d = await Daemon.start(site.configFile);
  const client = await MllpTlsClient.connect(d.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  let stop = false;
  const latencies: number[] = [];
  let refused = 0;
  const traffic = (async () => {
    for (let n = 1; !stop; n++) {
      const t0 = Date.now();
      if (msa(await client.send(ormNew(n))) !== 'AA') refused++;
      latencies.push(Date.now() - t0);
    }
  })();
  const t0 = Date.now();
  const r = await run(join(repoRoot, 'bin/edgectl'), ['keys', 'rotate-data-key', '--config', site.configFile, '--json'], {
    timeoutMs: 600_000,
  });
  out['rotationWallMs'] = Date.now() - t0;
  stop = true;
  await traffic;
  client.close();
  await d.stop();
  const res = JSON.parse(r.stdout) as { ms: number; rewritten: number };
  out['rotationMs'] = res.ms;
  out['rotationRewritten'] = res.rewritten;
  out['ordersDuringRotation'] = latencies.length;
  out['ordersRefusedDuringRotation'] = refused;
  out['ackLatencyMedianMs'] = median(latencies);
  out['ackLatencyMaxMs'] = Math.max(...latencies);
  out['targets'] = { startupMs: 1500, provisionMs: 60_000, rotationMs: 30_000 };
} finally {
  await site.cleanup();
  await swtpm.stop();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
