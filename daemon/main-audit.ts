// Part of main.ts (kept apart so the audit wiring does not crowd the start/stop sequence): the device
// signer, signed checkpoints and retention, the syslog-TLS senders, and the audit pull API. Like main.ts,
// it is the only kind of file that may import several adapters. Every audit event it records is listed
// in docs/audit-events.md (the doc test scans this file too).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent, AuditParticipant, AuditSink } from './core/audit.ts';
import { EdgeError } from './core/errors.ts';
import type { KeySource } from './core/keys.ts';
import type { Logger } from './core/log.ts';
import type { EdgeConfig } from './config/index.ts';
import { AuditPullApi, type AuditPullEvent, type BundleRequest, type PreparedBundle } from './admin/audit-pull-api.ts';
import {
  AuditCheckpointer, type CheckpointerEvent, type Signer, SyslogSender, type SyslogSenderEvent, exportBundle, keyMaterialSigner,
  seqRangeForTime,
} from './audit/index.ts';
import { startAuditIntegrity } from './main-audit-integrity.ts';
import type { Store } from './store/index.ts';

export interface AuditServices {
  readonly pullPort: number | undefined;
  status(): unknown;
  stop(deadlineMs: number): Promise<void>;
}

function securityAlert(type: string, participants: AuditParticipant[], detail: string, outcome: AuditEvent['outcome'] = 4): AuditEvent {
  return { eventId: 'SecurityAlert', type, action: 'E', outcome, at: Date.now(), participants, detail };
}

function auditCollector(audit: AuditSink, box: AuditParticipant, e: SyslogSenderEvent): void {
  const collector: AuditParticipant = { kind: 'system', id: e.collector, requestor: false };
  switch (e.type) {
    case 'collector-unreachable':
      audit.record(securityAlert('audit.collector-unreachable', [box, collector], `${e.reason}; ${e.failuresSinceLastAlert} failure(s) since the last alert`));
      return;
    case 'collector-restored':
      audit.record(securityAlert('audit.collector-restored', [box, collector], `down ${e.downMs} ms; the stream resumed from its cursor`, 0));
      return;
  }
}

function auditCheckpointer(audit: AuditSink, box: AuditParticipant, e: CheckpointerEvent): void {
  switch (e.type) {
    case 'pruned':
      audit.record({ eventId: 'AuditLogUsed', type: 'audit.pruned', action: 'D', outcome: 0, at: Date.now(), participants: [box],
        detail: `${e.records} record(s) through seq ${e.throughSeq} older than ${e.olderThan} deleted; the chain continues from the signed checkpoint at seq ${e.throughSeq}` });
      return;
    case 'checkpoint-failed':
      audit.record(securityAlert('audit.checkpoint-failed', [box], e.code, 8));
      return;
    case 'prune-failed':
      audit.record(securityAlert('audit.prune-failed', [box], e.code, 4));
      return;
  }
}

function auditPull(audit: AuditSink, box: AuditParticipant, e: AuditPullEvent): void {
  const user = (cn: string, address: string): AuditParticipant => ({ kind: 'user', id: cn, address, requestor: true });
  switch (e.type) {
    case 'refused':
      audit.record(securityAlert('audit.pull-refused', [user(e.cn ?? 'unknown', e.address), box], e.reason));
      return;
    case 'ranges-viewed':
      audit.record({ eventId: 'AuditLogUsed', type: 'audit.ranges-viewed', action: 'R', outcome: 0, at: Date.now(), participants: [user(e.client.cn, e.client.address), box] });
      return;
    case 'bundle-pulled':
      audit.record({ eventId: 'AuditLogUsed', type: 'audit.bundle-pulled', action: 'R', outcome: 0, at: Date.now(), participants: [user(e.client.cn, e.client.address), box],
        detail: `seq ${e.fromSeq}..${e.toSeq} (${e.count} records)` });
      return;
    case 'bundle-failed':
      audit.record({ eventId: 'AuditLogUsed', type: 'audit.bundle-failed', action: 'R', outcome: 8, at: Date.now(), participants: [user(e.client.cn, e.client.address), box], detail: e.code });
      return;
  }
}

export async function startAuditServices(
  config: EdgeConfig,
  store: Store,
  box: AuditParticipant,
  tlsOptions: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer; readonly minVersion: 'TLSv1.2' | 'TLSv1.3'; readonly ciphers: string; readonly ecdhCurve: string; readonly secureOptions: number },
  logger: Logger,
  keySource: KeySource,
): Promise<AuditServices> {
  const audit = store.audit;
  const log = logger.child({ component: 'audit' });
  const a = config.audit;
  const signer: Signer = keyMaterialSigner(tlsOptions.cert, tlsOptions.key);

  const damage = await audit.checkAgainstCheckpoints();
  if (damage !== undefined) {
    log.error('audit.chain-damaged', { problem: damage });
    audit.record(securityAlert('audit.chain-damaged', [box], damage, 12));
  }
  const integrity = await startAuditIntegrity({ config, audit, keySource, box, ca: tlsOptions.ca, cert: tlsOptions.cert, logger: log });

  const checkpointer = new AuditCheckpointer({
    trail: audit,
    signer,
    site: config.site.name,
    everyRecords: a.checkpointEveryRecords,
    everyMs: a.checkpointEveryMs,
    retentionMs: a.retentionDays * 86_400_000,
    logger: log,
    onEvent: (e) => auditCheckpointer(audit, box, e),
    headAnchor: integrity.headAnchor,
  });
  await checkpointer.start();

  const senders = a.collectors.map(
    (c) =>
      new SyslogSender({
        collector: { name: c.name, host: c.host, port: c.port, ...(c.serverName === undefined ? {} : { serverName: c.serverName }) },
        trail: audit,
        tls: { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key, minVersion: tlsOptions.minVersion, ciphers: tlsOptions.ciphers, ecdhCurve: tlsOptions.ecdhCurve },
        identity: { hostname: config.site.name, appName: 'edged', procId: String(process.pid) },
        logger: log,
        onEvent: (e) => auditCollector(audit, box, e),
        connectTimeoutMs: a.stream.connectTimeoutMs,
        confirmAfterMs: a.stream.confirmAfterMs,
        retryMaxMs: a.stream.retryMaxMs,
        alertIntervalMs: a.stream.alertIntervalMs,
      }),
  );
  for (const s of senders) await s.start();

  let pull: AuditPullApi | undefined;
  if (a.pull !== undefined) {
    const p = a.pull;
    const tmpDir = join(config.dataDir, 'tmp');
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const prepareBundle = async (req: BundleRequest): Promise<PreparedBundle> => {
      let fromSeq = req.fromSeq ?? audit.firstSeq;
      let toSeq = req.toSeq ?? audit.durableSeq;
      if (req.from !== undefined || req.to !== undefined) {
        const found = await seqRangeForTime(audit, req.from, req.to);
        if (found === undefined) throw new EdgeError('EDGE_AUDIT_RANGE_EMPTY', 'no records in that time range');
        fromSeq = Math.max(fromSeq, found.fromSeq);
        toSeq = Math.min(toSeq, found.toSeq);
      }
      if (fromSeq < audit.firstSeq) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `records before seq ${audit.firstSeq} were pruned`);
      toSeq = Math.min(toSeq, audit.durableSeq);
      if (toSeq < fromSeq) throw new EdgeError('EDGE_AUDIT_RANGE_EMPTY', `no records in ${fromSeq}..${toSeq}`);
      if (toSeq - fromSeq + 1 > p.maxBundleRecords) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `over ${p.maxBundleRecords} records: ask for a smaller range`);
      const path = join(tmpDir, `bundle-${randomUUID()}.tar`);
      // Damage not yet found by the background pass is found (and quarantined) now, so the bundle
      // declares it instead of failing on it.
      await integrity.verifyThrough(toSeq);
      const r = await exportBundle({ trail: audit, signer, site: config.site.name, fromSeq, toSeq, path, damaged: audit.damaged, ...(audit.anchor === undefined ? {} : { anchor: audit.anchor }) });
      return { path, fromSeq, toSeq: r.manifest.range.toSeq, count: r.manifest.count, bytes: r.bytes, cleanup: () => rm(path, { force: true }) };
    };
    pull = new AuditPullApi({
      host: p.listen.host,
      port: p.listen.port,
      tls: { cert: tlsOptions.cert, key: tlsOptions.key, centralCa: readCentralCa(p.centralCaFile), minVersion: tlsOptions.minVersion, ciphers: tlsOptions.ciphers, ecdhCurve: tlsOptions.ecdhCurve, secureOptions: tlsOptions.secureOptions },
      ...(p.allowedCns === undefined ? {} : { allowedCns: p.allowedCns }),
      maxConnections: p.maxConnections,
      requestTimeoutMs: p.requestTimeoutMs,
      logger: log,
      ranges: async () => {
        const checkpoints = await audit.checkpoints();
        return {
          site: config.site.name,
          firstSeq: audit.firstSeq,
          lastSeq: audit.durableSeq,
          maxBundleRecords: p.maxBundleRecords,
          anchor: audit.anchor === undefined ? null : { seq: audit.anchor.seq, hash: audit.anchor.hash, at: new Date(audit.anchor.at).toISOString() },
          checkpoints: checkpoints.slice(-100).map((c) => ({ seq: c.seq, hash: c.hash, at: new Date(c.at).toISOString() })),
          damaged: audit.damaged,
        };
      },
      prepareBundle,
      onEvent: (e) => auditPull(audit, box, e),
    });
    await pull.start();
  }

  return {
    pullPort: pull?.port,
    status: () => ({
      seq: audit.lastSeq,
      durableSeq: audit.durableSeq,
      firstSeq: audit.firstSeq,
      failedAppends: audit.failedAppends,
      integrity: integrity.status(),
      collectors: senders.map((s) => s.status),
    }),
    async stop(deadlineMs: number) {
      await pull?.stop();
      // The last records (application.stop) are durable before the streams close and the head is signed.
      await store.queue.drain();
      await Promise.all(senders.map((s) => s.stop(Math.min(deadlineMs, 5000))));
      await checkpointer.stop();
      integrity.stop();
    },
  };
}

function readCentralCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new EdgeError('EDGE_TLS_MATERIAL', `cannot read audit.pull.centralCaFile ${path}`, { cause });
  }
}
