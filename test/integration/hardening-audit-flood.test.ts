// A bounded flood of unauthenticated connections must cost the audit trail a bounded number of records,
// not one per connection, while every refusal stays counted. From 127.0.0.2–.5: plain TCP connect-and-
// close on the DICOM TLS port (a handshake that never starts; more at once than the per-address cap, so
// some are refused before TLS and named by source) and TLS handshakes with a rogue-CA client certificate
// on the HL7 and DICOM TLS ports. The clinical path (RIS order + CT01 worklist from 127.0.0.1) is probed
// during and after; the chain is read from the store after a clean SIGTERM.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import test from 'ava';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { run } from '../support/processes.ts';
import { servingProblem } from '../support/still-serving.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'] as const;
/** Connections per (source, attack); 4 sources × 3 attacks × 170 ≈ 2,000 in all. */
const PER_SOURCE = 170;
/** DICOM associations per source address the site allows (so that the scan trips the per-address cap). */
const PER_ADDRESS_CAP = 1;
const FLOOD_TYPES: ReadonlySet<string> = new Set(['hl7.peer-refused', 'dicom.tls-handshake-failed', 'dicom.connection-refused']);
const ATTEMPT_TIMEOUT_MS = 10_000;

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

async function flood(count: number, inFlight: number, attempt: () => Promise<void>): Promise<number> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
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

test('a flood of refused connections costs a bounded number of audit records, and each refusal is counted', async (t) => {
  const site = await createSite((c) => {
    c['dicom'].maxAssociationsPerAddress = PER_ADDRESS_CAP;
  });
  t.teardown(() => site.cleanup());
  const daemon = await Daemon.start(site.configFile);
  let stopped = false;
  t.teardown(async () => { if (!stopped) await daemon.stop(); });
  const rogue = { cert: await readFile(site.rogue.certFile), key: await readFile(site.rogue.keyFile) };

  t.is(await servingProblem(site, daemon, 10_000), undefined, 'before the flood');
  const t0 = performance.now();
  const attempts = new Map<string, number>();
  const attacks = SOURCES.flatMap((source) => [
    flood(PER_SOURCE, PER_ADDRESS_CAP + 2, () => connectAndClose(daemon.ports.dicomTls, source)).then((n) => attempts.set(`dicom|${source}|plain`, n)),
    flood(PER_SOURCE, 1, () => rogueHandshake(daemon.ports.dicomTls, source, rogue)).then((n) => attempts.set(`dicom|${source}|rogue`, n)),
    flood(PER_SOURCE, 2, () => rogueHandshake(daemon.ports.hl7, source, rogue)).then((n) => attempts.set(`hl7|${source}|rogue`, n)),
  ]);
  const during = await servingProblem(site, daemon, 15_000);
  await Promise.all(attacks);
  const floodMs = performance.now() - t0;
  t.is(during, undefined, 'during the flood');
  t.is(await servingProblem(site, daemon, 10_000), undefined, 'after the flood');
  const total = [...attempts.values()].reduce((a, b) => a + b, 0);
  t.log(`${total} refused connections in ${Math.round(floodMs)} ms`);
  const status = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile, '--json'], { timeoutMs: 20_000 });

  stopped = true;
  t.is(await daemon.stop(), 0, 'clean stop on the first SIGTERM');

  const store = await openStore({
    dataDir: join(site.dir, 'data'), keySource: new FileKeySource(join(site.dir, 'keys', 'data.key')), replayWindowMs: 3_600_000, logger: silentLogger,
  });
  const byKey = new Map<string, Tally>();
  const occurrences = new Map<string, number>();
  const occurrencesOf = (type: string): number => occurrences.get(type) ?? 0;
  try {
    for await (const r of store.audit.read(1)) {
      const e = (JSON.parse(r.line) as AuditRecord).event;
      if (!FLOOD_TYPES.has(e.type)) continue;
      // Failed handshakes reach the audit without their source address today (the socket is gone by
      // then): those records are keyed, like the coalescer keys them, by whatever address they carry.
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
    }
  } finally {
    await store.close();
  }
  const records = [...byKey.values()].reduce((a, k) => a + k.records, 0);
  const bytes = [...byKey.values()].reduce((a, k) => a + k.bytes, 0);
  t.log(`${records} audit records (${bytes} bytes) for ${byKey.size} source+reason keys: ${[...byKey].map(([k, v]) => `${k} ${v.records}/${v.occurrences}`).join('; ')}`);

  // Every refusal is accounted for: nothing lost to coalescing. Each DICOM connection ends in one failed
  // handshake, including those refused at the per-address cap before TLS (which are recorded as well).
  const sum = (prefix: string): number => [...attempts].filter(([k]) => k.startsWith(prefix)).reduce((a, [, n]) => a + n, 0);
  t.is(occurrencesOf('hl7.peer-refused'), sum('hl7|'), 'HL7 refusals in the chain = rogue handshakes made');
  t.is(occurrencesOf('dicom.tls-handshake-failed'), sum('dicom|'), 'DICOM handshake failures in the chain = connections made');
  // Refusals before TLS are named by source: a key per source address.
  for (const source of SOURCES) {
    const refused = byKey.get(`dicom.connection-refused|${source}|max associations per address`);
    t.true(refused !== undefined && refused.occurrences <= (attempts.get(`dicom|${source}|plain`) ?? 0), `refusals at the cap from ${source}: ${refused?.occurrences}`);
  }
  // Bounded by the interval, not by the flood: within one 60 s interval (the default), a key costs its
  // first record and one summary at most.
  for (const [key, tally] of byKey) t.true(tally.records <= 2, `${key}: ${tally.records} records for ${tally.occurrences} refusals`);
  t.true(records <= 2 * byKey.size && records < total / 20, `${records} records for ${total} refusals`);
  // The chain's disk budget is visible to the operator, measured.
  t.is(status.code, 0, status.stderr);
  const budget = (JSON.parse(status.stdout) as { auditDiskBudget?: { budgetBytes: number; usedBytes: number; level: string } }).auditDiskBudget;
  t.like(budget, { level: 'ok', budgetBytes: 16 * 1024 ** 3 }, 'edgectl status shows the audit disk budget');
  t.is(typeof budget?.usedBytes, 'number');
});
