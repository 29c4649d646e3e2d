// The order domain: what the RIS tells the box, after the hl7 adapter has parsed and validated it.
// Field names follow the DICOM Modality Worklist attributes they become (IHE RAD TF-2 Table 4.5-x).

/** A coded entry (HL7 CE/CWE → DICOM Code Sequence item). */
export interface CodedEntry {
  readonly codeValue: string;
  readonly codingSchemeDesignator: string;
  readonly codeMeaning: string;
  readonly codingSchemeVersion?: string;
}

export interface PatientIdentifier {
  readonly id: string;
  /** Assigning authority (PID-3.4 namespace id); '' when the RIS sends none. */
  readonly issuer: string;
  /**
   * The identifier as the RIS sent it (HL7 CX, decoded): components, each its sub-components. Kept so
   * messages back to the RIS repeat every component (identifier type code CX.5, assigning facility …),
   * not only the two the worklist uses. Absent in orders stored before it was kept.
   */
  readonly asReceived?: readonly (readonly string[])[];
}

export interface Patient extends PatientIdentifier {
  /** DICOM PN: up to three component groups (alphabetic=ideographic=phonetic), components by `^`. */
  readonly name: string;
  /** YYYYMMDD or ''. */
  readonly birthDate: string;
  /** M, F, O or ''. */
  readonly sex: string;
  readonly otherIds: readonly PatientIdentifier[];
  readonly medicalAlerts?: string;
  readonly allergies?: string;
  readonly weightKg?: string;
  readonly sizeM?: string;
  readonly pregnancyStatus?: string;
}

export const StepStatus = {
  Scheduled: 'SCHEDULED',
  Arrived: 'ARRIVED',
  Ready: 'READY',
  Started: 'STARTED',
  Departed: 'DEPARTED',
} as const;
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus];

export interface ScheduledProcedureStep {
  readonly id: string;
  readonly modality: string;
  /** '' when the RIS did not assign a station. */
  readonly stationAeTitle: string;
  readonly stationName: string;
  readonly location: string;
  /** YYYYMMDD */
  readonly startDate: string;
  /** HHMMSS (may be shorter: HHMM) */
  readonly startTime: string;
  readonly description: string;
  readonly protocolCodes: readonly CodedEntry[];
  readonly performingPhysician: string;
  readonly status: StepStatus;
  /** Comments on the Scheduled Procedure Step for the technologist (a downtime order says so here). */
  readonly comments?: string;
}

export const OrderStatus = {
  Scheduled: 'scheduled',
  InProgress: 'in-progress',
  Held: 'held',
  Completed: 'completed',
  Cancelled: 'cancelled',
  Discontinued: 'discontinued',
} as const;
export type OrderStatus = (typeof OrderStatus)[keyof typeof OrderStatus];

/** Statuses under which an order's steps appear on the worklist. */
export const WORKLIST_STATUSES: ReadonlySet<OrderStatus> = new Set([OrderStatus.Scheduled, OrderStatus.InProgress]);

export interface OrderSource {
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  /** MSH-10 of the message that last changed the order. */
  readonly controlId: string;
  /** ms since epoch, when the box received that message. */
  readonly receivedAt: number;
}

export interface Order {
  /** ORC-2 / OBR-2 entity identifier; with `placerIssuer`, the order's identity. */
  readonly placerOrderNumber: string;
  readonly placerIssuer: string;
  readonly fillerOrderNumber: string;
  readonly accessionNumber: string;
  readonly requestedProcedureId: string;
  readonly requestedProcedureDescription: string;
  readonly requestedProcedureCode: CodedEntry | undefined;
  readonly requestedProcedurePriority: string;
  readonly reasonForRequestedProcedure: string;
  readonly studyInstanceUid: string;
  /** True when the RIS sent no Study Instance UID and the box generated one. */
  readonly studyInstanceUidGenerated: boolean;
  readonly referringPhysicianName: string;
  readonly requestingPhysician: string;
  readonly admissionId: string;
  readonly currentPatientLocation: string;
  readonly patient: Patient;
  readonly steps: readonly ScheduledProcedureStep[];
  readonly status: OrderStatus;
  readonly source: OrderSource;
  /** Where the order came from; absent = the RIS over HL7 (every order written before origins existed). */
  readonly origin?: OrderOrigin;
  /** Set on orders a person entered at the box while the RIS could not take them (core/downtime-order.ts). */
  readonly downtime?: DowntimeMark;
}

/** Who entered a downtime order, why, and how far its reconciliation with the RIS has come. */
export interface DowntimeMark {
  readonly enteredBy: string;
  readonly reason: string;
  /** ms since epoch */
  readonly enteredAt: number;
  /** True when the patient ID is a temporary one the box assigned. */
  readonly temporaryPatientId: boolean;
  /** What the order said when it was entered; kept once the RIS has linked it (images carry these). */
  readonly original?: { readonly accessionNumber: string; readonly patient: PatientIdentifier & { readonly name: string } };
  /** Set when an order from the RIS named the box's placer number (core/downtime-order.ts linkDowntimeOrder). */
  readonly linked?: { readonly at: number; readonly controlId: string; readonly accessionNumber: string };
  /** Why a person must look at the link (IHE Patient Information Reconciliation). */
  readonly conflict?: { readonly kind: 'patient-differs'; readonly detail: string; readonly at: number };
  /** A person looked at the conflict (or the missing answer) and closed it. */
  readonly resolved?: { readonly by: string; readonly at: number; readonly note: string };
}

export const OrderOrigin = {
  /** Orders the RIS sent over HL7. */
  Hl7: 'hl7',
  /** Items pulled from the upstream worklist provider (core/upstream-worklist.ts). */
  UpstreamMwl: 'upstream-mwl',
  /** Orders a person entered at the box during a RIS downtime (core/downtime-order.ts). */
  Downtime: 'downtime',
} as const;
export type OrderOrigin = (typeof OrderOrigin)[keyof typeof OrderOrigin];

/** One worklist item: one scheduled procedure step of an order (PS3.4 K.6.1.2). */
export interface WorklistItem {
  readonly order: Order;
  readonly step: ScheduledProcedureStep;
}

/** What an inbound HL7 message asks the box to do, in domain terms. */
export type OrderCommand =
  /** New order (ORC-1 NW) or order replaced (XO): insert or replace whole. */
  | { readonly type: 'order-upsert'; readonly order: Order }
  /** Status change (CA, DC, SC). */
  | {
      readonly type: 'order-status';
      readonly placerOrderNumber: string;
      readonly placerIssuer: string;
      readonly status: OrderStatus;
      readonly source: OrderSource;
    }
  /** Demographics changed (ADT A08, A01, A04): every order of the patient takes the new values. */
  | { readonly type: 'patient-update'; readonly patient: Patient; readonly source: OrderSource }
  /** Merge (ADT A40): every order of `prior` moves to `surviving`. */
  | {
      readonly type: 'patient-merge';
      readonly surviving: Patient;
      readonly prior: PatientIdentifier;
      readonly source: OrderSource;
    };

/** The identity of the message that carried commands, for replay protection. */
export interface MessageReceipt {
  /** Sending application and facility as authenticated (MSH-3^MSH-4). */
  readonly sender: string;
  /** MSH-10 */
  readonly controlId: string;
  readonly receivedAt: number;
}

export function orderIdentity(placerOrderNumber: string, placerIssuer: string): string {
  return `${placerIssuer}\u0000${placerOrderNumber}`;
}

/** The identity of a pulled item: (Accession Number, Scheduled Procedure Step ID), apart from HL7 placer numbers. */
export function upstreamItemIdentity(accessionNumber: string, spsId: string): string {
  return `${OrderOrigin.UpstreamMwl}\u0001${accessionNumber}\u0000${spsId}`;
}

/** The identity an order is stored under. */
export function orderRecordIdentity(order: Order): string {
  return order.origin === OrderOrigin.UpstreamMwl
    ? upstreamItemIdentity(order.accessionNumber, order.steps[0]?.id ?? '')
    : orderIdentity(order.placerOrderNumber, order.placerIssuer);
}
