// The data sets of Storage Commitment (PS3.4 J.3): the Action Information of a request (Table J.3-1)
// and the Event Information of a report (Table J.3-2), in the box's data model.
import type { DataSet } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import type { CommitmentReport, ReferencedSop } from '../core/storage-commitment.ts';

function referencedSop(s: ReferencedSop): DataSet {
  return new Map([
    [Tag.ReferencedSOPClassUID, { vr: 'UI' as const, value: s.sopClassUid }],
    [Tag.ReferencedSOPInstanceUID, { vr: 'UI' as const, value: s.sopInstanceUid }],
  ]);
}

export function actionInformation(transactionUid: string, items: readonly ReferencedSop[]): DataSet {
  return new Map([
    [Tag.TransactionUID, { vr: 'UI' as const, value: transactionUid }],
    [Tag.ReferencedSOPSequence, { vr: 'SQ' as const, value: items.map(referencedSop) }],
  ]);
}

/** Referenced SOP Sequence only when something was committed, Failed SOP Sequence only when something failed. */
export function eventInformation(report: CommitmentReport): DataSet {
  const ds: DataSet = new Map();
  ds.set(Tag.TransactionUID, { vr: 'UI', value: report.transactionUid });
  if (report.success.length > 0) ds.set(Tag.ReferencedSOPSequence, { vr: 'SQ', value: report.success.map(referencedSop) });
  if (report.failed.length > 0) {
    ds.set(Tag.FailedSOPSequence, {
      vr: 'SQ',
      value: report.failed.map((f) => referencedSop(f).set(Tag.FailureReason, { vr: 'US', value: String(f.failureReason) })),
    });
  }
  return ds;
}
