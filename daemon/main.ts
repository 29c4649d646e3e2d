// edged: the one process of the box. This file is the only place that wires the parts together; it
// also owns start/stop order and signals. Start: config → keys → store → listeners → ready.
// Stop: listeners stop accepting and drain → store drains and closes.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditAction, AuditEvent, AuditParticipant, AuditSink } from './core/audit.ts';
import { Tag, textOf, type DataSet } from './core/dataset.ts';
import { EdgeError, isEdgeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { KeyRing, type KeySource } from './core/keys.ts';
import { findWorklist, worklistResponseOrigin, type WorklistResponseOrigin } from './core/worklist-query.ts';
import { MppsSopClass } from './core/mpps.ts';
import { type DicomModalityConfig, type EdgeConfig, errorsIn, formatIssue, loadConfig } from './config/index.ts';
import {
  type AssociationContext,
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
import type { Hl7AuditSubject } from './hl7/audit-subjects.ts';
import { ControlServer } from './admin/control-server.ts';
import { createJsonLogger } from './observability/json-logger.ts';
import { FileKeySource } from './security/file-key-source.ts';
import { TpmClient } from './security/tpm-client.ts';
import { TpmKeySource } from './security/tpm-key-source.ts';
import { recordSafeModeEvent, safeModeCodes, takeSafeModeEvents } from './security/tpm-safe-mode.ts';
import { rotateDataKey } from './store/rekey.ts';
import { ensureNoCoreDumps } from './security/core-dumps.ts';
import { startStep } from './core/start-step.ts';
import { TLS_CIPHERS, TLS_ECDH_CURVES, TLS_SERVER_SECURE_OPTIONS } from './security/tls-profile.ts';
import { isRefusal } from './security/peer-policy.ts';
import { type Store, openStore } from './store/index.ts';
import { type Outbound, createOutbound, registerQueueRoutes } from './main-outbound.ts';
import { type ImagePath, createImagePath } from './main-images.ts';
import { startAuditServices } from './main-audit.ts';
import { startAuditGuards } from './main-audit-guards.ts';
import { ConfigReloader, PeerPolicies, type ReloadResult } from './main-config-reload.ts';
import { recordRestore, registerBackupRoute } from './main-backup.ts';
import { startHealth, startWatchdog } from './main-health.ts';
import { watchSegmentation } from './main-segmentation.ts';

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
  readonly ports: { readonly hl7: number; readonly dicomTls?: number; readonly dicomPlain?: number; readonly auditPull?: number };
  stop(): Promise<void>;
  /** Re-read the config file and apply peer changes (main-config-reload.ts); needs `configFile`. */
  reload(): Promise<ReloadResult>;
}

/** The modality a DICOM association belongs to, as the association policy found it. */
interface ModalityPeer {
  readonly rule: DicomModalityConfig;
  readonly returnKeys: ReadonlySet<number> | undefined;
}

export async function startEdge(config: EdgeConfig, logger: Logger, options: { configFile?: string } = {}): Promise<RunningEdge> {
  const startedAt = Date.now();
  const coreLimitBy = await ensureNoCoreDumps(logger);
  const keySource = keySourceFor(config, logger);
  const stepMs = config.startup.stepTimeoutMs;
  const store = await startStep('open the store', stepMs, logger, () => openStore({
    dataDir: config.dataDir,
    keySource,
    replayWindowMs: config.hl7.replayWindowHours * 3_600_000,
    logger: logger.child({ component: 'store' }),
  }));
  const audit = store.audit;
  const box: AuditParticipant = { kind: 'system', id: config.site.name, requestor: false };
  const health = startHealth(config.dataDir, store, audit, box, logger);
  const cleanup: Array<() => Promise<void>> = [async () => health.stop()];
  try {
    if (keySource.backend === 'file') {
      audit.record(securityAlert('keys.development-backend', [box], 'keys.backend is file: data key not sealed by a TPM'));
    }
    if (coreLimitBy === 'edged') audit.record(securityAlert('process.core-dumps-were-enabled', [box], 'started with core dumps enabled (not by bin/edged or the unit); edged set its core limit to 0'));
    for (const e of takeSafeModeEvents(config.dataDir)) audit.record({ ...securityAlert('keys.safe-mode', [box], `${e.code}: ${e.message}`), at: e.at });
    recordRestore(config.dataDir, audit, box, logger);
    const guards = await startAuditGuards(config.audit, store, box, logger);
    cleanup.push(() => guards.stop());
    const tlsOptions = {
      ca: readTlsMaterial(config.tls.caFile, 'tls.caFile'),
      cert: readTlsMaterial(config.tls.certFile, 'tls.certFile'),
      key: config.tls.keyFile === undefined ? await sealedTlsKey(keySource) : readTlsMaterial(config.tls.keyFile, 'tls.keyFile'),
      minVersion: config.tls.minVersion,
      ciphers: TLS_CIPHERS,
      ecdhCurve: TLS_ECDH_CURVES,
      secureOptions: TLS_SERVER_SECURE_OPTIONS,
    } as const;

    const policies = new PeerPolicies(config.hl7.peers, config.dicom.modalities);
    const hl7 = new Hl7Listener({
      host: config.hl7.listen.host,
      port: config.hl7.listen.port,
      tls: tlsOptions,
      maxFrameBytes: config.hl7.maxFrameBytes,
      idleTimeoutMs: config.hl7.idleTimeoutMs,
      frameTimeoutMs: config.hl7.frameTimeoutMs,
      messageLimits: config.hl7.limits,
      maxConnections: config.hl7.maxConnections,
      maxConnectionsPerPeer: config.hl7.maxConnectionsPerPeer,
      preAuthentication: config.hl7.preAuthentication,
      admitsSource: (address) => policies.hl7.admitsSource(address),
      ackWriteTimeoutMs: config.hl7.ackWriteTimeoutMs,
      receivingApplication: config.hl7.receivingApplication,
      receivingFacility: config.hl7.receivingFacility,
      repository: store.orders,
      logger: logger.child({ component: 'hl7' }),
      identifyPeer: ({ certificate, remoteAddress }) => {
        const found = policies.hl7.identify(certificate.subjectCN, remoteAddress);
        if (isRefusal(found)) return { refused: found.why };
        return { peer: { name: found.name, sendingApplication: found.sendingApplication, sendingFacility: found.sendingFacility } };
      },
      onEvent: (event) => auditHl7(guards.sink, event),
    });

    const images = await startStep('open the spool', stepMs, logger, () => createImagePath(config, store, audit, box, tlsOptions, logger));
    const outbound: Outbound = createOutbound(config, store, audit, box, tlsOptions, logger, images.destinations);
    const dicomListeners = createDicomListeners(config, store, guards.sink, tlsOptions, logger, outbound, images, policies);

    // A listener that fails to bind must not leave the ones before it open.
    cleanup.push(() => hl7.stop(0), ...[...dicomListeners.values()].map((l) => () => l.stop(0)));
    const hl7Port = await hl7.start();
    const dicomPorts: { dicomTls?: number; dicomPlain?: number } = {};
    for (const [kind, listener] of dicomListeners) {
      const port = await listener.start();
      if (kind === 'tls') dicomPorts.dicomTls = port;
      else dicomPorts.dicomPlain = port;
    }

    const auditServices = await startStep('start the audit services', stepMs, logger, () => startAuditServices(config, store, box, tlsOptions, logger, keySource));
    cleanup.push(() => auditServices.stop(0));

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
        store: health.store(),
        audit: auditServices.status(),
        auditDiskBudget: guards.status(),
      },
    }));
    registerKeyRoutes(control, store, keySource, audit, box, logger);
    registerQueueRoutes(control, outbound);
    const reloader = new ConfigReloader({
      configFile: options.configFile ?? '', running: config, policies, audit, box, logger: logger.child({ component: 'config' }),
      closeHl7: (drop, reason) => hl7.closeWhere((peer) => drop(peer.name), reason),
      closeModalities: (drop, reason) =>
        [...dicomListeners.values()].reduce((n, l) => n + l.abortWhere((peer) => drop((peer as ModalityPeer).rule), reason), 0),
    });
    const reload = async (): Promise<ReloadResult> => {
      if (options.configFile === undefined) throw new EdgeError('EDGE_CONFIG_UNREADABLE', 'edged was started without a config file to reload');
      return reloader.reload();
    };
    registerBackupRoute(control, { config, configFile: options.configFile, store, keysBackend: keySource.backend, audit, box, logger: logger.child({ component: 'backup' }) });
    control.route('POST', '/v1/config/reload', async () => {
      const result = await reload();
      return { status: result.applied ? 200 : 422, body: result };
    });
    images.registerRoutes(control);
    await control.start();
    outbound.dispatcher.start();
    cleanup.push(() => outbound.dispatcher.stop(0));

    audit.record({ ...appActivity('application.start', box), detail: `keys.backend ${keySource.backend}` });
    const stopSegmentationWatch = watchSegmentation(config, audit, box, logger);
    const ports = { hl7: hl7Port, ...dicomPorts, ...(auditServices.pullPort === undefined ? {} : { auditPull: auditServices.pullPort }) };
    logger.info('edged.ready', { ...ports, aeTitle: config.dicom.aeTitle, keysBackend: keySource.backend, startMs: Date.now() - startedAt });
    notifySystemd(logger);
    health.startWatchdog();

    let stopping: Promise<void> | undefined;
    return {
      ports,
      reload,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(prune);
          health.stop();
          await stopSegmentationWatch();
          const deadline = config.shutdown.drainTimeoutMs;
          logger.info('edged.stopping', { drainTimeoutMs: deadline });
          await Promise.all([hl7.stop(deadline), control.stop(), ...[...dicomListeners.values()].map((l) => l.stop(deadline))]);
          // After the listeners (no new MPPS), before the store closes (settles its last batch).
          await outbound.dispatcher.stop(deadline);
          await guards.stop();
          audit.record(appActivity('application.stop', box));
          await auditServices.stop(deadline);
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
  const tpm = new TpmClient({ tcti: config.keys.tpm.tcti, commandTimeoutMs: config.keys.tpm.commandTimeoutMs, logger: logger.child({ component: 'tpm' }) });
  return new TpmKeySource({ tpm, keysDir: join(config.dataDir, 'keys'), logger: logger.child({ component: 'keys' }) });
}

function createDicomListeners(
  config: EdgeConfig,
  store: Store,
  audit: AuditSink,
  tlsOptions: { ca: Buffer; cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; ecdhCurve: string },
  logger: Logger,
  outbound: Outbound,
  images: ImagePath,
  policies: PeerPolicies,
): Map<'tls' | 'plain', DicomListener> {
  const dicom = config.dicom;
  const keysOf = (names: readonly string[] | undefined): ReadonlySet<number> | undefined =>
    names === undefined ? undefined : new Set(names.map((n) => Tag[n as keyof typeof Tag]));
  const defaultReturnKeys = keysOf(dicom.worklist.returnKeys);
  const abstractSyntaxes = new Set<string>([SopClass.Verification]);
  if (dicom.worklist.enabled) abstractSyntaxes.add(SopClass.ModalityWorklistInformationModelFind);
  abstractSyntaxes.add(MppsSopClass);
  for (const sopClass of images.transferSyntaxesBySopClass.keys()) abstractSyntaxes.add(sopClass);

  const decide = (rq: AssociationRequest): AssociationDecision => {
    const found = policies.modality.admit({
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
    const rule = policies.modalityRule(found.aeTitle)!;
    const peer: ModalityPeer = { rule, returnKeys: keysOf(rule.returnKeys) ?? defaultReturnKeys };
    return { accept: true, abstractSyntaxes, transferSyntaxes: [...dicom.transferSyntaxes], transferSyntaxesByAbstractSyntax: images.transferSyntaxesBySopClass, peer };
  };

  const worklist = worklistFindService((identifier, ctx) => {
    const peer = ctx.association.peer as ModalityPeer;
    let count = 0;
    const scope = peer.rule.worklistScope;
    // Copied now: the request's bytes are not ours once the query has started answering.
    const query = ctx.query.dataSet.length <= MAX_AUDITED_QUERY_BYTES
      ? { sopClassUid: SopClass.ModalityWorklistInformationModelFind, transferSyntaxUid: ctx.query.transferSyntaxUid, dataSet: ctx.query.dataSet.toString('base64') }
      : undefined;
    const results = findWorklist(store.orders, identifier, {
      ...(scope === undefined ? {} : { scope }),
      ...(peer.returnKeys === undefined ? {} : { returnKeys: peer.returnKeys }),
      maxResults: dicom.worklist.maxResults,
      signal: ctx.signal,
      onLimit: () => logger.warn('worklist.result-limit', { aeTitle: peer.rule.aeTitle, maxResults: dicom.worklist.maxResults }),
    });
    const answered = new AnsweredSubject();
    return countingThrough(results, (item) => { count++; answered.add(item); }, () =>
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
        ...queriedSubject(identifier),
        ...answered.subject(),
        ...(query === undefined ? {} : { query }),
        controlId: ctx.association.associationId,
        detail: `${count} result(s); keys ${queryKeys(identifier)}${query === undefined ? '; query too large to record' : ''}`,
      }),
    );
  }, { onItemSkipped: (item, code, ctx) => auditSkippedItem(audit, logger, dicom.aeTitle, worklistResponseOrigin(item), code, ctx) });

  const listeners = new Map<'tls' | 'plain', DicomListener>();
  for (const transport of ['tls', 'plain'] as const) {
    const l = dicom[transport];
    if (l === undefined) continue;
    listeners.set(
      transport,
      new DicomListener({
        host: l.host,
        port: l.port,
        // The config check refuses a wildcard host unless the operator set allowAllInterfaces.
        allowAllInterfaces: l.allowAllInterfaces,
        transport,
        ...(transport === 'tls' ? { tls: tlsOptions } : {}),
        aeTitle: dicom.aeTitle,
        maxPduLength: dicom.maxPduLength,
        maxAssociations: dicom.maxAssociations,
        maxAssociationsPerAddress: dicom.maxAssociationsPerAddress,
        preAuthenticationTimeoutMs: dicom.preAuthentication.timeoutMs,
        maxPreAuthenticationConnections: dicom.preAuthentication.maxConnections,
        maxPreAuthenticationConnectionsPerAddress: dicom.preAuthentication.maxConnectionsPerAddress,
        admitsSource: (address) => policies.modality.admitsSource(transport, address),
        associationRequestTimeoutMs: dicom.associationRequestTimeoutMs,
        idleTimeoutMs: dicom.idleTimeoutMs,
        services: [verificationService, worklist, ...outbound.mppsServices, ...images.services],
        onAssociationRequest: decide,
        onEvent: (event) => auditDicom(audit, event),
        logger: logger.child({ component: `dicom-${transport}` }),
      }),
    );
  }
  return listeners;
}

/** Pass results through, counting them, and call `done` once when the consumer finishes or stops. */
async function* countingThrough<T>(source: AsyncIterable<T>, each: (item: T) => void, done: () => void): AsyncGenerator<T> {
  try {
    for await (const item of source) {
      each(item);
      yield item;
    }
  } finally {
    done();
  }
}

/**
 * The patient, accession and study a worklist answer returned, when every result named the same one
 * (typically a single match): who the query disclosed. Only what the modality asked to be returned is
 * known; several different values name nobody (the query in the record tells what was asked).
 */
class AnsweredSubject {
  readonly #seen = new Map<number, string | null>();

  add(result: DataSet): void {
    for (const tag of [Tag.PatientID, Tag.IssuerOfPatientID, Tag.AccessionNumber, Tag.StudyInstanceUID]) {
      const v = textOf(result, tag)?.trim() ?? '';
      const before = this.#seen.get(tag);
      if (before === undefined) this.#seen.set(tag, v);
      else if (before !== null && before !== v) this.#seen.set(tag, null);
    }
  }

  subject(): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
    const one = (tag: number): string | undefined => {
      const v = this.#seen.get(tag);
      return v === undefined || v === null || v === '' ? undefined : v.slice(0, 64);
    };
    const patientId = one(Tag.PatientID);
    const accessionNumber = one(Tag.AccessionNumber);
    const studyInstanceUid = one(Tag.StudyInstanceUID);
    return {
      ...(patientId === undefined ? {} : { patient: { id: patientId, issuer: one(Tag.IssuerOfPatientID) ?? '' } }),
      ...(accessionNumber === undefined ? {} : { accessionNumber }),
      ...(studyInstanceUid === undefined ? {} : { studyInstanceUid }),
    };
  }
}

/** Larger identifiers are named by their keys only (a worklist query is a few hundred bytes). */
const MAX_AUDITED_QUERY_BYTES = 64 * 1024;

/**
 * The patient and order a worklist query names by single-value keys (a scanned accession or patient
 * id), so the Query record can be found with the rest of that order's trail. Wildcards, lists and
 * ranges name nobody in particular: the query itself (in the record) tells what was asked.
 */
function queriedSubject(identifier: DataSet): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  const single = (tag: number): string | undefined => {
    const v = textOf(identifier, tag)?.trim();
    return v === undefined || v === '' || /[*?\\]/.test(v) ? undefined : v.slice(0, 64);
  };
  const patientId = single(Tag.PatientID);
  const accessionNumber = single(Tag.AccessionNumber);
  const studyInstanceUid = single(Tag.StudyInstanceUID);
  return {
    ...(patientId === undefined ? {} : { patient: { id: patientId, issuer: single(Tag.IssuerOfPatientID) ?? '' } }),
    ...(accessionNumber === undefined ? {} : { accessionNumber }),
    ...(studyInstanceUid === undefined ? {} : { studyInstanceUid }),
  };
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
      audit.record(securityAlert('hl7.peer-refused', [peerOf(e.peer ?? 'unknown', e.remoteAddress)], e.subject === undefined ? e.reason : `${e.reason}; presented ${e.subject}`));
      return;
    case 'connection-superseded':
      audit.record(securityAlert('hl7.connection-superseded', [peerOf(e.peer, e.remoteAddress)], 'oldest idle connection closed: the peer was at its connection cap and opened a new one'));
      return;
    case 'sender-mismatch':
      audit.record({ ...securityAlert('hl7.sender-mismatch', [peerOf(e.peer, e.remoteAddress)], 'MSH-3/MSH-4 do not match the authenticated peer'), controlId: e.controlId });
      return;
    case 'unsupported-message':
      audit.record({ ...securityAlert('hl7.unsupported-message', [peerOf(e.peer, e.remoteAddress)], `${e.messageType} refused (${e.condition})`), controlId: e.controlId });
      return;
    case 'duplicate':
      audit.record({ ...securityAlert('hl7.duplicate-control-id', [peerOf(e.peer, e.remoteAddress)], 'replayed MSH-10 refused'), controlId: e.controlId });
      return;
    case 'invalid-message':
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({ eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.invalid-message', outcome: 4, at: Date.now(), participants: [peerOf(e.peer, e.remoteAddress)], ...subject, controlId: e.controlId, detail: `${e.code} at ${e.location}${detail}` });
      }
      return;
    case 'apply-failed':
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({ eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.apply-failed', outcome: 8, at: Date.now(), participants: [peerOf(e.peer, e.remoteAddress)], ...subject, controlId: e.controlId, detail: `${e.code}${detail}` });
      }
      return;
    case 'order-committed':
      // One record per patient or order the message touched (PS3.15 A.5.3: one patient per message),
      // all carrying the MSH-10 that DICOM-side records of the same accession are correlated with.
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({
          eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.order-committed',
          outcome: 0,
          at: Date.now(),
          participants: [peerOf(e.peer, e.remoteAddress)],
          ...subject,
          controlId: e.controlId,
          detail: `${e.commandTypes.join(',')}; ${e.changedItems} worklist item(s) changed; ${e.unknownOrders} unknown order(s)${detail}`,
        });
      }
      return;
    case 'framing-error':
      audit.record(securityAlert('hl7.framing-error', [peerOf(e.peer, e.remoteAddress)], e.code));
      return;
    case 'connection-closed':
      return;
  }
}

interface SubjectRecord extends Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  readonly patientRecord: boolean;
  readonly action: AuditAction;
  /** Appended to the event's detail: what was asked for the subject, and the placer order number. */
  readonly detail: string;
}

const ORDER_UPDATES: ReadonlySet<string> = new Set(['XO', 'CA', 'DC', 'SC']);

/** The audit records of one HL7 message: one per subject, or one naming nobody when none is known. */
function subjectRecords(subjects: readonly Hl7AuditSubject[]): SubjectRecord[] {
  if (subjects.length === 0) return [{ patientRecord: false, action: 'C', detail: '' }];
  const records: SubjectRecord[] = [];
  subjects.forEach((s, i) => {
    const of = subjects.length > 1 ? ` (${i + 1} of ${subjects.length})` : '';
    const ids = {
      ...(s.patient === undefined ? {} : { patient: s.patient }),
      ...(s.accessionNumber === undefined ? {} : { accessionNumber: s.accessionNumber }),
      ...(s.studyInstanceUid === undefined ? {} : { studyInstanceUid: s.studyInstanceUid }),
    };
    if (s.kind === 'order') {
      const placer = s.placerOrderNumber === undefined ? '' : ` placer ${s.placerOrderNumber}${s.placerIssuer === undefined || s.placerIssuer === '' ? '' : `^${s.placerIssuer}`}`;
      records.push({ patientRecord: false, action: ORDER_UPDATES.has(s.action) ? 'U' : 'C', ...ids, detail: `; ORC-1 ${s.action || '-'}${placer}${of}` });
      return;
    }
    records.push({ patientRecord: true, action: 'U', ...ids, detail: `; ${s.action}${of}` });
    if (s.priorPatient !== undefined) {
      records.push({ patientRecord: true, action: 'D', patient: s.priorPatient, detail: `; ${s.action}: merged into the surviving patient${of}` });
    }
  });
  return records;
}

/** A worklist item the codec could not encode was left out of an answer: name its order to whoever must fix it. */
function auditSkippedItem(
  audit: AuditSink,
  logger: Logger,
  ownAeTitle: string,
  origin: WorklistResponseOrigin | undefined,
  code: string,
  ctx: { readonly association: AssociationContext; readonly transferSyntaxUid: string },
): void {
  const order = origin === undefined ? 'unknown order' : `placer order ${origin.placerOrderNumber}${origin.placerIssuer === '' ? '' : `^${origin.placerIssuer}`}, step ${origin.scheduledProcedureStepId}`;
  logger.warn('worklist.item-skipped', { code, placerOrderNumber: origin?.placerOrderNumber ?? 'unknown', transferSyntaxUid: ctx.transferSyntaxUid, associationId: ctx.association.associationId });
  audit.record({
    eventId: 'Query',
    type: 'worklist.item-skipped',
    action: 'E',
    outcome: 4,
    at: Date.now(),
    participants: [
      { kind: 'dicom', id: ctx.association.callingAeTitle, address: ctx.association.remoteAddress, requestor: true },
      { kind: 'dicom', id: ownAeTitle, requestor: false },
    ],
    ...(origin === undefined ? {} : { patient: origin.patient, accessionNumber: origin.accessionNumber }),
    controlId: ctx.association.associationId,
    detail: `${order} left out of the answer: ${code} in transfer syntax ${ctx.transferSyntaxUid}`,
  });
}

function auditDicom(audit: AuditSink, e: DicomEvent): void {
  switch (e.type) {
    case 'association-rejected':
      audit.record(
        securityAlert('dicom.association-rejected', [{ kind: 'dicom', id: e.callingAeTitle ?? 'unknown', address: e.remoteAddress, requestor: true }], e.why),
      );
      return;
    case 'tls-handshake-failed':
      audit.record(securityAlert('dicom.tls-handshake-failed', [{ kind: 'dicom', id: 'unknown', address: e.remoteAddress, requestor: true }], e.subject === undefined ? e.reason : `${e.reason}; presented ${e.subject}`));
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

  // Signals that arrive while the box starts are held and handled once it is up: a SIGHUP right after
  // `edged.ready` must reload, not kill it (Node's default action), and a SIGTERM stops it cleanly.
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => {
    held.push(signal);
  };
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, hold);
  const release = (): void => {
    for (const signal of signals) process.off(signal, hold);
  };

  let edge: RunningEdge;
  try {
    edge = await startEdge(config, log, { configFile: args.values.config });
  } catch (err) {
    release();
    const code = isEdgeError(err) ? err.code : 'unexpected';
    log.error('edged.start-failed', { code, error: (err as Error).message });
    if (config.keys.backend === 'tpm' && safeModeCodes.has(code)) return runSafeMode(config, log, code, (err as Error).message);
    if (code === 'EDGE_STORE_LOCKED' || code === 'EDGE_STORE_WRITE_FAILED') return ExitCode.IoError;
    if (code === 'EDGE_START_STEP_TIMEOUT') {
      // The blocked file system call holds a libuv thread, and process.exit() would wait for it for ever.
      log.error('edged.forced-exit', { reason: code });
      process.kill(process.pid, 'SIGKILL');
    }
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
    const onHangup = (): void => {
      log.info('edged.signal', { signal: 'SIGHUP' });
      edge.reload().then(
        (r) => { if (!r.applied) log.warn('config.reload-refused', { errors: errorsIn(r.issues).length }); },
        (err: unknown) => log.error('config.reload-failed', { code: isEdgeError(err) ? err.code : 'unexpected', error: (err as Error).message }),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onHangup);
    release();
    for (const signal of held) {
      if (signal === 'SIGHUP') onHangup();
      else onSignal(signal);
    }
  });
}

/** The TLS private key sealed in the TPM, unsealed into memory for the TLS contexts only. */
async function sealedTlsKey(keySource: KeySource): Promise<Buffer> {
  if (keySource.tlsPrivateKey === undefined) throw new EdgeError('EDGE_TLS_MATERIAL', 'tls.keyFile is not set and the key backend holds no TLS key');
  return keySource.tlsPrivateKey();
}

/** Online data-key rotation, asked for by `edgectl keys rotate-data-key`. */
function registerKeyRoutes(control: ControlServer, store: Store, keySource: KeySource, audit: AuditSink, box: AuditParticipant, logger: Logger): void {
  control.route('POST', '/v1/keys/rotate-data-key', async () => {
    const ring = store.keyRing;
    if (keySource.rotation === undefined || !(ring instanceof KeyRing)) {
      throw new EdgeError('EDGE_KEYS_ROTATION_UNSUPPORTED', `keys.backend "${keySource.backend}" cannot rotate the data key`);
    }
    logger.info('keys.rotation-started', { keyIds: ring.keyIds.join(',') });
    try {
      const result = await rotateDataKey(store, ring, keySource.rotation, {
        onProgress: (p) => { if (p.rewritten % 20_000 < 2_000) logger.info('keys.rotation-progress', { ...p }); },
      });
      logger.info('keys.rotation-finished', { ...result, retiredKeyIds: result.retiredKeyIds.join(','), keptKeyIds: result.keptKeyIds.join(',') });
      audit.record({ ...appActivity('keys.data-key-rotated', box),
        detail: `new key id ${result.newKeyId}; retired ${result.retiredKeyIds.join(',') || 'none'}; ${result.rewritten} value(s) re-encrypted` });
      return { status: 200, body: result };
    } catch (err) {
      audit.record(securityAlert('keys.data-key-rotation-failed', [box], isEdgeError(err) ? err.code : 'unexpected'));
      throw err;
    }
  });
}

/**
 * Keys that cannot be unsealed (boot chain changed, TPM missing or locked out): no listener starts. The
 * daemon stays up answering only `GET /v1/status` on the control socket with the reason, so the
 * operator (and later the admin page) can see why; SIGTERM ends it with status 77 (EX_NOPERM).
 */
async function runSafeMode(config: EdgeConfig, log: Logger, code: string, message: string): Promise<number> {
  const since = Date.now();
  try {
    recordSafeModeEvent(config.dataDir, { at: since, code, message });
  } catch (err) {
    log.error('edged.safe-mode-record-failed', { error: (err as Error).message });
  }
  const control = new ControlServer({ socketPath: controlSocketPath(config), logger: log.child({ component: 'control' }) });
  control.route('GET', '/v1/status', () => ({
    status: 200,
    body: { site: config.site.name, pid: process.pid, mode: 'safe', keysBackend: config.keys.backend, since, reason: { code, message },
      recovery: 'see docs/provisioning.md: edgectl keys reseal with the recovery secret, then restart edged' },
  }));
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info('edged.signal', { signal });
      control.stop().then(() => resolve(ExitCode.NoPermission), () => resolve(ExitCode.NoPermission));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await control.start();
  log.error('edged.safe-mode', { code, error: message });
  notifySystemd(log);
  const watchdog = startWatchdog(config.dataDir, log);
  return stopped.finally(() => watchdog?.stop());
}

if (import.meta.main) {
  process.on('unhandledRejection', (reason) => {
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'edged.unhandled-rejection', error: String(reason instanceof Error ? reason.message : reason) })}\n`);
    process.exit(ExitCode.Software);
  });
  // main() ends with an explicit exit. An event loop that runs dry before that means a start or a stop
  // waited on something that can never happen; Node would exit 0 as if all were well, with the store
  // unclosed, so say so and exit 70 (systemd restarts the box).
  process.once('beforeExit', () => {
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'edged.event-loop-drained' })}\n`);
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
