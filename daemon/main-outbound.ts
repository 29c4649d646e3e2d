// Part of main.ts (kept apart so the outbound wiring does not crowd the start/stop sequence): composes
// the MPPS intake, the outbox dispatcher with its senders, and the queue routes of the control API.
// Like main.ts, it is the only kind of file that may import several adapters.
import type { AuditParticipant, AuditSink } from './core/audit.ts';
import { EdgeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { MppsIntake } from './core/mpps-intake.ts';
import { PROCEDURE_STATUS_KIND, type ProcedureStatusPayload } from './core/mpps-status.ts';
import { isMppsRefusal } from './core/mpps.ts';
import { type DestinationOptions, OutboxDispatcher } from './core/outbox-dispatcher.ts';
import type { OutboxSender } from './core/outbox.ts';
import type { EdgeConfig } from './config/index.ts';
import type { ControlServer } from './admin/control-server.ts';
import type { DimseService } from './dicom/index.ts';
import { type MppsHandler, mppsServices } from './dicom/mpps-service.ts';
import { MllpStatusSender } from './hl7/outbound-mllp-sender.ts';
import type { Store } from './store/index.ts';

export const RIS_DESTINATION = 'ris';

export interface Outbound {
  readonly dispatcher: OutboxDispatcher;
  readonly mppsServices: readonly DimseService[];
}

export function createOutbound(
  config: EdgeConfig,
  store: Store,
  audit: AuditSink,
  box: AuditParticipant,
  tlsOptions: { ca: Buffer; cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; ecdhCurve: string },
  logger: Logger,
  /** Other legs' senders (the PACS forwarder), dispatched by the same outbox. */
  extraDestinations: readonly DestinationOptions[] = [],
): Outbound {
  const ris = config.upstream.ris;
  const o = config.outbox;
  const backoff = { initialDelayMs: o.initialDelayMs, maxDelayMs: o.maxDelayMs, multiplier: 2, jitter: o.jitterPercent / 100 };
  const destinations: DestinationOptions[] = [...extraDestinations];
  if (ris !== undefined) {
    const sender: OutboxSender = new MllpStatusSender({
      destination: RIS_DESTINATION,
      host: ris.host,
      port: ris.port,
      tls: ris.tls ? { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key, minVersion: tlsOptions.minVersion, ciphers: tlsOptions.ciphers, ecdhCurve: tlsOptions.ecdhCurve } : undefined,
      connectTimeoutMs: ris.connectTimeoutMs,
      ackTimeoutMs: ris.ackTimeoutMs,
      style: ris.messageStyle,
      sendingApplication: config.hl7.receivingApplication,
      sendingFacility: config.hl7.receivingFacility,
      receivingApplication: ris.receivingApplication,
      receivingFacility: ris.receivingFacility,
      logger: logger.child({ component: 'hl7-out' }),
    });
    const risPeer: AuditParticipant = { kind: 'hl7', id: `${ris.receivingApplication}^${ris.receivingFacility}`, address: ris.host, requestor: false };
    // One connection, one message in flight: the RIS sees each order's messages strictly in order.
    destinations.push({ sender: auditedStatusSender(sender, audit, box, risPeer), batchSize: ris.batchSize, concurrency: 1, deliveryTimeoutMs: o.deliveryTimeoutMs, backoff, downAfterFailures: o.downAfterFailures, refusalBound: { maxAttempts: o.deadLetterAfterRefusals, maxAgeMs: o.deadLetterAfterRefusedMs } });
  }
  const dispatcher = new OutboxDispatcher({ repository: store.outbox, destinations, audit, logger: logger.child({ component: 'outbox' }), system: box });

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
      const r = await intake.nCreate(uid, ds, { callingAeTitle: a.callingAeTitle, remoteAddress: a.remoteAddress, associationId: a.associationId });
      return isMppsRefusal(r) ? r : 'ok';
    },
    async nSet(uid, ds, ctx) {
      const a = ctx.association;
      const r = await intake.nSet(uid, ds, { callingAeTitle: a.callingAeTitle, remoteAddress: a.remoteAddress, associationId: a.associationId });
      return isMppsRefusal(r) ? r : 'ok';
    },
  };
  return { dispatcher, mppsServices: mppsServices(handler) };
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

/** The queue routes of the local control API (edgectl queue …; later the admin page). */
export function registerQueueRoutes(control: ControlServer, outbound: Outbound): void {
  const d = outbound.dispatcher;
  const actorOf = (body: unknown): AuditParticipant => {
    const user = typeof body === 'object' && body !== null && typeof (body as { user?: unknown }).user === 'string' ? (body as { user: string }).user.slice(0, 64) : 'local-console';
    return { kind: 'user', id: user, requestor: true };
  };
  const field = (body: unknown, name: string): string => {
    const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
    if (typeof v !== 'string' || v === '' || v.length > 64) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `"${name}" is required`);
    return v;
  };
  const limit = (q: URLSearchParams): number => Math.min(10_000, Math.max(1, Number(q.get('limit') ?? 1000) || 1000));
  control.route('GET', '/v1/queues', () => ({ status: 200, body: { destinations: d.status() } }));
  control.route('GET', '/v1/queues/entries', (req) => {
    const destination = req.query.get('destination') ?? RIS_DESTINATION;
    return { status: 200, body: { destination, entries: d.list(destination, limit(req.query)) } };
  });
  control.route('GET', '/v1/queues/dead', (req) => ({ status: 200, body: { deadLetters: d.deadLetters(req.query.get('destination') ?? undefined, limit(req.query)) } }));
  control.route('POST', '/v1/queues/retry-now', async (req) => ({ status: 200, body: { due: await d.retryNow(field(req.body, 'destination'), actorOf(req.body)) } }));
  control.route('POST', '/v1/queues/retry-one', async (req) => {
    await d.retryOne(field(req.body, 'id'), actorOf(req.body));
    return { status: 200, body: { requeued: 1 } };
  });
  control.route('POST', '/v1/queues/retry-all', async (req) => ({ status: 200, body: { requeued: await d.retryAll(field(req.body, 'destination'), actorOf(req.body)) } }));
  control.route('POST', '/v1/queues/discard', async (req) => {
    await d.discard(field(req.body, 'id'), actorOf(req.body));
    return { status: 200, body: { discarded: 1 } };
  });
}
