// Downtime order entry (control API, and through it `edgectl order add` and the admin page): an operator
// enters an order the RIS cannot take; it is committed with an accession number from the local range
// before the answer, is on the worklist at once, and who entered it and why is in the audit trail.
import type { AuditParticipant } from '../core/audit.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { type DowntimeNumbering, downtimeOrder, parseDowntimeOrder } from '../core/downtime-order.ts';
import { EdgeError } from '../core/errors.ts';
import type { Order } from '../core/order.ts';
import type { FlowContext } from './flow-context.ts';

export function downtimeOrderRoutes(ctx: FlowContext): ControlRoute[] {
  const { config, store, audit, box, logger } = ctx;
  const d = config.downtime;
  const numbering: DowntimeNumbering = {
    accessionPrefix: d.accessionNumbers.prefix,
    digits: d.accessionNumbers.digits,
    placerIssuer: d.placerIssuer ?? config.hl7.receivingApplication,
    temporaryIdPrefix: d.temporaryIdPrefix,
    temporaryIdIssuer: '',
  };
  return [
    {
      method: 'POST',
      path: '/v1/orders/downtime',
      permission: 'operator',
      handle: async (req) => {
        const parsed = parseDowntimeOrder(req.body);
        if (Array.isArray(parsed)) {
          throw new EdgeError(
            'EDGE_DOWNTIME_ORDER_INVALID',
            `the downtime order is not complete: ${parsed.map((p) => `${p.field} ${p.message}`).join('; ')}`,
          );
        }
        const body = req.body as { user?: unknown };
        const user = typeof body.user === 'string' && body.user !== '' ? body.user.slice(0, 64) : 'local-console';
        const now = Date.now();
        const order = await store.orders.enterDowntimeOrder(d.accessionNumbers, (n) => downtimeOrder(parsed, n, numbering, user, now));
        const who: AuditParticipant = { kind: 'user', id: user, requestor: true };
        audit.record(
          auditEvent('order.downtime-entered', {
            at: now,
            participants: [who, box],
            patient: { id: order.patient.id, issuer: order.patient.issuer },
            accessionNumber: order.accessionNumber,
            studyInstanceUid: order.studyInstanceUid,
            controlId: order.placerOrderNumber,
            detail: `downtime order ${order.placerOrderNumber}^${order.placerIssuer}${order.downtime?.temporaryPatientId === true ? ' (temporary patient ID)' : ''}; reason: ${parsed.reason}`,
          }),
        );
        logger.info('order.downtime-entered', { placerOrderNumber: order.placerOrderNumber, user });
        return { status: 200, body: { order: view(order) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/orders/downtime',
      permission: 'operator',
      handle: async () => ({ status: 200, body: { orders: (await store.orders.downtimeOrders()).map(view) } }),
    },
  ];
}

/** What the operator sees of a downtime order (patient data: operator permission only). */
function view(o: Order): Record<string, unknown> {
  const step = o.steps[0];
  return {
    placerOrderNumber: o.placerOrderNumber,
    placerIssuer: o.placerIssuer,
    accessionNumber: o.accessionNumber,
    studyInstanceUid: o.studyInstanceUid,
    patient: { id: o.patient.id, issuer: o.patient.issuer, name: o.patient.name, birthDate: o.patient.birthDate, sex: o.patient.sex },
    temporaryPatientId: o.downtime?.temporaryPatientId ?? false,
    procedure: o.requestedProcedureDescription,
    modality: step?.modality ?? '',
    stationAeTitle: step?.stationAeTitle ?? '',
    scheduled: `${step?.startDate ?? ''}${step?.startTime ?? ''}`,
    status: o.status,
    enteredBy: o.downtime?.enteredBy ?? '',
    enteredAt: o.downtime?.enteredAt ?? 0,
    reason: o.downtime?.reason ?? '',
  };
}
