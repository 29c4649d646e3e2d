// The audit trail flow: the device signer, signed checkpoints and retention, the syslog-TLS senders,
// and the audit pull API, started once the chain's integrity was checked against its anchors (audit-
// integrity.ts). Every audit event it records is listed in docs/audit-events.md.
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import { type Service } from '../core/service.ts';
import { AuditPullApi, type AuditPullEvent, type BundleRequest, type PreparedBundle } from '../admin/audit-pull-api.ts';
import {
  AuditCheckpointer,
  type CheckpointerEvent,
  type Signer,
  SyslogSender,
  type SyslogSenderEvent,
  type SyslogSenderStatus,
  bundleRange,
  exportBundle,
  keyMaterialSigner,
} from '../audit/index.ts';
import { clientTls, readTlsFile } from '../security/tls-material.ts';
import { type AuditIntegrity, startAuditIntegrity } from './audit-integrity.ts';
import { securityAlert } from '../core/audit-event-builders.ts';
import type { FlowContext } from './flow-context.ts';

export interface AuditTrail extends Service {
  /** The pull API's port once started (undefined when audit.pull is not configured). */
  readonly pullPort: number | undefined;
  status(): unknown;
  /** Each syslog collector's connection and durable cursor (read by the metrics scrape). */
  collectors(): readonly SyslogSenderStatus[];
}

export function auditTrail(ctx: FlowContext): AuditTrail {
  const { config, store, box, tls } = ctx;
  const audit = store.audit;
  const log = ctx.logger.child({ component: 'audit' });
  const a = config.audit;
  const signer: Signer = keyMaterialSigner(tls.cert, tls.key);
  let integrity: AuditIntegrity | undefined;
  let checkpointer: AuditCheckpointer | undefined;
  let pull: AuditPullApi | undefined;
  const senders = a.collectors.map(
    (c) =>
      new SyslogSender({
        collector: { name: c.name, host: c.host, port: c.port, ...(c.serverName === undefined ? {} : { serverName: c.serverName }) },
        trail: audit,
        tls: clientTls(tls),
        identity: { hostname: config.site.name, appName: 'edged', procId: String(process.pid) },
        logger: log,
        onEvent: (e) => auditCollector(audit, box, e),
        connectTimeoutMs: a.stream.connectTimeoutMs,
        confirmAfterMs: a.stream.confirmAfterMs,
        retryMaxMs: a.stream.retryMaxMs,
        alertIntervalMs: a.stream.alertIntervalMs,
      }),
  );

  const prepareBundle = async (req: BundleRequest, maxRecords: number, tmpDir: string): Promise<PreparedBundle> => {
    const { fromSeq, toSeq } = await bundleRange(audit, req, maxRecords);
    const path = join(tmpDir, `bundle-${randomUUID()}.tar`);
    // Damage not yet found by the background pass is found (and quarantined) now, so the bundle
    // declares it instead of failing on it.
    await integrity?.verifyThrough(toSeq);
    const r = await exportBundle({
      trail: audit,
      signer,
      site: config.site.name,
      environment: config.site.environment,
      fromSeq,
      toSeq,
      path,
      damaged: audit.damaged,
      ...(audit.anchor === undefined ? {} : { anchor: audit.anchor }),
    });
    return {
      path,
      fromSeq,
      toSeq: r.manifest.range.toSeq,
      count: r.manifest.count,
      bytes: r.bytes,
      cleanup: () => rm(path, { force: true }),
    };
  };

  return {
    name: 'audit-trail',
    get pullPort() {
      return pull?.port;
    },
    async start() {
      const damage = await audit.checkAgainstCheckpoints();
      if (damage !== undefined) {
        log.error('audit.chain-damaged', { problem: damage });
        audit.record(securityAlert('audit.chain-damaged', [box], damage));
      }
      integrity = await startAuditIntegrity({ config, audit, keySource: ctx.keySource, box, ca: tls.ca, cert: tls.cert, logger: log });
      checkpointer = new AuditCheckpointer({
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
      for (const s of senders) await s.start();
      if (a.pull === undefined) return;
      const p = a.pull;
      const tmpDir = join(config.dataDir, 'tmp');
      await mkdir(tmpDir, { recursive: true, mode: 0o700 });
      pull = new AuditPullApi({
        host: p.listen.host,
        port: p.listen.port,
        tls: { ...tls, centralCa: readTlsFile(p.centralCaFile, 'audit.pull.centralCaFile') },
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
            anchor:
              audit.anchor === undefined
                ? null
                : { seq: audit.anchor.seq, hash: audit.anchor.hash, at: new Date(audit.anchor.at).toISOString() },
            checkpoints: checkpoints.slice(-100).map((c) => ({ seq: c.seq, hash: c.hash, at: new Date(c.at).toISOString() })),
            damaged: audit.damaged,
          };
        },
        prepareBundle: (req) => prepareBundle(req, p.maxBundleRecords, tmpDir),
        onEvent: (e) => auditPull(audit, box, e),
      });
      await pull.start();
    },
    status: () => ({
      seq: audit.lastSeq,
      durableSeq: audit.durableSeq,
      firstSeq: audit.firstSeq,
      failedAppends: audit.failedAppends,
      integrity: integrity?.status(),
      collectors: senders.map((s) => s.status),
    }),
    collectors: () => senders.map((s) => s.status),
    health: () => {
      const down = senders.filter((s) => !s.status.connected).length;
      return audit.failedAppends > 0 || down > 0
        ? { status: 'degraded', detail: `${audit.failedAppends} failed append(s); ${down} of ${senders.length} collector(s) disconnected` }
        : { status: 'ok' };
    },
    async stop(deadlineMs: number) {
      await pull?.stop();
      // The last records (application.stop) are durable before the streams close and the head is signed.
      await store.flush();
      await Promise.all(senders.map((s) => s.stop(Math.min(deadlineMs, 5000))));
      await checkpointer?.stop();
      integrity?.stop();
    },
  };
}

function auditCollector(audit: AuditSink, box: AuditParticipant, e: SyslogSenderEvent): void {
  const collector: AuditParticipant = { kind: 'system', id: e.collector, requestor: false };
  switch (e.type) {
    case 'collector-unreachable':
      audit.record(
        securityAlert(
          'audit.collector-unreachable',
          [box, collector],
          `${e.reason}; ${e.failuresSinceLastAlert} failure(s) since the last alert`,
        ),
      );
      return;
    case 'collector-restored':
      audit.record(securityAlert('audit.collector-restored', [box, collector], `down ${e.downMs} ms; the stream resumed from its cursor`));
      return;
  }
}

function auditCheckpointer(audit: AuditSink, box: AuditParticipant, e: CheckpointerEvent): void {
  switch (e.type) {
    case 'pruned':
      audit.record({
        eventId: 'AuditLogUsed',
        type: 'audit.pruned',
        action: 'D',
        outcome: 0,
        at: Date.now(),
        participants: [box],
        detail: `${e.records} record(s) through seq ${e.throughSeq} older than ${e.olderThan} deleted; the chain continues from the signed checkpoint at seq ${e.throughSeq}`,
      });
      return;
    case 'checkpoint-failed':
      audit.record(securityAlert('audit.checkpoint-failed', [box], e.code));
      return;
    case 'prune-failed':
      audit.record(securityAlert('audit.prune-failed', [box], e.code));
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
      audit.record({
        eventId: 'AuditLogUsed',
        type: 'audit.ranges-viewed',
        action: 'R',
        outcome: 0,
        at: Date.now(),
        participants: [user(e.client.cn, e.client.address), box],
      });
      return;
    case 'bundle-pulled':
      audit.record({
        eventId: 'AuditLogUsed',
        type: 'audit.bundle-pulled',
        action: 'R',
        outcome: 0,
        at: Date.now(),
        participants: [user(e.client.cn, e.client.address), box],
        detail: `seq ${e.fromSeq}..${e.toSeq} (${e.count} records)`,
      });
      return;
    case 'bundle-failed':
      audit.record({
        eventId: 'AuditLogUsed',
        type: 'audit.bundle-failed',
        action: 'R',
        outcome: 8,
        at: Date.now(),
        participants: [user(e.client.cn, e.client.address), box],
        detail: e.code,
      });
      return;
  }
}
