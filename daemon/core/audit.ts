// Audit events in the shape of DICOM PS3.15 A.5 audit messages (event id, action, outcome, participants,
// participant objects). The audit adapter turns them into DICOM audit XML and syslog; the core only says
// what happened. Recording an event never blocks or fails a clinical flow.
import type { ActionOf, AuditEventType, EventIdOf, OutcomeOf } from './audit-events.ts';
import type { PatientIdentifier } from './order.ts';

export interface AuditParticipant {
  /** 'hl7' → application^facility; 'dicom' → AE title; 'user' → user name; 'system' → this box. */
  readonly kind: 'hl7' | 'dicom' | 'user' | 'system';
  readonly id: string;
  readonly address?: string;
  readonly requestor: boolean;
}

/**
 * One audit record. `type` names it in the registry (audit-events.ts), which also fixes the Event IDs,
 * actions and outcome a record of that type may carry; `AuditEvent<'hl7.peer-refused'>` is held to that
 * entry, plain `AuditEvent` to any entry's.
 */
export interface AuditEvent<T extends AuditEventType = AuditEventType> {
  readonly eventId: EventIdOf<T>;
  /** A stable short name of what happened, `area.kebab-case`: a key of the registry. */
  readonly type: T;
  readonly action: ActionOf<T>;
  readonly outcome: OutcomeOf<T>;
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
   * Everyone a query answer or a view disclosed (a worklist answer names many patients): patient data,
   * so it lives only in the encrypted chain (alert rules and breach-scope reports read it); the audit
   * XML and syslog stream never render it.
   */
  readonly disclosed?: AuditDisclosure;
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

export interface AuditDisclosure {
  readonly patients: readonly PatientIdentifier[];
  readonly accessionNumbers: readonly string[];
  /** Distinct patients beyond the recorded cap (a very large answer is counted, not listed). */
  readonly omitted: number;
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
  /** Never throws, never awaits the disk. Generic so that a literal record is held to its type's entry. */
  record<T extends AuditEventType>(event: AuditEvent<T>): void;
}

export const nullAuditSink: AuditSink = { record() {} };
