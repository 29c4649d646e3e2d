// Downtime order entry: while the RIS cannot take orders, an operator enters one at the box (admin page
// or `edgectl order add`). It gets an accession number from the site's local range, the box's own placer
// order number, a generated Study Instance UID, and a temporary patient ID when the patient's is not
// known; it is marked downtime in the order, in the step's comments (what the technologist sees on the
// modality) and in the audit trail; reconciliation with the RIS follows when it is back.
import { randomUUID } from 'node:crypto';
import { type Order, OrderOrigin, OrderStatus, StepStatus } from './order.ts';
import { worklistValueProblem } from './worklist-attributes.ts';
import { Tag } from './data-dictionary.ts';

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
