// Who and what an inbound message is about, for the audit trail only: the patient and the orders it
// names (PS3.15 A.5.3 Patient Record / Procedure Record participant objects). These are patient
// identifiers: they travel in adapter events to the encrypted audit chain and are never logged.
import type { OrderCommand, PatientIdentifier } from '../core/order.ts';
import type { Hl7Message, Hl7Segment } from './message.ts';

/** One patient or order a message touched (or tried to). */
export interface Hl7AuditSubject {
  /** An order (Procedure Record) or only a patient (Patient Record, ADT). */
  readonly kind: 'order' | 'patient';
  /** What the message asked for it: ORC-1 (NW, XO, CA, DC, SC) for orders, the ADT trigger (A08, A40, …) for patients. */
  readonly action: string;
  readonly patient?: PatientIdentifier;
  /** A40: the identifier merged into `patient`. */
  readonly priorPatient?: PatientIdentifier;
  readonly placerOrderNumber?: string;
  readonly placerIssuer?: string;
  readonly accessionNumber?: string;
  readonly studyInstanceUid?: string;
}

/** A message with more orders than this is audited by its first ones (the detail says how many). */
export const MAX_AUDIT_SUBJECTS = 100;

const MAX_VALUE = 64;

function clip(value: string): string {
  return value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v === undefined || v === '' ? undefined : clip(v);
}

/** CX (id^check digit^scheme^assigning authority): the first repetition with an id. */
function identifierIn(segment: Hl7Segment | undefined, field: number): PatientIdentifier | undefined {
  if (segment === undefined) return undefined;
  for (const rep of segment.repetitions(field)) {
    const id = nonEmpty(rep[0]?.[0]);
    if (id !== undefined) return { id, issuer: clip((rep[3]?.[0] ?? '').trim()) };
  }
  return undefined;
}

interface OrderGroup {
  readonly orc: Hl7Segment;
  obr?: Hl7Segment;
  zds?: Hl7Segment;
  ipc?: Hl7Segment;
}

function orderGroups(message: Hl7Message): OrderGroup[] {
  const groups: OrderGroup[] = [];
  let current: OrderGroup | undefined;
  for (const s of message.segments) {
    if (s.name === 'ORC') groups.push((current = { orc: s }));
    else if (current === undefined) continue;
    else if (s.name === 'OBR') current.obr ??= s;
    else if (s.name === 'ZDS') current.zds ??= s;
    else if (s.name === 'IPC') current.ipc ??= s;
  }
  return groups;
}

/** The order a group names, read leniently (this also serves messages that failed validation). */
function orderSubject(group: OrderGroup, patient: PatientIdentifier | undefined): Hl7AuditSubject {
  const { orc, obr, zds, ipc } = group;
  const placer = nonEmpty(orc.get(2, 1, 1)) ?? nonEmpty(obr?.get(2, 1, 1));
  const placerIssuer = nonEmpty(orc.get(2, 1, 2)) ?? nonEmpty(obr?.get(2, 1, 2));
  const accession = nonEmpty(ipc?.get(1, 1, 1)) ?? nonEmpty(obr?.get(18));
  const study = nonEmpty(ipc?.get(3, 1, 1)) ?? nonEmpty(zds?.get(1, 1, 1));
  return {
    kind: 'order',
    action: clip(orc.get(1).trim()),
    ...(patient === undefined ? {} : { patient }),
    ...(placer === undefined ? {} : { placerOrderNumber: placer }),
    ...(placerIssuer === undefined ? {} : { placerIssuer }),
    ...(accession === undefined ? {} : { accessionNumber: accession }),
    ...(study === undefined ? {} : { studyInstanceUid: study }),
  };
}

/**
 * The subjects of a message. With `commands` (the message was mapped), each command is one subject and
 * its values win (a Study Instance UID the box generated exists only there); a status change (CA, DC,
 * SC) takes patient and accession from its ORC group, as the message carried them. Without commands
 * (the message failed validation), whatever the message names is read leniently.
 */
export function auditSubjects(message: Hl7Message, commands?: readonly OrderCommand[]): Hl7AuditSubject[] {
  const patient = identifierIn(message.segment('PID'), 3);
  const groups = message.messageCode === 'ADT' ? [] : orderGroups(message);
  const fromMessage = groups.map((g) => orderSubject(g, patient));
  if (commands === undefined) {
    if (fromMessage.length > 0) return fromMessage.slice(0, MAX_AUDIT_SUBJECTS);
    if (patient === undefined) return [];
    const prior = message.triggerEvent === 'A40' ? identifierIn(message.segment('MRG'), 1) : undefined;
    return [{ kind: 'patient', action: clip(message.triggerEvent), patient, ...(prior === undefined ? {} : { priorPatient: prior }) }];
  }
  const subjects: Hl7AuditSubject[] = [];
  for (const c of commands.slice(0, MAX_AUDIT_SUBJECTS)) {
    switch (c.type) {
      case 'order-upsert': {
        const o = c.order;
        const group = fromMessage.find((s) => s.placerOrderNumber === o.placerOrderNumber);
        subjects.push({
          kind: 'order',
          action: group?.action ?? 'NW',
          patient: { id: o.patient.id, issuer: o.patient.issuer },
          placerOrderNumber: o.placerOrderNumber,
          placerIssuer: o.placerIssuer,
          ...(o.accessionNumber === '' ? {} : { accessionNumber: o.accessionNumber }),
          studyInstanceUid: o.studyInstanceUid,
        });
        break;
      }
      case 'order-status': {
        const group = fromMessage.find((s) => s.placerOrderNumber === c.placerOrderNumber);
        subjects.push({
          ...group,
          kind: 'order',
          action: group?.action ?? c.status,
          placerOrderNumber: c.placerOrderNumber,
          placerIssuer: c.placerIssuer,
        });
        break;
      }
      case 'patient-update':
        subjects.push({ kind: 'patient', action: clip(message.triggerEvent), patient: { id: c.patient.id, issuer: c.patient.issuer } });
        break;
      case 'patient-merge':
        subjects.push({
          kind: 'patient',
          action: clip(message.triggerEvent),
          patient: { id: c.surviving.id, issuer: c.surviving.issuer },
          priorPatient: c.prior,
        });
        break;
    }
  }
  return subjects;
}
