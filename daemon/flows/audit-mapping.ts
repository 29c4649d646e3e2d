// How the events of the listeners become audit records (DICOM PS3.15 A.5): the HL7 listener's, the DICOM
// associations', and the worklist's (who a query named, who its answer disclosed). The events are the
// adapters' own types, so this lives with the composition that joins them; every type recorded here is
// in the registry (core/audit-events.ts) and docs/audit-events.md.
import type { AuditEvent, AuditParticipant, AuditSink } from '../core/audit.ts';
import { auditEvent, securityAlert } from '../core/audit-event-builders.ts';
import { Tag } from '../core/data-dictionary.ts';
import { textOf, type DataSet } from '../core/dataset.ts';
import type { Logger } from '../core/log.ts';
import type { PatientIdentifier } from '../core/order.ts';
import type { WorklistResponseOrigin } from '../core/worklist-query.ts';
import type { AssociationContext, DicomEvent } from '../dicom/index.ts';
import type { Hl7ListenerEvent } from '../hl7/index.ts';
import type { Hl7AuditSubject } from '../hl7/audit-subjects.ts';

export function auditHl7(audit: AuditSink, e: Hl7ListenerEvent): void {
  const peerOf = (peer: string, address?: string): AuditParticipant => ({
    kind: 'hl7',
    id: peer,
    requestor: true,
    ...(address === undefined ? {} : { address }),
  });
  switch (e.type) {
    case 'peer-refused':
      audit.record(
        securityAlert(
          'hl7.peer-refused',
          [peerOf(e.peer ?? 'unknown', e.remoteAddress)],
          e.subject === undefined ? e.reason : `${e.reason}; presented ${e.subject}`,
        ),
      );
      return;
    case 'connection-superseded':
      audit.record(
        securityAlert(
          'hl7.connection-superseded',
          [peerOf(e.peer, e.remoteAddress)],
          'oldest idle connection closed: the peer was at its connection cap and opened a new one',
        ),
      );
      return;
    case 'sender-mismatch':
      audit.record({
        ...securityAlert('hl7.sender-mismatch', [peerOf(e.peer, e.remoteAddress)], 'MSH-3/MSH-4 do not match the authenticated peer'),
        controlId: e.controlId,
      });
      return;
    case 'processing-id-refused':
      audit.record({
        ...securityAlert(
          'hl7.processing-id-refused',
          [peerOf(e.peer, e.remoteAddress)],
          `MSH-11 "${e.received}" refused (ERR 202): this box accepts ${e.accepted.join(' or ')} (site.environment); send it to a box of its environment`,
        ),
        controlId: e.controlId,
      });
      return;
    case 'unsupported-message':
      audit.record({
        ...securityAlert('hl7.unsupported-message', [peerOf(e.peer, e.remoteAddress)], `${e.messageType} refused (${e.condition})`),
        controlId: e.controlId,
      });
      return;
    case 'duplicate':
      audit.record({
        ...securityAlert('hl7.duplicate-control-id', [peerOf(e.peer, e.remoteAddress)], 'replayed MSH-10 refused'),
        controlId: e.controlId,
      });
      return;
    case 'invalid-message':
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({
          eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.invalid-message',
          outcome: 4,
          at: Date.now(),
          participants: [peerOf(e.peer, e.remoteAddress)],
          ...subject,
          controlId: e.controlId,
          detail: `${e.code} at ${e.location}${detail}`,
        });
      }
      return;
    case 'apply-failed':
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({
          eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.apply-failed',
          outcome: 8,
          at: Date.now(),
          participants: [peerOf(e.peer, e.remoteAddress)],
          ...subject,
          controlId: e.controlId,
          detail: `${e.code}${detail}`,
        });
      }
      return;
    case 'order-committed':
      // One record per patient or order the message touched (PS3.15 A.5.3: one patient per message),
      // all carrying the MSH-10 that DICOM-side records of the same accession are correlated with.
      for (const { patientRecord, detail, ...subject } of subjectRecords(e.subjects)) {
        audit.record({
          eventId: patientRecord ? 'PatientRecord' : 'ProcedureRecord',
          type: 'hl7.order-committed',
          outcome: 0,
          at: Date.now(),
          participants: [peerOf(e.peer, e.remoteAddress)],
          ...subject,
          controlId: e.controlId,
          detail: `${e.messageType} ${e.commandTypes.join(',')}; ${e.changedItems} worklist item(s) changed; ${e.unknownOrders} unknown order(s)${cutNote(e.cutValues)}${detail}`,
        });
      }
      for (const link of e.downtimeLinks ?? []) {
        const fields = {
          at: Date.now(),
          participants: [peerOf(e.peer, e.remoteAddress)],
          patient: link.patient,
          accessionNumber: link.accessionNumber,
          controlId: e.controlId,
        };
        const what = `downtime order ${link.placerOrderNumber}^${link.placerIssuer} (entered as accession ${link.originalAccessionNumber})`;
        audit.record(auditEvent('order.downtime-linked', { ...fields, detail: `${what} linked to the RIS's accession` }));
        if (link.conflict !== undefined)
          audit.record(auditEvent('order.downtime-conflict', { ...fields, detail: `${what}: ${link.conflict}` }));
      }
      return;
    case 'framing-error':
      audit.record(securityAlert('hl7.framing-error', [peerOf(e.peer, e.remoteAddress)], e.code));
      return;
    case 'connection-closed':
      return;
  }
}

function cutNote(cutValues: number): string {
  return cutValues === 0 ? '' : `; ${cutValues} text value(s) over their VR length, cut in worklist answers (kept whole in the order)`;
}

interface SubjectRecord extends Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  readonly patientRecord: boolean;
  readonly action: AuditEvent<'hl7.order-committed'>['action'];
  /** Appended to the event's detail: what was asked for the subject, and the placer order number. */
  readonly detail: string;
}

const ORDER_UPDATES: ReadonlySet<string> = new Set(['XO', 'CA', 'DC', 'SC']);

/** The audit records of one HL7 message: one per subject, or one naming nobody when none is known. */
function subjectRecords(subjects: readonly Hl7AuditSubject[]): SubjectRecord[] {
  if (subjects.length === 0) return [{ patientRecord: false, action: 'C', detail: '' }];
  const records: SubjectRecord[] = [];
  subjects.forEach((s, i) => {
    const of = subjects.length > 1 ? ` (${i + 1} of ${subjects.length})` : '';
    const ids = {
      ...(s.patient === undefined ? {} : { patient: s.patient }),
      ...(s.accessionNumber === undefined ? {} : { accessionNumber: s.accessionNumber }),
      ...(s.studyInstanceUid === undefined ? {} : { studyInstanceUid: s.studyInstanceUid }),
    };
    if (s.kind === 'order') {
      const placer =
        s.placerOrderNumber === undefined
          ? ''
          : ` placer ${s.placerOrderNumber}${s.placerIssuer === undefined || s.placerIssuer === '' ? '' : `^${s.placerIssuer}`}`;
      records.push({
        patientRecord: false,
        action: ORDER_UPDATES.has(s.action) ? 'U' : 'C',
        ...ids,
        detail: `; ORC-1 ${s.action || '-'}${placer}${of}`,
      });
      return;
    }
    records.push({ patientRecord: true, action: 'U', ...ids, detail: `; ${s.action}${of}` });
    if (s.priorPatient !== undefined) {
      records.push({
        patientRecord: true,
        action: 'D',
        patient: s.priorPatient,
        detail: `; ${s.action}: merged into the surviving patient${of}`,
      });
    }
  });
  return records;
}

/** A worklist item the codec could not encode was left out of an answer: name its order to whoever must fix it. */
export function auditSkippedItem(
  audit: AuditSink,
  logger: Logger,
  ownAeTitle: string,
  origin: WorklistResponseOrigin | undefined,
  code: string,
  ctx: { readonly association: AssociationContext; readonly transferSyntaxUid: string },
): void {
  const order =
    origin === undefined
      ? 'unknown order'
      : `placer order ${origin.placerOrderNumber}${origin.placerIssuer === '' ? '' : `^${origin.placerIssuer}`}, step ${origin.scheduledProcedureStepId}`;
  logger.warn('worklist.item-skipped', {
    code,
    placerOrderNumber: origin?.placerOrderNumber ?? 'unknown',
    transferSyntaxUid: ctx.transferSyntaxUid,
    associationId: ctx.association.associationId,
  });
  audit.record({
    eventId: 'Query',
    type: 'worklist.item-skipped',
    action: 'E',
    outcome: 4,
    at: Date.now(),
    participants: [
      { kind: 'dicom', id: ctx.association.callingAeTitle, address: ctx.association.remoteAddress, requestor: true },
      { kind: 'dicom', id: ownAeTitle, requestor: false },
    ],
    ...(origin === undefined ? {} : { patient: origin.patient, accessionNumber: origin.accessionNumber }),
    controlId: ctx.association.associationId,
    detail: `${order} left out of the answer: ${code} in transfer syntax ${ctx.transferSyntaxUid}`,
  });
}

export function auditDicom(audit: AuditSink, e: DicomEvent): void {
  switch (e.type) {
    case 'association-rejected':
      audit.record(
        securityAlert(
          'dicom.association-rejected',
          [{ kind: 'dicom', id: e.callingAeTitle ?? 'unknown', address: e.remoteAddress, requestor: true }],
          e.why,
        ),
      );
      return;
    case 'tls-handshake-failed':
      audit.record(
        securityAlert(
          'dicom.tls-handshake-failed',
          [{ kind: 'dicom', id: 'unknown', address: e.remoteAddress, requestor: true }],
          e.subject === undefined ? e.reason : `${e.reason}; presented ${e.subject}`,
        ),
      );
      return;
    case 'connection-refused':
      audit.record(
        securityAlert('dicom.connection-refused', [{ kind: 'dicom', id: 'unknown', address: e.remoteAddress, requestor: true }], e.why),
      );
      return;
    case 'association-aborted':
      if (e.by === 'local') {
        audit.record(
          securityAlert(
            'dicom.association-aborted',
            [{ kind: 'dicom', id: e.callingAeTitle ?? 'unknown', address: e.remoteAddress, requestor: true }],
            e.why,
          ),
        );
      }
      return;
    case 'association-accepted':
    case 'association-released':
      return;
  }
}

/**
 * The patient, accession and study a worklist answer returned, when every result named the same one
 * (typically a single match): who the query disclosed. Only what the modality asked to be returned is
 * known; several different values name nobody (the query in the record tells what was asked).
 */
export class AnsweredSubject {
  readonly #seen = new Map<number, string | null>();
  readonly #patients = new Map<string, PatientIdentifier>();
  readonly #accessions = new Set<string>();
  #omitted = 0;

  add(result: DataSet): void {
    for (const tag of [Tag.PatientID, Tag.IssuerOfPatientID, Tag.AccessionNumber, Tag.StudyInstanceUID]) {
      const v = textOf(result, tag)?.trim() ?? '';
      const before = this.#seen.get(tag);
      if (before === undefined) this.#seen.set(tag, v);
      else if (before !== null && before !== v) this.#seen.set(tag, null);
    }
    const id = textOf(result, Tag.PatientID)?.trim() ?? '';
    if (id !== '') {
      const issuer = textOf(result, Tag.IssuerOfPatientID)?.trim() ?? '';
      const key = `${issuer}\u0000${id}`;
      if (!this.#patients.has(key)) {
        if (this.#patients.size < MAX_DISCLOSED) this.#patients.set(key, { id: id.slice(0, 64), issuer: issuer.slice(0, 64) });
        else this.#omitted++;
      }
    }
    const accession = textOf(result, Tag.AccessionNumber)?.trim() ?? '';
    if (accession !== '' && this.#accessions.size < MAX_DISCLOSED) this.#accessions.add(accession.slice(0, 64));
  }

  /** Everyone the answer disclosed, for the encrypted chain (alert rules, breach-scope reports). */
  disclosed(): Pick<AuditEvent, 'disclosed'> {
    if (this.#patients.size === 0 && this.#accessions.size === 0) return {};
    return { disclosed: { patients: [...this.#patients.values()], accessionNumbers: [...this.#accessions], omitted: this.#omitted } };
  }

  subject(): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
    return subjectOf((tag) => {
      const v = this.#seen.get(tag);
      return v === undefined || v === null || v === '' ? undefined : v.slice(0, 64);
    });
  }
}

/** Patients and accession numbers listed per answer; more are counted (a record stays a few KB). */
const MAX_DISCLOSED = 1000;

/** Larger identifiers are named by their keys only (a worklist query is a few hundred bytes). */
export const MAX_AUDITED_QUERY_BYTES = 64 * 1024;

/**
 * The patient and order a worklist query names by single-value keys (a scanned accession or patient
 * id), so the Query record can be found with the rest of that order's trail. Wildcards, lists and
 * ranges name nobody in particular: the query itself (in the record) tells what was asked.
 */
export function queriedSubject(identifier: DataSet): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  return subjectOf((tag) => {
    const v = textOf(identifier, tag)?.trim();
    return v === undefined || v === '' || /[*?\\]/.test(v) ? undefined : v.slice(0, 64);
  });
}

/** The patient, accession and study of an audit record, from whatever `valueOf` knows of their tags. */
function subjectOf(valueOf: (tag: number) => string | undefined): Pick<AuditEvent, 'patient' | 'accessionNumber' | 'studyInstanceUid'> {
  const patientId = valueOf(Tag.PatientID);
  const accessionNumber = valueOf(Tag.AccessionNumber);
  const studyInstanceUid = valueOf(Tag.StudyInstanceUID);
  return {
    ...(patientId === undefined ? {} : { patient: { id: patientId, issuer: valueOf(Tag.IssuerOfPatientID) ?? '' } }),
    ...(accessionNumber === undefined ? {} : { accessionNumber }),
    ...(studyInstanceUid === undefined ? {} : { studyInstanceUid }),
  };
}

/** The query keys a modality used, as tags (never their values: they may hold patient data). */
export function queryKeys(identifier: DataSet): string {
  return [...identifier.keys()]
    .filter((t) => t !== Tag.SpecificCharacterSet)
    .map((t) => t.toString(16).padStart(8, '0'))
    .join(',');
}
