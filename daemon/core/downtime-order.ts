// Downtime order entry: while the RIS cannot take orders, an operator enters one at the box (admin page
// or `edgectl order add`). It gets an accession number from the site's local range, the box's own placer
// order number, a generated Study Instance UID, and a temporary patient ID when the patient's is not
// known; it is marked downtime in the order, in the step's comments (what the technologist sees on the
// modality) and in the audit trail; reconciliation with the RIS follows when it is back.
import { randomUUID } from 'node:crypto';
import { type Order, OrderOrigin, OrderStatus, StepStatus } from './order.ts';
import { worklistValueProblem } from './worklist-attributes.ts';
import { Tag } from './data-dictionary.ts';

/** Outbox entry kind of a downtime order placed with the RIS (payload: the Order). */
export const ORDER_PLACED_KIND = 'hl7-order-placed';

export interface DowntimeOrderRequest {
  readonly patientName: string;
  /** Undefined: the box assigns a temporary ID. */
  readonly patientId?: string;
  readonly birthDate: string;
  readonly sex: string;
  readonly procedure: string;
  readonly modality: string;
  readonly stationAeTitle: string;
  /** YYYYMMDD and HHMM(SS). */
  readonly startDate: string;
  readonly startTime: string;
  readonly reason: string;
}

export interface DowntimeNumbering {
  /** The accession number (and placer order number, requested procedure id) for sequence number `n`. */
  readonly accessionPrefix: string;
  readonly digits: number;
  /** ORC-2.2 / OBR-2.2 of the box's placer numbers (HL7 namespace id). */
  readonly placerIssuer: string;
  readonly temporaryIdPrefix: string;
  /** Issuer of Patient ID of temporary IDs ('' = none). */
  readonly temporaryIdIssuer: string;
}

export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

type Field = 'patientName' | 'patientId' | 'birthDate' | 'sex' | 'procedure' | 'modality' | 'stationAeTitle' | 'scheduledAt' | 'reason';

/** A request body as the control API received it → a request, or every problem with the field at fault. */
export function parseDowntimeOrder(body: unknown): DowntimeOrderRequest | FieldProblem[] {
  const problems: FieldProblem[] = [];
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const str = (field: Field, max: number, required: boolean): string => {
    const v = b[field];
    if (v === undefined || v === '') {
      if (required) problems.push({ field, message: 'is required' });
      return '';
    }
    if (typeof v !== 'string') {
      problems.push({ field, message: 'must be a string' });
      return '';
    }
    const t = v.trim();
    if (t.length > max) problems.push({ field, message: `is longer than ${max} characters` });
    if (worklistValueProblem(Tag.PatientName, t) === 'control-character') problems.push({ field, message: 'holds a control character' });
    if (t.includes('\\')) problems.push({ field, message: 'must not contain a backslash' });
    return t;
  };
  const patientName = str('patientName', 64, true);
  const patientId = str('patientId', 64, false);
  const birthDate = str('birthDate', 8, true);
  if (birthDate !== '' && !validDate(birthDate)) problems.push({ field: 'birthDate', message: 'must be a date YYYYMMDD' });
  const sex = str('sex', 1, true).toUpperCase();
  if (sex !== '' && !['M', 'F', 'O'].includes(sex)) problems.push({ field: 'sex', message: 'must be M, F or O' });
  const procedure = str('procedure', 64, true);
  const modality = str('modality', 16, true).toUpperCase();
  if (modality !== '' && !/^[A-Z0-9_ ]{1,16}$/.test(modality))
    problems.push({ field: 'modality', message: 'must be a DICOM modality code (CT, MR, ...)' });
  const stationAeTitle = str('stationAeTitle', 16, true);
  const scheduledAt = str('scheduledAt', 19, true);
  const when = /^(\d{4})-?(\d{2})-?(\d{2})[T ]?(\d{2}):?(\d{2})(?::?(\d{2}))?$/.exec(scheduledAt);
  if (
    scheduledAt !== '' &&
    (when === null || !validDate(`${when[1]}${when[2]}${when[3]}`) || Number(when[4]) > 23 || Number(when[5]) > 59)
  ) {
    problems.push({ field: 'scheduledAt', message: 'must be a local date and time: YYYY-MM-DDTHH:MM' });
  }
  const reason = str('reason', 200, true);
  if (problems.length > 0 || when === null) return problems;
  return {
    patientName,
    ...(patientId === '' ? {} : { patientId }),
    birthDate,
    sex,
    procedure,
    modality,
    stationAeTitle,
    startDate: `${when[1]}${when[2]}${when[3]}`,
    startTime: `${when[4]}${when[5]}${when[6] ?? '00'}`,
    reason,
  };
}

function validDate(d: string): boolean {
  if (!/^\d{8}$/.test(d)) return false;
  const y = Number(d.slice(0, 4));
  const m = Number(d.slice(4, 6));
  const day = Number(d.slice(6, 8));
  const date = new Date(Date.UTC(y, m - 1, day));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === day;
}

/** The number `n` of the local range as an accession number: prefix + n zero-padded. */
export function downtimeNumber(n: number, numbering: DowntimeNumbering): string {
  return `${numbering.accessionPrefix}${String(n).padStart(numbering.digits, '0')}`;
}

/** What the technologist reads in the step's comments on the modality. */
export function downtimeComment(enteredBy: string, temporaryPatientId: boolean): string {
  return `DOWNTIME ORDER entered at the imaging edge box by ${enteredBy}; to be reconciled with the RIS${temporaryPatientId ? '; TEMPORARY PATIENT ID' : ''}`;
}

/** The order for sequence number `n` of the local range. */
export function downtimeOrder(req: DowntimeOrderRequest, n: number, numbering: DowntimeNumbering, enteredBy: string, now: number): Order {
  const accession = downtimeNumber(n, numbering);
  const temporary = req.patientId === undefined;
  return {
    placerOrderNumber: accession,
    placerIssuer: numbering.placerIssuer,
    fillerOrderNumber: '',
    accessionNumber: accession,
    requestedProcedureId: accession,
    requestedProcedureDescription: req.procedure,
    requestedProcedureCode: undefined,
    requestedProcedurePriority: '',
    reasonForRequestedProcedure: '',
    studyInstanceUid: `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString(10)}`,
    studyInstanceUidGenerated: true,
    referringPhysicianName: '',
    requestingPhysician: '',
    admissionId: '',
    currentPatientLocation: '',
    patient: {
      id: req.patientId ?? `${numbering.temporaryIdPrefix}${String(n).padStart(numbering.digits, '0')}`,
      issuer: temporary ? numbering.temporaryIdIssuer : '',
      name: req.patientName,
      birthDate: req.birthDate,
      sex: req.sex,
      otherIds: [],
    },
    steps: [
      {
        id: `${accession}-1`,
        modality: req.modality,
        stationAeTitle: req.stationAeTitle,
        stationName: '',
        location: '',
        startDate: req.startDate,
        startTime: req.startTime,
        description: req.procedure,
        protocolCodes: [],
        performingPhysician: '',
        status: StepStatus.Scheduled,
        comments: downtimeComment(enteredBy, temporary),
      },
    ],
    status: OrderStatus.Scheduled,
    source: { sendingApplication: OrderOrigin.Downtime, sendingFacility: numbering.placerIssuer, controlId: accession, receivedAt: now },
    origin: OrderOrigin.Downtime,
    downtime: { enteredBy, reason: req.reason, enteredAt: now, temporaryPatientId: temporary },
  };
}

/**
 * The downtime order `before` once the RIS sent its own order naming the box's placer number: the RIS's
 * accession, patient and steps (the RIS is the source of truth), the box's Study Instance UID (images
 * were taken under it), what the order said when entered, and a conflict when the RIS names another
 * patient than the one the operator identified.
 */
export function linkDowntimeOrder(before: Order, fromRis: Order): Order {
  const d = before.downtime!;
  const original = d.original ?? {
    accessionNumber: before.accessionNumber,
    patient: { id: before.patient.id, issuer: before.patient.issuer, name: before.patient.name },
  };
  const conflict = patientConflict(before, fromRis, d.temporaryPatientId);
  return {
    ...fromRis,
    studyInstanceUid: before.studyInstanceUid,
    studyInstanceUidGenerated: before.studyInstanceUidGenerated,
    origin: OrderOrigin.Downtime,
    steps: fromRis.steps.map((s) => ({
      ...s,
      comments: `DOWNTIME ORDER ${original.accessionNumber}, reconciled with the RIS as accession ${fromRis.accessionNumber}`,
    })),
    downtime: {
      enteredBy: d.enteredBy,
      reason: d.reason,
      enteredAt: d.enteredAt,
      temporaryPatientId: d.temporaryPatientId,
      original,
      linked: { at: fromRis.source.receivedAt, controlId: fromRis.source.controlId, accessionNumber: fromRis.accessionNumber },
      ...(conflict === undefined
        ? {}
        : { conflict: { kind: 'patient-differs' as const, detail: conflict, at: fromRis.source.receivedAt } }),
    },
  };
}

/** Words (no values) for how the RIS's patient differs from the one entered, or undefined. */
function patientConflict(before: Order, fromRis: Order, temporary: boolean): string | undefined {
  const a = before.patient;
  const b = fromRis.patient;
  const differs: string[] = [];
  if (!temporary && (a.id !== b.id || a.issuer !== b.issuer)) differs.push('patient ID');
  if (a.birthDate !== '' && b.birthDate !== '' && a.birthDate !== b.birthDate) differs.push('birth date');
  if (a.sex !== '' && b.sex !== '' && a.sex !== b.sex) differs.push('sex');
  return differs.length === 0 ? undefined : `the RIS names a patient with another ${differs.join(', ')} than the one entered`;
}

export const ReconciliationState = {
  /** No RIS is configured to place it with. */
  NotPlaced: 'not-placed',
  /** Placed (or queued for the RIS), no answer yet, within the deadline. */
  Waiting: 'waiting',
  Linked: 'linked',
  /** The RIS refused the order (AE/AR): a dead letter of destination ris. */
  Refused: 'refused',
  /** The RIS named another patient than the one entered. */
  Conflict: 'conflict',
  /** No order from the RIS named the placer number within downtime.answerDeadlineMs. */
  NoAnswer: 'no-answer',
  Resolved: 'resolved',
} as const;
export type ReconciliationState = (typeof ReconciliationState)[keyof typeof ReconciliationState];

/** Where a downtime order stands; refused/conflict/no-answer need a person. */
export function reconciliationState(
  order: Order,
  facts: { readonly placed: boolean; readonly refusedBecause: string | undefined; readonly now: number; readonly answerDeadlineMs: number },
): { readonly state: ReconciliationState; readonly why: string } {
  const d = order.downtime;
  if (d === undefined) return { state: ReconciliationState.Linked, why: 'not a downtime order' };
  if (d.resolved !== undefined) return { state: ReconciliationState.Resolved, why: `resolved by ${d.resolved.by}: ${d.resolved.note}` };
  if (d.conflict !== undefined) return { state: ReconciliationState.Conflict, why: d.conflict.detail };
  if (d.linked !== undefined) return { state: ReconciliationState.Linked, why: `the RIS's accession ${d.linked.accessionNumber}` };
  if (facts.refusedBecause !== undefined) return { state: ReconciliationState.Refused, why: facts.refusedBecause };
  if (!facts.placed)
    return { state: ReconciliationState.NotPlaced, why: 'upstream.ris is not configured: enter the order in the RIS by hand' };
  if (facts.now - d.enteredAt > facts.answerDeadlineMs) {
    return {
      state: ReconciliationState.NoAnswer,
      why: `no order from the RIS named the placer number within ${Math.round(facts.answerDeadlineMs / 60_000)} min`,
    };
  }
  return { state: ReconciliationState.Waiting, why: 'placed with the RIS; waiting for its order naming the placer number' };
}

export const NEEDS_A_PERSON: ReadonlySet<ReconciliationState> = new Set([
  ReconciliationState.Refused,
  ReconciliationState.Conflict,
  ReconciliationState.NoAnswer,
]);
