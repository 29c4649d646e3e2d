// The image flow: the encrypted spool, the Storage SCP services, the PACS forwarder (C-STORE SCU or
// STOW-RS) as an outbox destination with demographic reconciliation, their audit events and the
// spool's control route.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, AuditParticipant, AuditSink } from '../core/audit.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { dimseStatusClass } from '../core/metrics.ts';
import type { DestinationOptions } from '../core/outbox-dispatcher.ts';
import type { DimseService } from '../dicom/index.ts';
import { DemographicsReconciler, type ReconciliationRecord } from '../dicom/demographics-rewrite.ts';
import { dimseTransport, PacsForwarder, type InstanceTransport } from '../dicom/pacs-forwarder.ts';
import { isWalkableTransferSyntax } from '../dicom/dataset-walker.ts';
import { storageServices, type StorageEvent } from '../dicom/storage-service.ts';
import { stowTransport } from '../dicom/stow-client.ts';
import type { Spool } from '../store/spool.ts';
import { clientTls } from '../security/tls-material.ts';
import type { FlowContext } from './flow-context.ts';
import { ImageActivity } from './image-activity.ts';
import { PACS_DESTINATION, destinationPolicy } from './outbox.ts';
import { EnvironmentRefusingSender, forwardingAllowed, recordForwardingRefused } from './pacs-environment.ts';
/** Empty spool files kept ready (durable directory entries): enough for a burst on several associations. */
const PREPARED_SPOOL_FILES = 16;

export interface ImageFlow {
  readonly spool: Spool;
  readonly dimseServices: readonly DimseService[];
  /** Storage SOP classes → transfer syntaxes accepted as received (for the association policy). */
  readonly transferSyntaxesBySopClass: ReadonlyMap<string, readonly string[]>;
  /** The `pacs` destination for the outbox dispatcher (none when upstream.pacs is not configured). */
  readonly destinations: readonly DestinationOptions[];
  readonly routes: readonly ControlRoute[];
  /** Called each time the PACS confirmed an instance and the spool let it go (storage commitment waits on it). */
  onInstanceForwarded(listener: () => void): void;
}

/** Opens the spool (a start step: it touches the file system) and builds what the image flow serves. */
export async function imageFlow(ctx: FlowContext): Promise<ImageFlow> {
  const { config, store, audit, box, logger, metrics } = ctx;
  const tls = clientTls(ctx.tls);
  const storage = config.dicom.storage;
  const pacs = config.upstream.pacs;
  const spool = await store.openSpool({
    dir: storage.spool.directory ?? join(config.dataDir, 'spool'),
    highWaterBytes: storage.spool.highWaterBytes,
    minFreeBytes: storage.spool.minFreeBytes,
    maxObjectBytes: storage.spool.maxObjectBytes,
    destination: pacs === undefined ? undefined : PACS_DESTINATION,
    // A directory fsync per instance is a third of a small instance's commit latency (docs/storage.md).
    preparedFiles: PREPARED_SPOOL_FILES,
    awaitPacsCommitment: pacs?.protocol === 'dimse' && pacs.storageCommitment,
    logger: logger.child({ component: 'spool' }),
  });
  const transferSyntaxes = storage.transferSyntaxes.filter(isWalkableTransferSyntax);
  const transferSyntaxesBySopClass = new Map<string, readonly string[]>(
    storage.enabled ? storage.sopClasses.map((uid) => [uid, transferSyntaxes]) : [],
  );
  let highWaterReported = false;
  const forwardedListeners: Array<() => void> = [];
  const activity = new ImageActivity();
  const services = storage.enabled
    ? storageServices({
        sopClassUids: storage.sopClasses,
        spool,
        logger: logger.child({ component: 'storage' }),
        onEvent: (e) => {
          auditStorage(audit, config.dicom.aeTitle, e);
          const ae = e.association.callingAeTitle;
          if (e.type === 'instance-stored') {
            metrics.cStore(ae, 'success', e.bytes);
            activity.stored();
          } else {
            metrics.cStore(ae, dimseStatusClass(e.status), 0);
            activity.refused(ae, e.status, e.why);
          }
          if (e.type === 'instance-refused' && e.status === 0xa700 && !highWaterReported) {
            highWaterReported = true;
            logger.warn('spool.refusing', { why: e.why });
          } else if (e.type === 'instance-stored') {
            highWaterReported = false;
          }
        },
      })
    : [];

  const destinations: DestinationOptions[] = [];
  if (pacs !== undefined) {
    let transport: InstanceTransport;
    if (pacs.protocol === 'stow') {
      transport = stowTransport({
        url: pacs.stowUrl,
        tls,
        bearerToken: pacs.bearerTokenFile === undefined ? undefined : () => readFileSync(pacs.bearerTokenFile!, 'utf8').trim(),
        connectTimeoutMs: pacs.connectTimeoutMs,
        responseTimeoutMs: pacs.responseTimeoutMs,
        logger: logger.child({ component: 'stow' }),
      });
    } else {
      transport = dimseTransport({
        host: pacs.host,
        port: pacs.port,
        calledAeTitle: pacs.aeTitle,
        callingAeTitle: config.dicom.aeTitle,
        ...(pacs.tls ? { tls } : {}),
        connectTimeoutMs: pacs.connectTimeoutMs,
        responseTimeoutMs: pacs.responseTimeoutMs,
        maxPduLength: pacs.maxPduLength,
      });
    }
    // The PACS as audit participant: its AE title, or for STOW-RS the endpoint's host (it has no AE title).
    const pacsId = pacs.protocol === 'dimse' ? pacs.aeTitle : new URL(pacs.stowUrl).host;
    const environment = config.site.environment;
    if (!forwardingAllowed(environment, pacs.environment)) {
      recordForwardingRefused(audit, logger, environment, [box, { kind: 'dicom', id: pacsId, requestor: false }]);
    }
    const reconciler = pacs.reconcileDemographics
      ? new DemographicsReconciler({ orders: store.orders, logger: logger.child({ component: 'reconcile' }) })
      : undefined;
    const forwarder = new PacsForwarder({
      destination: PACS_DESTINATION,
      spool,
      transport,
      ...(reconciler === undefined ? {} : { transform: reconciler.transform }),
      logger: logger.child({ component: 'forward' }),
      onForwarded: (instance) => {
        for (const l of forwardedListeners) l();
        activity.forwarded();
        const reconciled = reconciler?.forwarded(instance);
        if (reconciled !== undefined)
          audit.record(reconciliationAuditEvent(reconciled, [box, { kind: 'dicom', id: pacsId, requestor: false }]));
        audit.record({
          eventId: 'DicomInstancesTransferred',
          type: 'pacs.instance-forwarded',
          action: 'R',
          outcome: 0,
          at: Date.now(),
          participants: [box, { kind: 'dicom', id: pacsId, requestor: false }],
          ...instanceSubject(instance.studyInstanceUid, instance.accessionNumber, instance.patientId, instance.issuerOfPatientId),
          detail: `${instance.sopClassUid}; ${instance.bytes} bytes; spool ${instance.key.slice(2, 14)}`,
        });
      },
    });
    destinations.push({
      sender: forwardingAllowed(environment, pacs.environment) ? forwarder : new EnvironmentRefusingSender(PACS_DESTINATION, environment),
      batchSize: pacs.batchSize,
      concurrency: pacs.maxAssociations,
      ...destinationPolicy(config.outbox),
    });
  }

  return {
    spool,
    dimseServices: services,
    transferSyntaxesBySopClass,
    destinations,
    onInstanceForwarded: (listener) => void forwardedListeners.push(listener),
    routes: [
      {
        method: 'GET',
        path: '/v1/spool',
        permission: 'viewer',
        handle: () => ({ status: 200, body: { ...spool.usage(), admission: spool.admission() } }),
      },
      {
        method: 'GET',
        path: '/v1/images',
        permission: 'viewer',
        handle: () => ({
          status: 200,
          body: {
            spool: { ...spool.usage(), admission: spool.admission() },
            ...activity.summary(),
            pacs: pacs === undefined ? null : pacs.protocol,
          },
        }),
      },
    ],
  };
}

/** The study, order and patient an instance's header names, for its audit records (never logged). */
function instanceSubject(
  studyInstanceUid: string | undefined,
  accessionNumber: string | undefined,
  patientId: string | undefined,
  issuerOfPatientId: string | undefined,
): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  return {
    ...(patientId === undefined || patientId === '' ? {} : { patient: { id: patientId, issuer: issuerOfPatientId ?? '' } }),
    ...(accessionNumber === undefined || accessionNumber === '' ? {} : { accessionNumber }),
    ...(studyInstanceUid === undefined || studyInstanceUid === '' ? {} : { studyInstanceUid }),
  };
}

function auditStorage(audit: AuditSink, ourAe: string, e: StorageEvent): void {
  const modality: AuditParticipant = {
    kind: 'dicom',
    id: e.association.callingAeTitle,
    address: e.association.remoteAddress,
    requestor: true,
  };
  const us: AuditParticipant = { kind: 'dicom', id: ourAe, requestor: false };
  if (e.type === 'instance-stored') {
    audit.record({
      eventId: 'DicomInstancesTransferred',
      type: 'dicom.instance-stored',
      action: 'C',
      outcome: 0,
      at: Date.now(),
      participants: [modality, us],
      ...instanceSubject(e.studyInstanceUid, e.accessionNumber, e.patientId, e.issuerOfPatientId),
      controlId: e.association.associationId,
      detail: `${e.sopClassUid}; ${e.bytes} bytes${e.replaced ? '; replaced an earlier copy' : ''}`,
    });
    return;
  }
  audit.record({
    eventId: 'DicomInstancesTransferred',
    type: 'dicom.instance-refused',
    action: 'C',
    outcome: 4,
    at: Date.now(),
    participants: [modality, us],
    controlId: e.association.associationId,
    detail: `status 0x${e.status.toString(16).padStart(4, '0')}: ${e.why}`,
  });
}

/**
 * The audit records of demographic reconciliation on forward (dicom/demographics-rewrite.ts). Old and new
 * values go only into `changes`, which stays in the encrypted chain: the audit XML and the syslog stream
 * render the attribute names, never values.
 */
function reconciliationAuditEvent(r: ReconciliationRecord, participants: readonly AuditParticipant[]): AuditEvent {
  const o = r.outcome;
  const subject =
    r.order === undefined
      ? {}
      : {
          patient: { id: r.order.patient.id, issuer: r.order.patient.issuer },
          accessionNumber: r.order.accessionNumber,
          studyInstanceUid: r.order.studyInstanceUid,
        };
  if (o.kind === 'rewritten') {
    return {
      eventId: 'PatientRecord',
      type: 'pacs.demographics-reconciled',
      action: 'U',
      outcome: 0,
      at: Date.now(),
      participants,
      ...subject,
      detail: `SOP Instance UID ${r.instance.sopInstanceUid}; changed from the order: ${o.changes.map((c) => c.attribute).join(', ')}`,
      changes: o.changes,
    };
  }
  return {
    eventId: 'PatientRecord',
    type: 'pacs.demographics-not-reconciled',
    action: 'U',
    outcome: 4,
    at: Date.now(),
    participants,
    ...subject,
    detail: `SOP Instance UID ${r.instance.sopInstanceUid}; forwarded unchanged: ${o.why}`,
  };
}
