// Link a performed step to the orders it fulfils, through its Scheduled Step Attributes Sequence
// (IHE RAD-6): accession number (with requested procedure id and SPS id when given), else the Study
// Instance UID. The store finds candidate orders through keyed-hash indexes of those references, whatever
// the order's status (a procedure may be reported after the RIS already completed the order).
import type { LinkedOrder, ScheduledStepRef } from './mpps.ts';
import type { WorklistItem } from './order.ts';
import { orderIdentity } from './order.ts';
import type { OrderLookup } from './ports.ts';

/** How well a worklist item matches a reference; 0 = not at all. */
export function matchScore(ref: ScheduledStepRef, item: WorklistItem): number {
  const o = item.order;
  if (ref.accessionNumber !== '') {
    if (o.accessionNumber !== ref.accessionNumber) return 0;
    if (ref.requestedProcedureId !== '' && o.requestedProcedureId !== '' && o.requestedProcedureId !== ref.requestedProcedureId) return 0;
    let score = 2;
    if (ref.scheduledProcedureStepId !== '' && item.step.id === ref.scheduledProcedureStepId) score += 2;
    if (ref.studyInstanceUid !== '' && o.studyInstanceUid === ref.studyInstanceUid) score += 1;
    return score;
  }
  if (ref.studyInstanceUid !== '' && o.studyInstanceUid === ref.studyInstanceUid) {
    return ref.scheduledProcedureStepId !== '' && item.step.id === ref.scheduledProcedureStepId ? 2 : 1;
  }
  return 0;
}

function linked(item: WorklistItem): LinkedOrder {
  const o = item.order;
  return {
    placerOrderNumber: o.placerOrderNumber,
    placerIssuer: o.placerIssuer,
    fillerOrderNumber: o.fillerOrderNumber,
    accessionNumber: o.accessionNumber,
    requestedProcedureId: o.requestedProcedureId,
    requestedProcedureDescription: o.requestedProcedureDescription,
    requestedProcedureCode: o.requestedProcedureCode,
    scheduledProcedureStepId: item.step.id,
    studyInstanceUid: o.studyInstanceUid,
    patient: {
      id: o.patient.id,
      issuer: o.patient.issuer,
      name: o.patient.name,
      ...(o.patient.asReceived === undefined ? {} : { asReceived: o.patient.asReceived }),
    },
  };
}

/** The orders the references name, one per order (the best-matching step), in reference order. */
export async function linkScheduledSteps(
  orders: OrderLookup,
  refs: readonly ScheduledStepRef[],
  _performedDate: string,
): Promise<LinkedOrder[]> {
  const best = new Map<number, { score: number; item: WorklistItem }>();
  for (const [i, ref] of refs.entries()) {
    const candidates = await orders.ordersByReference(
      ref.accessionNumber !== '' ? { accessionNumber: ref.accessionNumber } : { studyInstanceUid: ref.studyInstanceUid },
    );
    for (const order of candidates) {
      for (const step of order.steps) {
        const item: WorklistItem = { order, step };
        const score = matchScore(ref, item);
        if (score > (best.get(i)?.score ?? 0)) best.set(i, { score, item });
      }
    }
  }
  const out: LinkedOrder[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < refs.length; i++) {
    const b = best.get(i);
    if (b === undefined) continue;
    const id = orderIdentity(b.item.order.placerOrderNumber, b.item.order.placerIssuer);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(linked(b.item));
  }
  return out;
}
