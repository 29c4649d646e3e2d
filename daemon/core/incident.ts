// Incident support: the alerts the box raises from its own audit trail, and the peers an operator has
// quarantined. An alert is explainable: it names its rule, the threshold, what was observed and the
// audit records (by sequence number) that are its evidence. Repeats of the same rule for the same subject
// are grouped into the open alert instead of raising new ones.

/** Who an alert is about: the requestor of the audited events (a modality, an HL7 sender, a user). */
export interface AlertSubject {
  readonly kind: 'dicom' | 'hl7' | 'user' | 'system' | 'address';
  readonly id: string;
}

export type AlertRuleName =
  | 'mass-access'
  | 'mass-access-baseline'
  | 'after-hours'
  | 'unknown-peer-knocking'
  | 'refusal-burst'
  | 'new-certificate'
  | 'new-message-type'
  | 'security-event';

export interface Alert {
  /** Stable id: rule and subject, plus the time the alert was first raised. */
  readonly id: string;
  readonly rule: AlertRuleName;
  readonly subject: AlertSubject;
  /** The rule's threshold in words, e.g. "more than 50 distinct patients in 10 min". */
  readonly threshold: string;
  /** What was observed, in words without patient data, e.g. "63 distinct patients in 10 min". */
  readonly observed: string;
  /** Sequence numbers of the audit records that are the evidence (the first ones, capped). */
  readonly evidence: readonly number[];
  /** Evidence records not listed (the cap was reached). */
  readonly evidenceOmitted: number;
  /** ms since epoch */
  readonly firstAt: number;
  readonly lastAt: number;
  /** Times the rule fired for this subject while the alert was open (1 when raised). */
  readonly count: number;
  readonly state: 'open' | 'acknowledged';
  readonly acknowledged?: { readonly by: string; readonly at: number; readonly note: string };
  /** Sequence number of the Security Alert record that raised it. */
  readonly raisedSeq?: number;
}

/**
 * Where edged writes the quarantined peers (kind and name only) in its data directory; the root firewall
 * (`edgectl segmentation apply`, re-run by the edge-firewall path unit when it changes) leaves them out.
 */
export const QUARANTINE_FILE = 'quarantine.json';

export interface Quarantine {
  /** hl7 → an HL7 sender (hl7.peers name); modality → a modality (its calling AE title). */
  readonly kind: 'hl7' | 'modality';
  readonly name: string;
  readonly reason: string;
  readonly by: string;
  /** ms since epoch */
  readonly at: number;
}

/** Where alerts, quarantines and the rules' baselines are kept (encrypted, in the store). */
export interface IncidentStore {
  saveAlert(alert: Alert): Promise<void>;
  alerts(): Promise<Alert[]>;
  saveQuarantine(q: Quarantine): Promise<void>;
  removeQuarantine(kind: Quarantine['kind'], name: string): Promise<void>;
  quarantines(): Promise<Quarantine[]>;
  saveBaseline(state: unknown): Promise<void>;
  baseline(): Promise<unknown>;
}
