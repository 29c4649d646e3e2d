// Part of main.ts (kept apart like main-images.ts): the audit records of demographic reconciliation on
// forward (daemon/dicom/demographics-rewrite.ts). Old and new values go only into `changes`, which stays
// in the encrypted chain: the audit XML and the syslog stream render the attribute names, never values.
import type { AuditEvent, AuditParticipant } from './core/audit.ts';
import type { ReconciliationRecord } from './dicom/demographics-rewrite.ts';

export function reconciliationAuditEvent(r: ReconciliationRecord, participants: readonly AuditParticipant[]): AuditEvent {
  const o = r.outcome;
  const subject = r.order === undefined
    ? {}
    : { patient: { id: r.order.patient.id, issuer: r.order.patient.issuer }, accessionNumber: r.order.accessionNumber, studyInstanceUid: r.order.studyInstanceUid };
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
