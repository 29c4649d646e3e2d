// Downtime order entry (control API, and through it `edgectl order add` and the admin page): an operator
// enters an order the RIS cannot take; it is committed with an accession number from the local range
// before the answer, is on the worklist at once, and who entered it and why is in the audit trail.
import type { AuditParticipant } from '../core/audit.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import { type ControlRoute, actorOf } from '../core/control-route.ts';
import {
  type DowntimeNumbering,
  NEEDS_A_PERSON,
  ORDER_PLACED_KIND,
  downtimeOrder,
  parseDowntimeOrder,
  type ReconciliationState,
  reconciliationState,
} from '../core/downtime-order.ts';
import { orderOrderingKey } from '../core/mpps-status.ts';
import { RIS_DESTINATION } from './outbox.ts';
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
        const user = actorOf(req, body.user);
        const now = Date.now();
        const order = await store.orders.enterDowntimeOrder(
          d.accessionNumbers,
          (n) => downtimeOrder(parsed, n, numbering, user, now),
          // Placed with the RIS through the outbox when one is configured; ahead of any status for the order.
          (o) =>
            config.upstream.ris === undefined
              ? []
              : [{ destination: RIS_DESTINATION, orderingKey: orderOrderingKey(o), kind: ORDER_PLACED_KIND, payload: o }],
        );
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
      handle: async () => ({
        status: 200,
        body: { orders: (await reconciliation()).map(({ order, ...r }) => ({ ...view(order), ...r })) },
      }),
    },
    {
      // The reconciliation list (IHE Patient Information Reconciliation): what a person must resolve.
      method: 'GET',
      path: '/v1/orders/reconciliation',
      permission: 'operator',
      handle: async () => ({
        status: 200,
        body: {
          orders: (await reconciliation()).filter((r) => NEEDS_A_PERSON.has(r.state)).map(({ order, ...r }) => ({ ...view(order), ...r })),
        },
      }),
    },
    {
      method: 'POST',
      path: '/v1/orders/reconciliation/resolve',
      permission: 'operator',
      handle: async (req) => {
        const b = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
        const text = (name: string, max: number): string => {
          const v = b[name];
          if (typeof v !== 'string' || v.trim() === '' || v.length > max) {
            throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `"${name}" is required (at most ${max} characters)`);
          }
          return v.trim();
        };
        const placer = text('placerOrderNumber', 64);
        const note = text('note', 200);
        const user = actorOf(req, b['user']);
        const resolved = await store.orders.resolveDowntimeOrder(placer, numbering.placerIssuer, { by: user, at: Date.now(), note });
        if (resolved === undefined) throw new EdgeError('EDGE_CONTROL_NOT_FOUND', `no downtime order with placer number ${placer}`);
        audit.record(
          auditEvent('order.downtime-resolved', {
            at: Date.now(),
            participants: [{ kind: 'user', id: user, requestor: true }, box],
            patient: { id: resolved.patient.id, issuer: resolved.patient.issuer },
            accessionNumber: resolved.accessionNumber,
            controlId: placer,
            detail: `downtime order ${placer}^${numbering.placerIssuer} resolved: ${note}`,
          }),
        );
        return { status: 200, body: { order: view(resolved) } };
      },
    },
  ];

  async function reconciliation(): Promise<Array<{ order: Order; state: ReconciliationState; why: string }>> {
    const now = Date.now();
    const refused = new Map<string, string>();
    for (const dead of store.outbox.deadLetters(RIS_DESTINATION)) {
      if (dead.entry.kind !== ORDER_PLACED_KIND) continue;
      const o = dead.entry.payload as Order;
      refused.set(o.placerOrderNumber, `the RIS refused the order (${dead.reason.peerStatus ?? dead.reason.code}): ${dead.reason.message}`);
    }
    return (await store.orders.downtimeOrders()).map((order) => ({
      order,
      ...reconciliationState(order, {
        placed: config.upstream.ris !== undefined,
        refusedBecause: refused.get(order.placerOrderNumber),
        now,
        answerDeadlineMs: d.answerDeadlineMs,
      }),
    }));
  }
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
    ...(o.downtime?.original === undefined ? {} : { entered: o.downtime.original }),
    ...(o.downtime?.linked === undefined ? {} : { linked: o.downtime.linked }),
  };
}
