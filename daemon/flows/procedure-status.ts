// The procedure status flow (IHE RAD-6/7 in, RAD-13 style out): the MPPS intake the modalities report
// to, and the RIS status sender it feeds through the outbox. Every audit event recorded here or by the
// core parts it builds (core/mpps-intake.ts, core/outbox-dispatcher.ts) is in the audit event registry.
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import { processingIdOf } from '../core/environment.ts';
import { MppsIntake } from '../core/mpps-intake.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import { ORDER_PLACED_KIND } from '../core/downtime-order.ts';
import type { Order } from '../core/order.ts';
import { PROCEDURE_STATUS_KIND, type ProcedureStatusPayload } from '../core/mpps-status.ts';
import { isMppsRefusal } from '../core/mpps.ts';
import type { DestinationOptions } from '../core/outbox-dispatcher.ts';
import type { OutboxSender } from '../core/outbox.ts';
import type { DimseService } from '../dicom/index.ts';
import { type MppsHandler, mppsServices } from '../dicom/mpps-service.ts';
import { MllpStatusSender } from '../hl7/outbound-mllp-sender.ts';
import { clientTls } from '../security/tls-material.ts';
import type { FlowContext } from './flow-context.ts';
import { RIS_DESTINATION, destinationPolicy } from './outbox.ts';

export interface ProcedureStatusFlow {
  readonly mppsServices: readonly DimseService[];
  /** The `ris` destination for the outbox dispatcher (none when upstream.ris is not configured). */
  readonly destinations: readonly DestinationOptions[];
}

export function procedureStatusFlow(ctx: FlowContext): ProcedureStatusFlow {
  const { config, store, audit, box, logger, metrics } = ctx;
  const ris = config.upstream.ris;
  const destinations: DestinationOptions[] = [];
  if (ris !== undefined) {
    const sender: OutboxSender = new MllpStatusSender({
      destination: RIS_DESTINATION,
      host: ris.host,
      port: ris.port,
      tls: ris.tls ? clientTls(ctx.tls) : undefined,
      connectTimeoutMs: ris.connectTimeoutMs,
      ackTimeoutMs: ris.ackTimeoutMs,
      style: ris.messageStyle,
      sendingApplication: config.hl7.receivingApplication,
      sendingFacility: config.hl7.receivingFacility,
      receivingApplication: ris.receivingApplication,
      receivingFacility: ris.receivingFacility,
      processingId: processingIdOf(config.site.environment),
      logger: logger.child({ component: 'hl7-out' }),
    });
    const risPeer: AuditParticipant = {
      kind: 'hl7',
      id: `${ris.receivingApplication}^${ris.receivingFacility}`,
      address: ris.host,
      requestor: false,
    };
    // One connection, one message in flight: the RIS sees each order's messages strictly in order.
    destinations.push({
      sender: auditedStatusSender(sender, audit, box, risPeer),
      batchSize: ris.batchSize,
      concurrency: 1,
      ...destinationPolicy(config.outbox),
    });
  }
  const intake = new MppsIntake({
    repository: store.mpps,
    orders: store.orders,
    statusDestination: ris === undefined ? undefined : RIS_DESTINATION,
    audit,
    box,
    logger: logger.child({ component: 'mpps' }),
  });
  const handler: MppsHandler = {
    async nCreate(uid, ds, ctx) {
      const a = ctx.association;
      const r = await intake.nCreate(uid, ds, {
        callingAeTitle: a.callingAeTitle,
        remoteAddress: a.remoteAddress,
        associationId: a.associationId,
      });
      metrics.mpps(a.callingAeTitle, 'n-create', isMppsRefusal(r) ? 'failure' : 'success');
      return isMppsRefusal(r) ? r : 'ok';
    },
    async nSet(uid, ds, ctx) {
      const a = ctx.association;
      const r = await intake.nSet(uid, ds, {
        callingAeTitle: a.callingAeTitle,
        remoteAddress: a.remoteAddress,
        associationId: a.associationId,
      });
      metrics.mpps(a.callingAeTitle, 'n-set', isMppsRefusal(r) ? 'failure' : 'success');
      return isMppsRefusal(r) ? r : 'ok';
    },
  };
  return { mppsServices: mppsServices(handler), destinations };
}

/**
 * The RIS sender, recording each procedure status the RIS acknowledged (IHE RAD-13 style) with the
 * order's patient, accession and study; controlId is the message's MSH-10 (the outbox entry id).
 */
function auditedStatusSender(sender: OutboxSender, audit: AuditSink, box: AuditParticipant, ris: AuditParticipant): OutboxSender {
  return {
    destination: sender.destination,
    async deliver(entries, signal) {
      const results = await sender.deliver(entries, signal);
      results.forEach((r, i) => {
        const entry = entries[i];
        if (r.outcome === 'delivered' && entry?.kind === ORDER_PLACED_KIND) {
          const o = entry.payload as Order;
          audit.record(
            auditEvent('order.downtime-placed', {
              at: Date.now(),
              participants: [{ ...box, requestor: true }, ris],
              patient: { id: o.patient.id, issuer: o.patient.issuer },
              accessionNumber: o.accessionNumber,
              studyInstanceUid: o.studyInstanceUid,
              controlId: entry.id,
              detail: `ORM^O01 NW; placer ${o.placerOrderNumber}^${o.placerIssuer}; the RIS acknowledged it`,
            }),
          );
          return;
        }
        if (r.outcome !== 'delivered' || entry?.kind !== PROCEDURE_STATUS_KIND) return;
        const p = entry.payload as ProcedureStatusPayload;
        audit.record({
          eventId: 'ProcedureRecord',
          type: 'hl7.status-sent',
          action: 'U',
          outcome: 0,
          at: Date.now(),
          participants: [{ ...box, requestor: true }, ris],
          patient: { id: p.patient.id, issuer: p.patient.issuer },
          ...(p.accessionNumber === '' ? {} : { accessionNumber: p.accessionNumber }),
          ...(p.studyInstanceUid === '' ? {} : { studyInstanceUid: p.studyInstanceUid }),
          controlId: entry.id,
          detail: `ORC-5 ${p.orderStatus}; placer ${p.placerOrderNumber}${p.placerIssuer === '' ? '' : `^${p.placerIssuer}`}; MPPS ${p.ppsSopInstanceUid}`,
        });
      });
      return results;
    },
  };
}
