// edged: the one process of the box. This file is the only place that wires the parts together; it
// also owns start/stop order and signals. Start: config → keys → store → listeners → ready.
// Stop: listeners stop accepting and drain → store drains and closes.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditEvent, AuditParticipant, AuditSink } from './core/audit.ts';
import { Tag, type DataSet } from './core/dataset.ts';
import { EdgeError, isEdgeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import type { KeySource } from './core/keys.ts';
import { findWorklist } from './core/worklist-query.ts';
import { type DicomModalityConfig, type EdgeConfig, errorsIn, formatIssue, loadConfig } from './config/index.ts';
import {
  type AssociationDecision,
  type AssociationRequest,
  type DicomEvent,
  DicomListener,
  RejectReason,
  RejectResult,
  RejectSource,
  SopClass,
  verificationService,
  worklistFindService,
} from './dicom/index.ts';
import { Hl7Listener, type Hl7ListenerEvent } from './hl7/index.ts';
import { ControlServer } from './admin/control-server.ts';
import { createJsonLogger } from './observability/json-logger.ts';
import { FileKeySource } from './security/file-key-source.ts';
import { TLS_CIPHERS, TLS_ECDH_CURVES } from './security/tls-profile.ts';
import { Hl7PeerPolicy, ModalityPolicy, isRefusal } from './security/peer-policy.ts';
import { type Store, openStore } from './store/index.ts';

/** Exit statuses (sysexits.h), documented in docs/error-codes.md. */
export const ExitCode = {
  Ok: 0,
  Usage: 64,
  Software: 70,
  IoError: 74,
  NoPermission: 77,
  Config: 78,
} as const;

const CONTROL_ID_PRUNE_INTERVAL_MS = 3_600_000;

export interface RunningEdge {
  readonly ports: { readonly hl7: number; readonly dicomTls?: number; readonly dicomPlain?: number };
  stop(): Promise<void>;
}

/** The modality a DICOM association belongs to, as the association policy found it. */
interface ModalityPeer {
  readonly rule: DicomModalityConfig;
  readonly returnKeys: ReadonlySet<number> | undefined;
}

export async function startEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  const startedAt = Date.now();
  const keySource = keySourceFor(config, logger);
  const store = await openStore({
    dataDir: config.dataDir,
    keySource,
    replayWindowMs: config.hl7.replayWindowHours * 3_600_000,
    logger: logger.child({ component: 'store' }),
  });
  const audit = store.audit;
  const box: AuditParticipant = { kind: 'system', id: config.site.name, requestor: false };
  const cleanup: Array<() => Promise<void>> = [];
  try {
    if (keySource.backend === 'file') {
      audit.record(securityAlert('keys.development-backend', [box], 'keys.backend is file: data key not sealed by a TPM'));
    }
    const tlsOptions = {
      ca: readTlsMaterial(config.tls.caFile, 'tls.caFile'),
      cert: readTlsMaterial(config.tls.certFile, 'tls.certFile'),
      key: readTlsMaterial(config.tls.keyFile, 'tls.keyFile'),
      minVersion: config.tls.minVersion,
      ciphers: TLS_CIPHERS,
      ecdhCurve: TLS_ECDH_CURVES,
    } as const;

    const hl7Policy = new Hl7PeerPolicy(config.hl7.peers);
    const hl7 = new Hl7Listener({
      host: config.hl7.listen.host,
      port: config.hl7.listen.port,
      tls: tlsOptions,
      maxFrameBytes: config.hl7.maxFrameBytes,
      idleTimeoutMs: config.hl7.idleTimeoutMs,
      maxConnections: config.hl7.maxConnections,
      maxConnectionsPerPeer: config.hl7.maxConnectionsPerPeer,
      ackWriteTimeoutMs: config.hl7.ackWriteTimeoutMs,
      receivingApplication: config.hl7.receivingApplication,
      receivingFacility: config.hl7.receivingFacility,
      repository: store.orders,
      logger: logger.child({ component: 'hl7' }),
      identifyPeer: ({ certificate, remoteAddress }) => {
        const found = hl7Policy.identify(certificate.subjectCN, remoteAddress);
        if (isRefusal(found)) return { refused: found.why };
        return { peer: { name: found.name, sendingApplication: found.sendingApplication, sendingFacility: found.sendingFacility } };
      },
      onEvent: (event) => auditHl7(audit, event),
    });

    const dicomListeners = createDicomListeners(config, store, audit, tlsOptions, logger);

    // A listener that fails to bind must not leave the ones before it open.
    cleanup.push(() => hl7.stop(0), ...[...dicomListeners.values()].map((l) => () => l.stop(0)));
    const hl7Port = await hl7.start();
    const dicomPorts: { dicomTls?: number; dicomPlain?: number } = {};
    for (const [kind, listener] of dicomListeners) {
      const port = await listener.start();
      if (kind === 'tls') dicomPorts.dicomTls = port;
      else dicomPorts.dicomPlain = port;
    }

    const prune = setInterval(() => {
      store.orders.pruneControlIds(Date.now()).then(
        (n) => logger.info('store.control-ids-pruned', { count: n }),
        (err: unknown) => logger.warn('store.prune-failed', { code: isEdgeError(err) ? err.code : 'unexpected' }),
      );
    }, CONTROL_ID_PRUNE_INTERVAL_MS);
    prune.unref();

    const control = new ControlServer({ socketPath: controlSocketPath(config), logger: logger.child({ component: 'control' }) });
    control.route('GET', '/v1/status', () => ({
      status: 200,
      body: {
        site: config.site.name,
        pid: process.pid,
        uptimeMs: Date.now() - startedAt,
        keysBackend: keySource.backend,
        ports: { hl7: hl7Port, ...dicomPorts },
        aeTitle: config.dicom.aeTitle,
        auditSeq: audit.lastSeq,
      },
    }));
    await control.start();

    audit.record({ ...appActivity('application.start', box), detail: `keys.backend ${keySource.backend}` });
    const ports = { hl7: hl7Port, ...dicomPorts };
    logger.info('edged.ready', { ...ports, aeTitle: config.dicom.aeTitle, keysBackend: keySource.backend, startMs: Date.now() - startedAt });
    notifySystemd(logger);

    let stopping: Promise<void> | undefined;
    return {
      ports,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(prune);
          const deadline = config.shutdown.drainTimeoutMs;
          logger.info('edged.stopping', { drainTimeoutMs: deadline });
          await Promise.all([hl7.stop(deadline), control.stop(), ...[...dicomListeners.values()].map((l) => l.stop(deadline))]);
          audit.record(appActivity('application.stop', box));
          await store.close();
          logger.info('edged.stopped', {});
        })()),
    };
  } catch (err) {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
    await store.close();
    throw err;
  }
}

/** Where the local control API listens (edgectl finds it the same way). */
export function controlSocketPath(config: EdgeConfig): string {
  return join(config.dataDir, 'control.sock');
}

function readTlsMaterial(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new EdgeError('EDGE_TLS_MATERIAL', `${what} ${path} cannot be read`, { cause });
  }
}

function keySourceFor(config: EdgeConfig, logger: Logger): KeySource {
  if (config.keys.backend === 'file') {
    logger.warn('keys.development-backend', {
      message: 'keys.backend is "file": the data key is NOT sealed by a TPM. For development only.',
    });
    return new FileKeySource(config.keys.file.path);
  }
  throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `keys.backend "${config.keys.backend}" is not available in this build`);
}

function createDicomListeners(
  config: EdgeConfig,
  store: Store,
  audit: AuditSink,
  tlsOptions: { ca: Buffer; cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; ecdhCurve: string },
  logger: Logger,
): Map<'tls' | 'plain', DicomListener> {
  const dicom = config.dicom;
  const policy = new ModalityPolicy(dicom.modalities);
  const byAe = new Map(dicom.modalities.map((m) => [m.aeTitle, m]));
  const keysOf = (names: readonly string[] | undefined): ReadonlySet<number> | undefined =>
    names === undefined ? undefined : new Set(names.map((n) => Tag[n as keyof typeof Tag]));
  const defaultReturnKeys = keysOf(dicom.worklist.returnKeys);
  const abstractSyntaxes = new Set<string>([SopClass.Verification]);
  if (dicom.worklist.enabled) abstractSyntaxes.add(SopClass.ModalityWorklistInformationModelFind);

  const decide = (rq: AssociationRequest): AssociationDecision => {
    const found = policy.admit({
      callingAeTitle: rq.callingAeTitle,
      transport: rq.transport,
      certificateCn: rq.peerCertificate?.subjectCn,
      remoteAddress: rq.remoteAddress,
    });
    if (isRefusal(found)) {
      return {
        accept: false,
        result: RejectResult.Permanent,
        source: RejectSource.ServiceUser,
        reason: RejectReason.CallingAETitleNotRecognized,
        why: found.why,
      };
    }
    const rule = byAe.get(found.aeTitle)!;
    const peer: ModalityPeer = { rule, returnKeys: keysOf(rule.returnKeys) ?? defaultReturnKeys };
    return { accept: true, abstractSyntaxes, transferSyntaxes: [...dicom.transferSyntaxes], peer };
  };

  const worklist = worklistFindService((identifier, ctx) => {
    const peer = ctx.association.peer as ModalityPeer;
    let count = 0;
    const scope = peer.rule.worklistScope;
    const results = findWorklist(store.orders, identifier, {
      ...(scope === undefined ? {} : { scope }),
      ...(peer.returnKeys === undefined ? {} : { returnKeys: peer.returnKeys }),
      maxResults: dicom.worklist.maxResults,
      signal: ctx.signal,
      onLimit: () => logger.warn('worklist.result-limit', { aeTitle: peer.rule.aeTitle, maxResults: dicom.worklist.maxResults }),
    });
    return countingThrough(results, () => count++, () =>
      audit.record({
        eventId: 'Query',
        type: 'worklist.query',
        action: 'E',
        outcome: 0,
        at: Date.now(),
        participants: [
          { kind: 'dicom', id: peer.rule.aeTitle, address: ctx.association.remoteAddress, requestor: true },
          { kind: 'dicom', id: dicom.aeTitle, requestor: false },
        ],
        controlId: ctx.association.associationId,
        detail: `${count} result(s); keys ${queryKeys(identifier)}`,
      }),
    );
  });

  const listeners = new Map<'tls' | 'plain', DicomListener>();
  for (const transport of ['tls', 'plain'] as const) {
    const l = dicom[transport];
    if (l === undefined) continue;
    listeners.set(
      transport,
      new DicomListener({
        host: l.host,
        port: l.port,
        // The dicom layer refuses a wildcard bind unless told; here the operator configured it explicitly.
        allowAllInterfaces: l.host === '0.0.0.0' || l.host === '::',
        transport,
        ...(transport === 'tls' ? { tls: tlsOptions } : {}),
        aeTitle: dicom.aeTitle,
        maxPduLength: dicom.maxPduLength,
        maxAssociations: dicom.maxAssociations,
        maxAssociationsPerAddress: dicom.maxAssociationsPerAddress,
        associationRequestTimeoutMs: dicom.associationRequestTimeoutMs,
        idleTimeoutMs: dicom.idleTimeoutMs,
        services: [verificationService, worklist],
        onAssociationRequest: decide,
        onEvent: (event) => auditDicom(audit, event),
        logger: logger.child({ component: `dicom-${transport}` }),
      }),
    );
  }
  return listeners;
}

/** Pass results through, counting them, and call `done` once when the consumer finishes or stops. */
async function* countingThrough<T>(source: AsyncIterable<T>, each: () => void, done: () => void): AsyncGenerator<T> {
  try {
    for await (const item of source) {
      each();
      yield item;
    }
  } finally {
    done();
  }
}

/** The query keys a modality used, as tags (never their values: they may hold patient data). */
function queryKeys(identifier: DataSet): string {
  return [...identifier.keys()]
    .filter((t) => t !== Tag.SpecificCharacterSet)
    .map((t) => t.toString(16).padStart(8, '0'))
    .join(',');
}

function securityAlert(type: string, participants: AuditParticipant[], detail: string): AuditEvent {
  return { eventId: 'SecurityAlert', type, action: 'E', outcome: 4, at: Date.now(), participants, detail };
}

function appActivity(type: string, box: AuditParticipant): AuditEvent {
  return { eventId: 'ApplicationActivity', type, action: 'E', outcome: 0, at: Date.now(), participants: [box] };
}

function auditHl7(audit: AuditSink, e: Hl7ListenerEvent): void {
  const peerOf = (peer: string, address?: string): AuditParticipant => ({ kind: 'hl7', id: peer, requestor: true, ...(address === undefined ? {} : { address }) });
  switch (e.type) {
    case 'peer-refused':
      audit.record(securityAlert('hl7.peer-refused', [peerOf(e.peer ?? 'unknown', e.remoteAddress)], e.reason));
      return;
    case 'sender-mismatch':
      audit.record({ ...securityAlert('hl7.sender-mismatch', [peerOf(e.peer)], 'MSH-3/MSH-4 do not match the authenticated peer'), controlId: e.controlId });
      return;
    case 'unsupported-message':
      audit.record({ ...securityAlert('hl7.unsupported-message', [peerOf(e.peer)], `${e.messageType} refused (${e.condition})`), controlId: e.controlId });
      return;
    case 'duplicate':
      audit.record({ ...securityAlert('hl7.duplicate-control-id', [peerOf(e.peer)], 'replayed MSH-10 refused'), controlId: e.controlId });
      return;
    case 'invalid-message':
      audit.record({ eventId: 'ProcedureRecord', type: 'hl7.invalid-message', action: 'C', outcome: 4, at: Date.now(), participants: [peerOf(e.peer)], controlId: e.controlId, detail: `${e.code} at ${e.location}` });
      return;
    case 'apply-failed':
      audit.record({ eventId: 'ProcedureRecord', type: 'hl7.apply-failed', action: 'C', outcome: 8, at: Date.now(), participants: [peerOf(e.peer)], controlId: e.controlId, detail: e.code });
      return;
    case 'order-committed':
      audit.record({
        eventId: e.commandTypes.some((t) => t.startsWith('patient')) ? 'PatientRecord' : 'ProcedureRecord',
        type: 'hl7.order-committed',
        action: 'U',
        outcome: 0,
        at: Date.now(),
        participants: [peerOf(e.peer)],
        controlId: e.controlId,
        detail: `${e.commandTypes.join(',')}; ${e.changedItems} worklist item(s) changed; ${e.unknownOrders} unknown order(s)`,
      });
      return;
    case 'framing-error':
      audit.record(securityAlert('hl7.framing-error', [peerOf(e.peer, e.remoteAddress)], e.code));
      return;
    case 'connection-closed':
      return;
  }
}

function auditDicom(audit: AuditSink, e: DicomEvent): void {
  switch (e.type) {
    case 'association-rejected':
      audit.record(
        securityAlert('dicom.association-rejected', [{ kind: 'dicom', id: e.callingAeTitle ?? 'unknown', address: e.remoteAddress, requestor: true }], e.why),
      );
      return;
    case 'tls-handshake-failed':
      audit.record(securityAlert('dicom.tls-handshake-failed', [{ kind: 'dicom', id: 'unknown', address: e.remoteAddress, requestor: true }], e.reason));
      return;
    case 'connection-refused':
      audit.record(securityAlert('dicom.connection-refused', [{ kind: 'dicom', id: 'unknown', address: e.remoteAddress, requestor: true }], e.why));
      return;
    case 'association-aborted':
      if (e.by === 'local') {
        audit.record(securityAlert('dicom.association-aborted', [{ kind: 'dicom', id: e.callingAeTitle ?? 'unknown', address: e.remoteAddress, requestor: true }], e.why));
      }
      return;
    case 'association-accepted':
    case 'association-released':
      return;
  }
}

function notifySystemd(logger: Logger): void {
  if (process.env['NOTIFY_SOCKET'] === undefined) return;
  execFile('systemd-notify', ['--ready', `--pid=${process.pid}`], { timeout: 5000 }, (err) => {
    if (err) logger.warn('edged.notify-failed', { error: err.message });
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: [...argv], options: { config: { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  } catch (err) {
    process.stderr.write(`edged: ${(err as Error).message}\nusage: edged --config FILE\n`);
    return ExitCode.Usage;
  }
  if (args.values.help === true || args.values.config === undefined) {
    process.stderr.write('usage: edged --config FILE\n');
    return args.values.help === true ? ExitCode.Ok : ExitCode.Usage;
  }
  let config: EdgeConfig;
  let log = createJsonLogger(process.stdout, 'info', { service: 'edged' });
  try {
    const loaded = loadConfig(args.values.config);
    config = loaded.config;
    log = createJsonLogger(process.stdout, config.log.level, { service: 'edged', site: config.site.name });
    for (const issue of loaded.issues) log.warn('config.warning', { path: issue.path, code: issue.code, message: issue.message });
  } catch (err) {
    const issues = (err as { issues?: Parameters<typeof formatIssue>[0][] }).issues ?? [];
    log.error('config.invalid', { code: isEdgeError(err) ? err.code : 'unexpected', error: (err as Error).message, issues: errorsIn(issues).length });
    for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return ExitCode.Config;
  }

  let edge: RunningEdge;
  try {
    edge = await startEdge(config, log);
  } catch (err) {
    const code = isEdgeError(err) ? err.code : 'unexpected';
    log.error('edged.start-failed', { code, error: (err as Error).message });
    if (code === 'EDGE_STORE_LOCKED' || code === 'EDGE_STORE_WRITE_FAILED') return ExitCode.IoError;
    if (code.startsWith('EDGE_KEYS_')) return ExitCode.NoPermission;
    return ExitCode.Software;
  }

  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn('edged.forced-exit', { signal });
        resolve(ExitCode.Software);
        return;
      }
      signalled = true;
      log.info('edged.signal', { signal });
      edge.stop().then(
        () => resolve(ExitCode.Ok),
        (err: unknown) => {
          log.error('edged.stop-failed', { error: (err as Error).message });
          resolve(ExitCode.Software);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

if (import.meta.main) {
  process.on('unhandledRejection', (reason) => {
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'edged.unhandled-rejection', error: String(reason instanceof Error ? reason.message : reason) })}\n`);
    process.exit(ExitCode.Software);
  });
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`edged: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(ExitCode.Software);
    },
  );
}
