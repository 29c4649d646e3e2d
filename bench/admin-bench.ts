// Admin page benchmark (BENCH_ONLY=admin): on a bench site on loopback with 100 modalities configured,
//   1. JavaScript and CSS per view, gzipped as served (every view loads the shared modules; its own module apart);
//   2. navigation → the overview showing live data, in headless Chromium (median and p95 of 10 loads);
//   3. `/metrics` scrape time with the token, after traffic from 100 peers' worth of labels (p50 / p99 of 200);
//   4. HL7 ACK latency at 20 orders/s on one MLLP/TLS connection, without and then with the overview open
//      and refreshing in Chromium (p50 / p99 and the ratio, target ≤ 1.1×).
// The anchor for 4 is the same box and load without the page open, in the same run.
// Usage: node bench/admin-bench.ts [--out FILE] [--phase-ms 20000]
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../daemon/core/log.ts';
import { hashPassword } from '../daemon/core/password-hash.ts';
import { FileKeySource } from '../daemon/security/file-key-source.ts';
import { openStore } from '../daemon/store/index.ts';
import { loadPageAssets } from '../daemon/flows/admin-page.ts';
import { launchChromium } from '../test/support/browser.ts';
import { ormNew } from '../test/support/hl7-peers.ts';
import { createSite, Daemon } from '../test/support/site.ts';
import { MllpConnection, type Site } from './hl7-load.ts';

const { values } = parseArgs({ options: { out: { type: 'string' }, 'phase-ms': { type: 'string', default: '20000' } } });
const PHASE_MS = Number(values['phase-ms']);
const ORDER_RATE_PER_S = 20;
const PEERS = 100;
const PASSWORD = 'a long benchmark password 42';
const TOKEN = 'bench-scrape-token-0123456789';

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const r2 = (x: number): number => Math.round(x * 100) / 100;

// 1. Sizes, as the box serves them.
const assets = loadPageAssets();
const sizes = assets.sizes();
const gz = (p: (path: string) => boolean): number => sizes.filter((s) => p(s.path)).reduce((n, s) => n + s.gzipBytes, 0);
const shared = gz((p) => !p.startsWith('views/'));
const perView = Object.fromEntries(
  sizes.filter((s) => s.path.startsWith('views/')).map((s) => [s.path.slice(6, -3), { viewGzipBytes: s.gzipBytes }]),
);
const allJs = gz((p) => p.endsWith('.js'));
const css = gz((p) => p.endsWith('.css'));

// A bench site: 100 TLS modalities configured, the metrics token, a user for the page.
const site = await createSite((c) => {
  for (let i = 0; i < PEERS; i++)
    c['dicom'].modalities.push({
      name: `mod${i}`,
      aeTitle: `MOD${String(i).padStart(3, '0')}`,
      transport: 'tls',
      certificateCn: `MOD${i}.GENHOSP`,
    });
  c['admin'].metrics = { tokenFile: 'metrics.token' };
  c['hl7'].maxConnectionsPerPeer = 8;
});
await writeFile(join(site.dir, 'metrics.token'), `${TOKEN}\n`, { mode: 0o600 });
{
  const store = await openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  await store.users.create({
    username: 'bench',
    role: 'viewer',
    state: 'active',
    password: await hashPassword(PASSWORD),
    mustChange: false,
    createdAt: Date.now(),
    sessionEpoch: 0,
  });
  await store.close();
}
const daemon = await Daemon.start(site.configFile);
const siteJson = JSON.parse(readFileSync(join(site.dir, 'site.json'), 'utf8')) as Site;
const hl7Site: Site = { ...siteJson, box: { ...siteJson.box, hl7Port: daemon.ports.hl7 } };
const ca = readFileSync(site.pki.caCert);

function scrapeMs(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: daemon.ports.admin,
        path: '/metrics',
        ca,
        servername: 'localhost',
        headers: { host: `127.0.0.1:${daemon.ports.admin}`, authorization: `Bearer ${TOKEN}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`scrape ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let seq = 0;
async function ackPhase(ms: number): Promise<number[]> {
  const conn = await MllpConnection.open(hl7Site);
  const latencies: number[] = [];
  const end = Date.now() + ms;
  const interval = 1000 / ORDER_RATE_PER_S;
  let next = performance.now();
  while (Date.now() < end) {
    const n = ++seq;
    const t0 = performance.now();
    const ack = await conn.exchange(ormNew(n, { controlId: `BENCH${process.pid}-${n}` }));
    latencies.push(performance.now() - t0);
    if (!ack.includes('MSA|AA')) throw new Error(`order ${n} not accepted`);
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await conn.close();
  return latencies;
}

const results: Record<string, unknown> = {};
try {
  // Warm-up (and every label of the HL7 counters in place).
  await ackPhase(3000);
  // 3. /metrics
  const scrapes: number[] = [];
  for (let i = 0; i < 200; i++) scrapes.push(await scrapeMs());
  results['metrics'] = {
    peersConfigured: PEERS,
    scrapes: scrapes.length,
    p50Ms: r2(quantile(scrapes, 0.5)),
    p99Ms: r2(quantile(scrapes, 0.99)),
    targetP99Ms: 50,
  };

  // 4a. ACK latency without the page.
  const without = await ackPhase(PHASE_MS);

  // 2. Navigation → overview with live data, and 4b with the overview open.
  const browser = await launchChromium();
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const origin = `https://localhost:${daemon.ports.admin}`;
  await page.goto(`${origin}/`);
  await page.locator('#username').fill('bench');
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#password').press('Enter');
  await page.locator('header.top').waitFor();
  const navigations: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await page.goto(`${origin}/#/overview`, { waitUntil: 'commit' });
    await page.reload({ waitUntil: 'commit' });
    await page.locator('[data-live]:not([data-live=""])').waitFor();
    navigations.push(performance.now() - t0);
  }
  results['navigation'] = { loads: navigations.length, medianMs: r2(quantile(navigations, 0.5)), p95Ms: r2(quantile(navigations, 0.95)) };
  const withPage = await ackPhase(PHASE_MS);
  await browser.close();
  const p99a = quantile(without, 0.99);
  const p99b = quantile(withPage, 0.99);
  results['hl7AckWithOverview'] = {
    ratePerS: ORDER_RATE_PER_S,
    phaseMs: PHASE_MS,
    without: { n: without.length, p50Ms: r2(quantile(without, 0.5)), p99Ms: r2(p99a) },
    withOverview: { n: withPage.length, p50Ms: r2(quantile(withPage, 0.5)), p99Ms: r2(p99b) },
    p99Ratio: r2(p99b / p99a),
    target: '≤ 1.1',
  };
  results['assets'] = { sharedGzipBytes: shared, allJsGzipBytes: allJs, cssGzipBytes: css, perView, targetJsGzipBytes: 100 * 1024 };
} finally {
  await daemon.stop();
  await site.cleanup();
}
const text = JSON.stringify(results, null, 2);
console.log(text);
if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
