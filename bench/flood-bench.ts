// Flood benchmark: what a bounded flood of unauthenticated connections costs the legitimate clinical
// path. On a bench site on loopback, with 1,000 orders stored, after 5 s of the same legitimate load as warm-up:
//   A (no flood)  for --phase-ms, the RIS sends orders on its open MLLP/TLS connection at a steady rate, one
//                 at a time, and CT01 sends worklist queries (50 matches each) on its open TLS association
//                 at a steady rate; once a second a new RIS connection sends one order and a real findscu
//                 runs one query on a new association. Every latency is measured per request.
//   B (flood)     the same, while bench/flood-gen.ts (own process) opens --count unauthenticated
//                 connections in --phase-ms on EACH of the HL7, DICOM TLS and DICOM plain ports.
// Then: four new RIS connections at once and one new association after the flood, and the first SIGTERM.
// Audit cost: records = growth of the daemon's audit sequence (control API /v1/status auditSeq) across
// each phase; bytes = key + sealed value sizes of exactly those records, read from the LevelDB after
// the daemon stopped (what the store keeps; LevelDB's own overhead shows in the du of the directory).
// Prints the table and writes --out (JSON).
//
// Usage: node bench/flood-bench.ts [--out FILE] [--daemon-log FILE] [--phase-ms 10000] [--count 5000]
//          [--coalesce-ms 60000]
// Env: FLOOD_NO_PREFILTER=1 adds an HL7 peer and a TLS modality without addresses (each connects from
// anywhere, its certificate decides), which turns off the source pre-filter on the HL7 and DICOM TLS
// ports, so the flood meets the TLS handshake and the pre-authentication pool instead (the plain port
// keeps its pre-filter: plain modalities always list their addresses).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { auditKey } from '../daemon/store/audit-log.ts';
import { controlRequest } from '../provisioning/control-client.ts';
import { findscu } from '../test/support/dicom-peers.ts';
import { createSite, Daemon, repoRoot } from '../test/support/site.ts';
import { benchConfig } from './bench-site.ts';
import { auditRecordBound, FLOOD_SOURCES, floodMetrics, summarize, type FloodFigures, type PhaseFigures } from './flood-plan.ts';
import { acknowledgment, MllpConnection, runLoad, timestampNow, type Site } from './hl7-load.ts';
import { MwlAssociation, stationQuery } from './mwl-scu.ts';
import { ormO01, type MessageHeader } from './orm-message.ts';
import { formatTable } from './report.ts';
import { localToday, plannedItem, QUERY_STATION, SLICE_SIZE } from './worklist-plan.ts';

const PRELOAD = 1_000;
const ORDER_RATE_PER_S = 20;
const QUERY_RATE_PER_S = 20;
const FRESH_PROBE_INTERVAL_MS = 1_000;
/** hl7.maxConnectionsPerPeer's default: what a RIS may hold open at once. */
const AFTER_RIS_CONNECTIONS = 4;
/** Per legitimate request: a clinical client waiting longer than this has failed. */
const REQUEST_TIMEOUT_MS = 5_000;
const SETTLE_MS = 3_000;
const WARM_UP_MS = 5_000;
const STOP_TIMEOUT_MS = 15_000;
const FLOOD_PROCESS_LIMIT_MS = 30_000;

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    'phase-ms': { type: 'string', default: '10000' },
    count: { type: 'string', default: '5000' },
    'coalesce-ms': { type: 'string', default: '60000' },
    'daemon-log': { type: 'string' },
  },
});
const phaseMs = Number(values['phase-ms']);
const floodCount = Number(values.count);
const coalesceMs = Number(values['coalesce-ms']);

const log = (msg: string): void => {
  process.stderr.write(`[flood ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Loop {
  readonly latencies: number[];
  failed: number;
  firstFailure?: string;
}

/** Run `step` at `ratePerS` until `until`, one at a time (a slow answer delays the next, never overlaps). */
async function paced(ratePerS: number, until: number, loop: Loop, step: () => Promise<void>): Promise<void> {
  const interval = 1000 / ratePerS;
  for (let next = performance.now(); performance.now() < until; next += interval) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    if (performance.now() >= until) break;
    const t0 = performance.now();
    try {
      await step();
      loop.latencies.push(performance.now() - t0);
    } catch (err) {
      loop.failed++;
      loop.firstFailure ??= (err as Error).message;
    }
    if (performance.now() > next + interval) next = performance.now() - interval;
  }
}

const newLoop = (): Loop => ({ latencies: [], failed: 0 });

/** VmHWM of a live process in KiB; 0 when it is gone (a crash shows in the table, it does not stop the run). */
function vmHwmKb(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function duBytes(dir: string): Promise<number> {
  return new Promise((resolve) => {
    execFile('du', ['-sb', dir], { timeout: 10_000 }, (err, stdout) => resolve(err === null ? Number(stdout.split('\t')[0]) : Number.NaN));
  });
}

function closeWaitCount(ports: readonly number[]): Promise<number | null> {
  const filter = ports.map((p) => `sport = :${p}`).join(' or ');
  return new Promise((resolve) => {
    execFile('ss', ['-Htn', 'state', 'close-wait', `( ${filter} )`], { timeout: 10_000 }, (err, stdout) =>
      resolve(err === null ? stdout.split('\n').filter((l) => l.trim() !== '').length : null),
    );
  });
}

async function main(): Promise<void> {
  // 2 shared cores: what else ran beside the benchmark explains much of its p99 noise.
  const loadBefore = loadavg();
  for (const source of FLOOD_SOURCES) {
    // Fails fast (EADDRNOTAVAIL) where the extra loopback sources are not usable.
    const { createServer } = await import('node:net');
    const s = createServer().listen(0, source);
    await once(s, 'listening');
    s.close();
  }
  const site = await createSite((config) => {
    Object.assign(config, benchConfig(config as Parameters<typeof benchConfig>[0]));
    if (process.env['FLOOD_NO_PREFILTER'] === '1') {
      const c = config as { hl7: { peers: object[] }; dicom: { modalities: object[] } };
      c.hl7.peers.push({
        name: 'anywhere-sender',
        certificateCn: 'ANYWHERE.BENCH',
        sendingApplication: 'ANYAPP',
        sendingFacility: 'ANYFAC',
      });
      c.dicom.modalities.push({ name: 'anywhere-modality', aeTitle: 'ANYWHERE', transport: 'tls', certificateCn: 'ANYWHERE-MOD.BENCH' });
    }
  });
  if (process.env['FLOOD_NO_PREFILTER'] === '1') log('FLOOD_NO_PREFILTER=1: HL7 and DICOM TLS ports without source pre-filter');
  const info = JSON.parse(readFileSync(join(site.dir, 'site.json'), 'utf8')) as Site & { box: Site['box'] & { aeTitle: string } };
  const config = JSON.parse(readFileSync(site.configFile, 'utf8')) as { dataDir: string };
  const dataDir = resolve(site.dir, config.dataDir);
  const dbDir = join(dataDir, 'db');
  const controlSocket = join(dataDir, 'control.sock');
  let daemon: Daemon | undefined;
  let flood: ReturnType<typeof spawn> | undefined;
  try {
    daemon = await Daemon.start(site.configFile);
    const d = daemon;
    const pid = d.pid;
    const box: Site = { ...info, box: { ...info.box, hl7Port: d.ports.hl7 } };
    const today = localToday();
    const nonce = `F${Date.now().toString(36).slice(-5).toUpperCase()}`;
    log(`daemon ${pid} on hl7 ${d.ports.hl7}, dicom tls ${d.ports.dicomTls}, plain ${d.ports.dicomPlain}; storing ${PRELOAD} orders`);
    const pre = await runLoad({
      site: box,
      today,
      from: 0,
      count: PRELOAD,
      connections: 4,
      durationMs: 120_000,
      nonce: `${nonce}P`,
      label: 'preload',
    });
    if (pre.errors > 0) throw new Error(`preload refused: ${pre.firstError ?? ''}`);

    const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01');
    if (ct01?.certFile === undefined || ct01.keyFile === undefined) throw new Error('the dev site has no CT01 TLS modality');
    const modalityTls = {
      ca: readFileSync(site.pki.caCert),
      cert: readFileSync(ct01.certFile),
      key: readFileSync(ct01.keyFile),
      servername: 'localhost',
    };
    const openAssociation = () =>
      MwlAssociation.open({
        host: '127.0.0.1',
        port: d.ports.dicomTls,
        callingAeTitle: 'CT01',
        calledAeTitle: info.box.aeTitle,
        tls: modalityTls,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    const identifier = stationQuery(QUERY_STATION, today);
    const header: MessageHeader = {
      sendingApplication: site.ris.sendingApplication,
      sendingFacility: site.ris.sendingFacility,
      receivingApplication: info.box.receivingApplication,
      receivingFacility: info.box.receivingFacility,
      timestamp: timestampNow(),
    };
    let orderIndex = 2_000_000;
    const order = async (c: MllpConnection): Promise<void> => {
      const i = orderIndex++;
      const ack = acknowledgment(await c.exchange(ormO01(plannedItem(i, today), header, `${nonce}${i}`)));
      if (ack.code !== 'AA') throw new Error(`order ${i}: MSA-1 ${ack.code} ${ack.detail}`);
    };
    const timeouts = { connectMs: REQUEST_TIMEOUT_MS, ackMs: REQUEST_TIMEOUT_MS };
    const findscuProbe = async (): Promise<void> => {
      const r = await findscu({
        port: d.ports.dicomTls,
        callingAe: 'CT01',
        calledAe: info.box.aeTitle,
        tls: { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert },
        keys: [
          `ScheduledProcedureStepSequence[0].ScheduledStationAETitle=${QUERY_STATION}`,
          `ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=${today}`,
          'AccessionNumber',
        ],
        extra: ['-to', '5', '-ta', '5', '-td', '5'],
      });
      if (r.responses.length !== SLICE_SIZE || r.finalStatus === undefined || !/Success/i.test(r.finalStatus)) {
        throw new Error(
          `findscu: ${r.responses.length} responses, final ${r.finalStatus ?? 'none'}${r.associationRejected ? ', association rejected' : ''}`,
        );
      }
    };
    const freshOrder = async (): Promise<void> => {
      const c = await MllpConnection.open(box, timeouts);
      try {
        await order(c);
      } finally {
        await c.close();
      }
    };

    // Sanity: the query every measurement sends answers exactly the planned slice.
    {
      const a = await openAssociation();
      const answer = await a.find(identifier);
      await a.release();
      if (answer.matches !== SLICE_SIZE || answer.status !== 0)
        throw new Error(`the worklist query answered ${answer.matches} (status ${answer.status}), expected ${SLICE_SIZE}`);
      await findscuProbe();
    }

    /** The daemon's last audit sequence number; NaN when the control API does not answer in 10 s. */
    const auditSeq = async (): Promise<number> => {
      try {
        const r = await controlRequest(controlSocket, 'GET', '/v1/status', undefined, 10_000);
        return Number((r.body as { auditSeq?: number }).auditSeq);
      } catch (err) {
        log(`control API: ${(err as Error).message}`);
        return Number.NaN;
      }
    };

    /** One phase of legitimate load; `during` runs beside it (the flood) and is awaited too. */
    const phase = async (
      name: string,
      durationMs: number,
      during?: () => Promise<void>,
    ): Promise<{ figures: PhaseFigures; seq: [number, number] }> => {
      const seq0 = await auditSeq();
      const du0 = await duBytes(dbDir);
      const until = performance.now() + durationMs;
      const ack = newLoop();
      const query = newLoop();
      const freshAck = newLoop();
      const freshQuery = newLoop();
      // Opened before the flood starts, as a RIS and a modality already connected would be; a failure
      // here is retried (and counted) by the first request.
      let ris: MllpConnection | undefined = await MllpConnection.open(box, timeouts).catch(() => undefined);
      let modality: MwlAssociation | undefined = await openAssociation().catch(() => undefined);
      log(`${name}: ${durationMs} ms of legitimate load${during === undefined ? '' : ' under the flood'}`);
      await Promise.all([
        during?.(),
        paced(ORDER_RATE_PER_S, until, ack, async () => {
          try {
            ris ??= await MllpConnection.open(box, timeouts);
            await order(ris);
          } catch (err) {
            // A real RIS reconnects after a failure; the next order tries a new connection.
            await ris?.close();
            ris = undefined;
            throw err;
          }
        }),
        paced(QUERY_RATE_PER_S, until, query, async () => {
          try {
            modality ??= await openAssociation();
            const answer = await modality.find(identifier);
            if (answer.matches !== SLICE_SIZE || answer.status !== 0)
              throw new Error(`query answered ${answer.matches} (status 0x${answer.status.toString(16)})`);
          } catch (err) {
            modality?.destroy();
            modality = undefined;
            throw err;
          }
        }),
        paced(1000 / FRESH_PROBE_INTERVAL_MS, until, freshAck, freshOrder),
        paced(1000 / FRESH_PROBE_INTERVAL_MS, until, freshQuery, findscuProbe),
      ]);
      await ris?.close();
      await modality?.release();
      await sleep(SETTLE_MS);
      const seq1 = await auditSeq();
      const du1 = await duBytes(dbDir);
      const loops = { ack, query, freshAck, freshQuery };
      const firstFailure = Object.entries(loops)
        .map(([k, l]) => (l.firstFailure === undefined ? undefined : `${k}: ${l.firstFailure}`))
        .find((x) => x !== undefined);
      const figures: PhaseFigures = {
        ack: summarize(ack.latencies),
        query: summarize(query.latencies),
        freshAck: summarize(freshAck.latencies),
        freshQuery: summarize(freshQuery.latencies),
        failed: { ack: ack.failed, query: query.failed, freshAck: freshAck.failed, freshQuery: freshQuery.failed },
        ...(firstFailure === undefined ? {} : { firstFailure }),
        auditRecords: seq1 - seq0,
        auditBytes: 0,
        dbGrowthBytes: du1 - du0,
        vmHwmKb: vmHwmKb(pid),
      };
      log(
        `${name}: ACK p99 ${figures.ack.p99} ms (n ${figures.ack.n}), query p99 ${figures.query.p99} ms (n ${figures.query.n}), failed ${JSON.stringify(figures.failed)}, audit +${figures.auditRecords}`,
      );
      return { figures, seq: [seq0, seq1] };
    };

    // A freshly started daemon answers its first few hundred requests slower (JIT, caches, the preload's
    // compaction): without this, the baseline's p99 measures warm-up.
    await phase('warm-up', WARM_UP_MS);
    const a = await phase('A (no flood)', phaseMs);
    let floodReport: { launched?: number } & Record<string, unknown> = {};
    const b = await phase('B (flood)', phaseMs, async () => {
      const args = [
        'bench/flood-gen.ts',
        '--host',
        '127.0.0.1',
        '--count',
        String(floodCount),
        '--duration-ms',
        String(phaseMs),
        '--target',
        `hl7:tls:${d.ports.hl7}`,
        '--target',
        `dicomTls:tls:${d.ports.dicomTls}`,
        '--target',
        `dicomPlain:plain:${d.ports.dicomPlain}`,
        '--ca',
        site.pki.caCert,
        '--rogue-cert',
        site.rogue.certFile,
        '--rogue-key',
        site.rogue.keyFile,
      ];
      flood = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      flood.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
      const limit = setTimeout(() => flood?.kill('SIGKILL'), FLOOD_PROCESS_LIMIT_MS);
      const [code] = (await once(flood, 'exit')) as [number | null];
      clearTimeout(limit);
      flood = undefined;
      try {
        floodReport = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as typeof floodReport;
      } catch {
        floodReport = { error: `flood generator exited ${code} without a report` };
      }
      log(`flood: ${floodReport.launched ?? '?'} connections launched (exit ${code})`);
    });
    const fds = (() => {
      try {
        return readdirSync(`/proc/${pid}/fd`).length;
      } catch {
        return null;
      }
    })();
    const closeWait = await closeWaitCount([d.ports.hl7, d.ports.dicomTls, d.ports.dicomPlain]);

    log(`after the flood: ${AFTER_RIS_CONNECTIONS} new RIS connections at once, and a new association`);
    const problems: string[] = [];
    const risResults = await Promise.allSettled(Array.from({ length: AFTER_RIS_CONNECTIONS }, () => freshOrder()));
    for (const r of risResults) if (r.status === 'rejected') problems.push(`RIS: ${(r.reason as Error).message}`);
    const modalityServed = await findscuProbe().then(
      () => true,
      (err: Error) => {
        problems.push(`CT01: ${err.message}`);
        return false;
      },
    );
    const after = {
      risTried: AFTER_RIS_CONNECTIONS,
      risServed: risResults.filter((r) => r.status === 'fulfilled').length,
      modalityServed,
      ...(problems.length > 0 ? { detail: [...new Set(problems)].join('; ') } : {}),
    };

    log('stopping the daemon with one SIGTERM');
    const t0 = performance.now();
    const exitCode = await d.process.stop('SIGTERM', STOP_TIMEOUT_MS);
    const stopMs = Math.round(performance.now() - t0);
    daemon = undefined;
    if (values['daemon-log'] !== undefined) writeFileSync(values['daemon-log'], `${d.process.lines.join('\n')}\n${d.process.stderr}`);
    // Exit 0 alone is not a clean stop: a shutdown stuck on a promise nothing will settle also ends in
    // exit 0 once the event loop runs dry, without closing the store.
    const completed = d.process.events('edged.stopped').length > 0;
    const events: Record<string, number> = {};
    for (const line of d.process.lines) {
      const event = /"event":"([^"]+)"/.exec(line)?.[1];
      if (event !== undefined) events[event] = (events[event] ?? 0) + 1;
    }

    const db = new ClassicLevel<string, Buffer>(dbDir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    const storedBytes = async ([from, to]: [number, number]): Promise<number> => {
      if (!Number.isInteger(from) || !Number.isInteger(to)) return Number.NaN;
      let bytes = 0;
      for await (const [key, value] of db.iterator({ gt: auditKey(from), lte: auditKey(to) }))
        bytes += Buffer.byteLength(key) + value.length;
      return bytes;
    };
    const baseline = { ...a.figures, auditBytes: await storedBytes(a.seq) };
    const flooded = { ...b.figures, auditBytes: await storedBytes(b.seq) };
    await db.close();

    const figures: FloodFigures = {
      phaseMs,
      baseline,
      flood: flooded,
      floodConnections: Number(floodReport.launched ?? 0),
      auditBound: auditRecordBound({ transports: ['tls', 'tls', 'plain'], sources: FLOOD_SOURCES.length, floodMs: phaseMs, coalesceMs }),
      coalesceMs,
      after,
      stop: { exitCode, ms: stopMs, completed, firstSigtermClean: exitCode === 0 && completed && stopMs < STOP_TIMEOUT_MS },
      leftOpen: { fds, closeWait },
    };
    const metrics = floodMetrics(figures);
    const result = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      loadAverage: { before: loadBefore, after: loadavg() },
      preload: PRELOAD,
      rates: { ordersPerS: ORDER_RATE_PER_S, queriesPerS: QUERY_RATE_PER_S },
      floodPerPort: floodCount,
      figures,
      flood: floodReport,
      daemonLogEvents: events,
      metrics,
    };
    if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\n${formatTable(metrics)}\n`);
    for (const [label, p] of [
      ['no flood', baseline],
      ['flood', flooded],
    ] as const) {
      if (p.firstFailure !== undefined) process.stdout.write(`first failure (${label}): ${p.firstFailure}\n`);
    }
    if (after.detail !== undefined) process.stdout.write(`after the flood: ${after.detail}\n`);
  } finally {
    flood?.kill('SIGKILL');
    if (daemon !== undefined) await daemon.process.stop('SIGTERM', STOP_TIMEOUT_MS);
    await site.cleanup();
  }
}

await main();
