// A bounded flood of unauthenticated connections must cost the audit trail a bounded number of records,
// not one per connection, while every refusal stays counted. From 127.0.0.2–.5: plain TCP connect-and-
// close on the DICOM TLS port (a handshake that never starts; more at once than the per-address cap, so
// some are refused before TLS and named by source) and TLS handshakes with a rogue-CA client certificate
// on the HL7 and DICOM TLS ports, spread over about ten seconds. The clinical path (RIS order + CT01
// worklist from 127.0.0.1) is probed before, throughout and after; the chain is read from the store after
// a clean SIGTERM. A third test starts the box over its audit disk budget.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { type Store, openStore } from '../../daemon/store/index.ts';
import { sampleEvent } from '../support/audit-store.ts';
import { run } from '../support/processes.ts';
import { servingProblem } from '../support/still-serving.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'] as const;
/** Connections per (source, attack); 4 sources × 3 attacks × 170 ≈ 2,000 in all. */
const PER_SOURCE = 170;
/** Accepted DICOM associations per source address the site allows (the flood never gets that far). */
const PER_ADDRESS_CAP = 1;
const FLOOD_TYPES: ReadonlySet<string> = new Set(['hl7.peer-refused', 'dicom.tls-handshake-failed', 'dicom.connection-refused']);
const ATTEMPT_TIMEOUT_MS = 10_000;
/** The flood's connections are spread over this long (about 200 a second). */
const FLOOD_MS = 10_000;
const DEFAULT_BUDGET_BYTES = 16 * 1024 ** 3;

/** Resolves when the connection has ended, however it ended; the caller's side observed one refusal. */
function ended(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), ATTEMPT_TIMEOUT_MS);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A TCP connection that closes without a byte: a port scanner or a TCP health check. */
function connectAndClose(port: number, localAddress: string): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.once('connect', () => socket.end());
  return ended(socket);
}

/** A TLS client with a certificate from a CA the box does not trust: refused in the handshake. */
function rogueHandshake(port: number, localAddress: string, rogue: { cert: Buffer; key: Buffer }): Promise<void> {
  const tcp = net.connect({ host: '127.0.0.1', port, localAddress });
  tcp.on('error', () => undefined);
  const socket = tls.connect({ socket: tcp, cert: rogue.cert, key: rogue.key, rejectUnauthorized: false });
  // TLS 1.3 clients finish before the server has checked the certificate; the server's alert closes it.
  socket.once('secureConnect', () => setTimeout(() => socket.destroy(), 200));
  return ended(socket);
}

/** `count` attempts, at most `inFlight` at once, started no faster than evenly over FLOOD_MS. */
async function flood(count: number, inFlight: number, attempt: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      const due = t0 + (started * FLOOD_MS) / count - performance.now();
      started++;
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      await attempt();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return started;
}

interface Tally {
  /** Records in the chain for this key. */
  records: number;
  /** Refusals those records stand for: 1 per single record, the carried count per summary. */
  occurrences: number;
  bytes: number;
}

function openSiteStore(site: { dir: string }): Promise<Store> {
  return openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys', 'data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
}

async function statusOf(configFile: string): Promise<Record<string, any>> {
  const r = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', configFile, '--json'], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`edgectl status: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

interface FloodResult {
  readonly attempts: ReadonlyMap<string, number>;
  readonly total: number;
  readonly floodMs: number;
  readonly stopAt: number;
  readonly byKey: ReadonlyMap<string, Tally>;
  readonly occurrencesOf: (type: string) => number;
  readonly summaries: readonly AuditEvent[];
  readonly status: Record<string, any>;
}

/** Start a site, flood it, probe the clinical path throughout, stop it, and tally the chain. */
async function floodAndTally(t: ExecutionContext, adjust: (config: Record<string, any>) => void = () => undefined): Promise<FloodResult> {
  const site = await createSite((c) => {
    c['dicom'].maxAssociationsPerAddress = PER_ADDRESS_CAP;
    // A sender and a TLS modality allowed from anywhere (their certificates decide) turn off the source
    // pre-filter on the HL7 and DICOM TLS ports, so the flood reaches the TLS handshake it is made of.
    c['hl7'].peers.push({
      name: 'anywhere-sender',
      certificateCn: 'ANYWHERE.TEST',
      sendingApplication: 'ANYAPP',
      sendingFacility: 'ANYFAC',
    });
    c['dicom'].modalities.push({ name: 'anywhere-modality', aeTitle: 'ANYWHERE', transport: 'tls', certificateCn: 'ANYWHERE-MOD.TEST' });
    adjust(c);
  });
  t.teardown(() => site.cleanup());
  const daemon = await Daemon.start(site.configFile);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await daemon.stop();
  });
  const rogue = { cert: await readFile(site.rogue.certFile), key: await readFile(site.rogue.keyFile) };

  t.is(await servingProblem(site, daemon, 10_000), undefined, 'before the flood');
  const t0 = performance.now();
  const attempts = new Map<string, number>();
  let flooding = true;
  const attacks = Promise.all(
    SOURCES.flatMap((source) => [
      flood(PER_SOURCE, PER_ADDRESS_CAP + 2, () => connectAndClose(daemon.ports.dicomTls, source)).then((n) =>
        attempts.set(`dicom|${source}|plain`, n),
      ),
      flood(PER_SOURCE, 1, () => rogueHandshake(daemon.ports.dicomTls, source, rogue)).then((n) =>
        attempts.set(`dicom|${source}|rogue`, n),
      ),
      flood(PER_SOURCE, 2, () => rogueHandshake(daemon.ports.hl7, source, rogue)).then((n) => attempts.set(`hl7|${source}|rogue`, n)),
    ]),
  ).finally(() => (flooding = false));
  const problems: string[] = [];
  let probes = 0;
  while (flooding) {
    const p = await servingProblem(site, daemon, 15_000);
    probes++;
    if (p !== undefined) problems.push(p);
  }
  await attacks;
  const floodMs = performance.now() - t0;
  t.deepEqual(problems, [], `the clinical path during the flood (${probes} probes)`);
  t.is(await servingProblem(site, daemon, 10_000), undefined, 'after the flood');
  const total = [...attempts.values()].reduce((a, b) => a + b, 0);
  t.log(`${total} refused connections in ${Math.round(floodMs)} ms; ${probes} clinical probes during the flood`);
  const status = await statusOf(site.configFile);

  stopped = true;
  const stopAt = Date.now();
  t.is(await daemon.stop(), 0, 'clean stop on the first SIGTERM');

  const store = await openSiteStore(site);
  const byKey = new Map<string, Tally>();
  const occurrences = new Map<string, number>();
  const occurrencesOf = (type: string): number => occurrences.get(type) ?? 0;
  const summaries: AuditEvent[] = [];
  try {
    for await (const r of store.audit.read(1)) {
      const e = (JSON.parse(r.line) as AuditRecord).event;
      if (!FLOOD_TYPES.has(e.type)) continue;
      // Keyed as the coalescer keys them: type, the address the record carries, reason.
      const address = e.participants.find((p) => p.requestor)?.address ?? '';
      if (address === '127.0.0.1') continue;
      const key = `${e.type}|${address}|${e.detail ?? ''}`;
      const tally = byKey.get(key) ?? { records: 0, occurrences: 0, bytes: 0 };
      const n = e.occurrences?.count ?? 1;
      tally.records++;
      tally.occurrences += n;
      tally.bytes += Buffer.byteLength(r.line);
      byKey.set(key, tally);
      occurrences.set(e.type, occurrencesOf(e.type) + n);
      if (e.occurrences !== undefined) summaries.push(e);
    }
  } finally {
    await store.close();
  }
  const records = [...byKey.values()].reduce((a, k) => a + k.records, 0);
  const bytes = [...byKey.values()].reduce((a, k) => a + k.bytes, 0);
  t.log(
    `${records} audit records (${bytes} bytes) for ${byKey.size} source+reason keys: ${[...byKey].map(([k, v]) => `${k} ${v.records}/${v.occurrences}`).join('; ')}`,
  );

  // Every refusal is accounted for: nothing lost to coalescing. Each DICOM connection ends in one failed
  // handshake, including those refused at the per-address cap before TLS (which are recorded as well).
  const sum = (prefix: string): number => [...attempts].filter(([k]) => k.startsWith(prefix)).reduce((a, [, n]) => a + n, 0);
  t.is(occurrencesOf('hl7.peer-refused'), sum('hl7|'), 'HL7 refusals in the chain = rogue handshakes made');
  t.is(occurrencesOf('dicom.tls-handshake-failed'), sum('dicom|'), 'DICOM handshake failures in the chain = connections made');
  // Refused certificates are named by source: a key per source address, not one for the whole flood.
  for (const source of SOURCES) {
    const keys = [...byKey.keys()].filter((k) => k.startsWith(`dicom.tls-handshake-failed|${source}|`));
    t.true(keys.length > 0, `refused handshakes from ${source} are recorded under their own source`);
  }
  return { attempts, total, floodMs, stopAt, byKey, occurrencesOf, summaries, status };
}

test('a flood of refused connections costs a bounded number of audit records, and each refusal is counted', async (t) => {
  const r = await floodAndTally(t);
  // Bounded by the interval, not by the flood: within one 60 s interval (the default), a key costs its
  // first record and one summary at most.
  const records = [...r.byKey.values()].reduce((a, k) => a + k.records, 0);
  for (const [key, tally] of r.byKey) t.true(tally.records <= 2, `${key}: ${tally.records} records for ${tally.occurrences} refusals`);
  t.true(records <= 2 * r.byKey.size && records < r.total / 20, `${records} records for ${r.total} refusals`);
  // The chain's disk budget is visible to the operator, measured.
  t.like(r.status['auditDiskBudget'], { level: 'ok', budgetBytes: DEFAULT_BUDGET_BYTES }, 'edgectl status shows the audit disk budget');
  t.is(typeof r.status['auditDiskBudget']?.usedBytes, 'number');
});

test('with a short interval, each key costs two records per interval, and summaries are written while the flood goes on', async (t) => {
  const intervalMs = 2000;
  const r = await floodAndTally(t, (c) => {
    c['audit'] = { ...c['audit'], coalesceIntervalMs: intervalMs };
  });
  const intervals = Math.ceil(r.floodMs / intervalMs) + 1;
  for (const [key, tally] of r.byKey) t.true(tally.records <= 2 * intervals, `${key}: ${tally.records} records in ${intervals} intervals`);
  t.true(
    r.summaries.some((e) => e.at < r.stopAt),
    'summaries written at the end of their interval, before the stop',
  );
  t.true(r.summaries.every((e) => e.occurrences!.firstAt <= e.occurrences!.lastAt && e.occurrences!.lastAt <= e.at));
  t.true(
    [...r.byKey.values()].some((k) => k.records > 2),
    'a key spanning several intervals has several summaries',
  );
});

test('over its disk budget, the box alarms in the chain, the log and the status, and keeps recording and serving', async (t) => {
  const site = await createSite((c) => {
    c['audit'] = { ...c['audit'], diskBudgetBytes: 1_048_576 };
  });
  t.teardown(() => site.cleanup());
  // A chain of about 3 MB written before the start (as years of records would be).
  const before = await openSiteStore(site);
  for (let i = 0; i < 6000; i++) before.audit.record(sampleEvent(i));
  await before.close();

  const daemon = await Daemon.start(site.configFile);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await daemon.stop();
  });
  const line = await daemon.process.waitForEvent('audit.disk-budget-exceeded', 10_000);
  t.true(Number(line['usedBytes']) >= 1_048_576, `measured ${line['usedBytes']} bytes`);
  const status = await statusOf(site.configFile);
  t.like(status['auditDiskBudget'], { level: 'exceeded', budgetBytes: 1_048_576 });
  t.is(await servingProblem(site, daemon, 10_000), undefined, 'over budget, the box still serves');
  stopped = true;
  t.is(await daemon.stop(), 0);

  const after = await openSiteStore(site);
  try {
    const types: string[] = [];
    for await (const r of after.audit.read(6001)) types.push((JSON.parse(r.line) as AuditRecord).event.type);
    const alarm = types.indexOf('audit.disk-budget-exceeded');
    t.true(alarm >= 0, 'the alarm is in the chain');
    t.true(types.slice(alarm).includes('hl7.order-committed') && types.at(-1) === 'application.stop', 'records after the alarm are kept');
  } finally {
    await after.close();
  }
});
