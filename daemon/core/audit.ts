// Audit events in the shape of DICOM PS3.15 A.5 audit messages (event id, action, outcome, participants,
// participant objects). The audit adapter turns them into DICOM audit XML and syslog; the core only says
// what happened. Recording an event never blocks or fails a clinical flow.
import type { PatientIdentifier } from './order.ts';

/** Event IDs (DCM codes, PS3.16 CID 400) the box emits. */
export const AuditEventId = {
  ApplicationActivity: { code: '110100', meaning: 'Application Activity' },
  AuditLogUsed: { code: '110101', meaning: 'Audit Log Used' },
  DicomInstancesTransferred: { code: '110104', meaning: 'DICOM Instances Transferred' },
  Export: { code: '110106', meaning: 'Export' },
  Import: { code: '110107', meaning: 'Import' },
  PatientRecord: { code: '110110', meaning: 'Patient Record' },
  ProcedureRecord: { code: '110111', meaning: 'Procedure Record' },
  Query: { code: '110112', meaning: 'Query' },
  SecurityAlert: { code: '110113', meaning: 'Security Alert' },
  UserAuthentication: { code: '110114', meaning: 'User Authentication' },
} as const;
export type AuditEventIdName = keyof typeof AuditEventId;

/** PS3.15 EventActionCode. */
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** PS3.15 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type AuditOutcome = 0 | 4 | 8 | 12;

export interface AuditParticipant {
  /** 'hl7' → application^facility; 'dicom' → AE title; 'user' → user name; 'system' → this box. */
  readonly kind: 'hl7' | 'dicom' | 'user' | 'system';
  readonly id: string;
  readonly address?: string;
  readonly requestor: boolean;
}

export interface AuditEvent {
  readonly eventId: AuditEventIdName;
  /** A stable short name of what happened, e.g. `hl7.sender-refused`, `order.created`. */
  readonly type: string;
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  /** ms since epoch */
  readonly at: number;
  readonly participants: readonly AuditParticipant[];
  /** The patient and order the event is about; stored encrypted, never logged. */
  readonly patient?: PatientIdentifier;
  readonly accessionNumber?: string;
  readonly studyInstanceUid?: string;
  /** PS3.15 A.5.3.12: the query as the requestor sent it (Query events); stored encrypted, never logged. */
  readonly query?: AuditQuery;
  /** Correlates HL7 and DICOM events: MSH-10, DICOM message id, ... */
  readonly controlId?: string;
  /** Why, in words without patient data. */
  readonly detail?: string;
  /**
   * Attribute values an event changed (demographic reconciliation): old and new values are patient
   * data, so they live only in the encrypted chain; the audit XML and syslog stream never render them.
   */
  readonly changes?: readonly AuditValueChange[];
  /**
   * A summary record (audit-coalescer.ts): the same event (type, source, reason) occurred `count` more
   * times after the record of its first occurrence, between `firstAt` and `lastAt`, unrecorded one by one.
   */
  readonly occurrences?: AuditOccurrences;
}

export interface AuditOccurrences {
  readonly count: number;
  /** ms since epoch */
  readonly firstAt: number;
  readonly lastAt: number;
}

/** One changed attribute, named by its DICOM keyword (e.g. `PatientName`). */
export interface AuditValueChange {
  readonly attribute: string;
  readonly old: string;
  readonly new: string;
}

export interface AuditQuery {
  /** The SOP Class queried (ParticipantObjectID). */
  readonly sopClassUid: string;
  /** Transfer syntax of `dataSet` (ParticipantObjectDetail type TransferSyntax). */
  readonly transferSyntaxUid: string;
  /** The query identifier, base64 (ParticipantObjectQuery). */
  readonly dataSet: string;
}

export interface AuditSink {
  /** Never throws, never awaits the disk. */
  record(event: AuditEvent): void;
}

export const nullAuditSink: AuditSink = { record() {} };
