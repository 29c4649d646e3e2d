// Part of main.ts (kept apart like main-outbound.ts): composes the image path — the encrypted spool, the
// Storage SCP services, the PACS forwarder (C-STORE SCU or STOW-RS) as an outbox destination, their audit
// events and the spool's control route. Like main.ts, it may import several adapters.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, AuditParticipant, AuditSink } from './core/audit.ts';
import type { Logger } from './core/log.ts';
import type { DestinationOptions } from './core/outbox-dispatcher.ts';
import type { EdgeConfig } from './config/index.ts';
import type { ControlServer } from './admin/control-server.ts';
import type { DimseService } from './dicom/index.ts';
import { DemographicsReconciler } from './dicom/demographics-rewrite.ts';
import { reconciliationAuditEvent } from './main-reconcile.ts';
import { dimseTransport, PacsForwarder, type InstanceTransport } from './dicom/pacs-forwarder.ts';
import { isWalkableTransferSyntax } from './dicom/dataset-walker.ts';
import { storageServices, type StorageEvent } from './dicom/storage-service.ts';
import { stowTransport } from './dicom/stow-client.ts';
import type { Store } from './store/index.ts';
import { RecordKeys } from './store/record-keys.ts';
import { Spool } from './store/spool.ts';

export const PACS_DESTINATION = 'pacs';
/** Empty spool files kept ready (durable directory entries): enough for a burst on several associations. */
const PREPARED_SPOOL_FILES = 16;

export interface ImagePath {
  readonly spool: Spool;
  readonly services: readonly DimseService[];
  /** Storage SOP classes → transfer syntaxes accepted as received (for the association policy). */
  readonly transferSyntaxesBySopClass: ReadonlyMap<string, readonly string[]>;
  /** The `pacs` destination for the outbox dispatcher (none when upstream.pacs is not configured). */
  readonly destinations: readonly DestinationOptions[];
  registerRoutes(control: ControlServer): void;
}

export async function createImagePath(
  config: EdgeConfig,
  store: Store,
  audit: AuditSink,
  box: AuditParticipant,
  tlsOptions: { ca: Buffer; cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; ecdhCurve: string },
  logger: Logger,
): Promise<ImagePath> {
  const storage = config.dicom.storage;
  const pacs = config.upstream.pacs;
  const spool = await Spool.open(
    store.db,
    store.queue,
    store.codec,
    store.keyRing,
    new RecordKeys(store.keyRing.indexKey),
    {
      dir: storage.spool.directory ?? join(config.dataDir, 'spool'),
      highWaterBytes: storage.spool.highWaterBytes,
      minFreeBytes: storage.spool.minFreeBytes,
      maxObjectBytes: storage.spool.maxObjectBytes,
      destination: pacs === undefined ? undefined : PACS_DESTINATION,
      // A directory fsync per instance is a third of a small instance's commit latency (docs/storage.md).
      preparedFiles: PREPARED_SPOOL_FILES,
      logger: logger.child({ component: 'spool' }),
    },
    store.outbox,
  );
  const transferSyntaxes = storage.transferSyntaxes.filter(isWalkableTransferSyntax);
  const transferSyntaxesBySopClass = new Map<string, readonly string[]>(storage.enabled ? storage.sopClasses.map((uid) => [uid, transferSyntaxes]) : []);
  let highWaterReported = false;
  const services = storage.enabled
    ? storageServices({
        sopClassUids: storage.sopClasses,
        spool,
        logger: logger.child({ component: 'storage' }),
        onEvent: (e) => {
          auditStorage(audit, config.dicom.aeTitle, e);
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
        tls: { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key, minVersion: tlsOptions.minVersion, ciphers: tlsOptions.ciphers, ecdhCurve: tlsOptions.ecdhCurve },
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
        ...(pacs.tls ? { tls: { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key, minVersion: tlsOptions.minVersion, ciphers: tlsOptions.ciphers, ecdhCurve: tlsOptions.ecdhCurve } } : {}),
        connectTimeoutMs: pacs.connectTimeoutMs,
        responseTimeoutMs: pacs.responseTimeoutMs,
        maxPduLength: pacs.maxPduLength,
      });
    }
    const o = config.outbox;
    // The PACS as audit participant: its AE title, or for STOW-RS the endpoint's host (it has no AE title).
    const pacsId = pacs.protocol === 'dimse' ? pacs.aeTitle : new URL(pacs.stowUrl).host;
    const reconciler = pacs.reconcileDemographics
      ? new DemographicsReconciler({ orders: store.orders, logger: logger.child({ component: 'reconcile' }) })
      : undefined;
    destinations.push({
      sender: new PacsForwarder({
        destination: PACS_DESTINATION,
        spool,
        transport,
        ...(reconciler === undefined ? {} : { transform: reconciler.transform }),
        logger: logger.child({ component: 'forward' }),
        onForwarded: (instance) => {
          const reconciled = reconciler?.forwarded(instance);
          if (reconciled !== undefined) audit.record(reconciliationAuditEvent(reconciled, [box, { kind: 'dicom', id: pacsId, requestor: false }]));
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
      }),
      batchSize: pacs.batchSize,
      concurrency: pacs.maxAssociations,
      deliveryTimeoutMs: o.deliveryTimeoutMs,
      backoff: { initialDelayMs: o.initialDelayMs, maxDelayMs: o.maxDelayMs, multiplier: 2, jitter: o.jitterPercent / 100 },
      downAfterFailures: o.downAfterFailures,
      refusalBound: { maxAttempts: o.deadLetterAfterRefusals, maxAgeMs: o.deadLetterAfterRefusedMs },
    });
  }

  return {
    spool,
    services,
    transferSyntaxesBySopClass,
    destinations,
    registerRoutes(control) {
      control.route('GET', '/v1/spool', () => ({ status: 200, body: { ...spool.usage(), admission: spool.admission() } }));
    },
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
  const modality: AuditParticipant = { kind: 'dicom', id: e.association.callingAeTitle, address: e.association.remoteAddress, requestor: true };
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
