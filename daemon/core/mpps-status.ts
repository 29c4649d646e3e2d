// The procedure status a performed step reports to the RIS (IHE RAD-13 style: ORC-1 SC with ORC-5
// IP/CM/DC), as an outbox payload. It is style-neutral: the hl7 adapter renders it as ORM^O01 or OMI^O23
// at send time, with the outbox entry id as MSH-10 so a re-send after a crash is recognisably the same.
import type { CodedEntry } from './order.ts';
import { orderIdentity } from './order.ts';
import type { LinkedOrder, PerformedProcedureStep } from './mpps.ts';
import { PpsStatus } from './mpps.ts';
import type { NewOutboxEntry } from './outbox.ts';

export const PROCEDURE_STATUS_KIND = 'hl7-procedure-status';

/** HL7 table 0038 order status, as IHE uses it for procedure progress. */
export const OrderStatusCode = { InProgress: 'IP', Completed: 'CM', Discontinued: 'DC' } as const;
export type OrderStatusCode = (typeof OrderStatusCode)[keyof typeof OrderStatusCode];

/** What the RIS is told: the linked order's identifiers plus the step's progress. */
export interface ProcedureStatusPayload extends LinkedOrder {
  readonly orderStatus: OrderStatusCode;
  readonly modality: string;
  readonly performedStationAeTitle: string;
  /** PPS SOP Instance UID: lets the RIS tie the message to the modality's step. */
  readonly ppsSopInstanceUid: string;
  /** When the step reached this status, ms since epoch. */
  readonly at: number;
  readonly discontinuationReason: CodedEntry | undefined;
}

export function orderStatusFor(status: PerformedProcedureStep['status']): OrderStatusCode {
  if (status === PpsStatus.Completed) return OrderStatusCode.Completed;
  if (status === PpsStatus.Discontinued) return OrderStatusCode.Discontinued;
  return OrderStatusCode.InProgress;
}

/** The ordering key of every message about one order: they go out in the order they were queued. */
export function orderOrderingKey(order: Pick<LinkedOrder, 'placerOrderNumber' | 'placerIssuer'>): string {
  return `order:${orderIdentity(order.placerOrderNumber, order.placerIssuer)}`;
}

/** One status message per linked order; none for an unscheduled step (no order to name). */
export function procedureStatusEntries(
  step: PerformedProcedureStep,
  destination: string,
  at: number,
): NewOutboxEntry<ProcedureStatusPayload>[] {
  return step.linkedOrders.map((o) => ({
    destination,
    orderingKey: orderOrderingKey(o),
    kind: PROCEDURE_STATUS_KIND,
    payload: {
      ...o,
      orderStatus: orderStatusFor(step.status),
      modality: step.modality,
      performedStationAeTitle: step.performedStationAeTitle,
      ppsSopInstanceUid: step.sopInstanceUid,
      at,
      discontinuationReason: step.discontinuationReason,
    },
  }));
}
