// The counters the clinical path feeds for the central monitor (Prometheus, through the admin adapter).
// Each call is one counter increment and nothing more: values that are cheap to read (queue depth,
// spool bytes, connections) are read when the monitor scrapes, never pushed from the clinical path.
// Labels are bounded: peer names come from the config, message types and status classes from fixed
// sets; never patient data or free text.

/** HL7 v2 message types counted by name; anything else is counted as `other` (a peer controls MSH-9). */
export const COUNTED_HL7_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'ORM^O01',
  'OMI^O23',
  'OMG^O19',
  'ADT^A01',
  'ADT^A04',
  'ADT^A08',
  'ADT^A40',
]);

/** A DIMSE status as its class (PS3.7 C): success, warning, cancel, pending or failure. */
export type DimseStatusClass = 'success' | 'warning' | 'cancel' | 'pending' | 'failure';

export function dimseStatusClass(status: number): DimseStatusClass {
  if (status === 0x0000) return 'success';
  if (status === 0x0001 || status === 0x0107 || status === 0x0116 || (status & 0xf000) === 0xb000) return 'warning';
  if (status === 0xfe00) return 'cancel';
  if (status === 0xff00 || status === 0xff01) return 'pending';
  return 'failure';
}

/** Which listener refused a connection or association (the `listener` label). */
export type MetricsListener = 'hl7' | 'dicom-tls' | 'dicom-plain' | 'admin';

export interface EdgeMetrics {
  /** An HL7 message answered: its MSH-9 (message code ^ trigger event) and the ACK code sent. */
  hl7Message(peer: string, messageType: string, ackCode: string): void;
  /** A connection or association refused before or at authentication; `reason` from a fixed set. */
  refusal(listener: MetricsListener, reason: string): void;
  /** One Modality Worklist C-FIND answered, with its duration. */
  worklistQuery(aeTitle: string, seconds: number): void;
  /** One MPPS N-CREATE or N-SET answered. */
  mpps(aeTitle: string, operation: 'n-create' | 'n-set', statusClass: DimseStatusClass): void;
  /** One C-STORE answered; `bytes` of a stored instance. */
  cStore(aeTitle: string, statusClass: DimseStatusClass, bytes: number): void;
}

/** For parts built without a monitor (tests of one flow, safe mode). */
export const noMetrics: EdgeMetrics = {
  hl7Message: () => undefined,
  refusal: () => undefined,
  worklistQuery: () => undefined,
  mpps: () => undefined,
  cStore: () => undefined,
};

/** The label value for a message type: itself when counted by name, else `other`. */
export function countedHl7MessageType(messageType: string): string {
  return COUNTED_HL7_MESSAGE_TYPES.has(messageType) ? messageType : 'other';
}
