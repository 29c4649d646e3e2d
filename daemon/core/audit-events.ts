// The registry of every audit event type the box records, with what PS3.15 A.5 says of it: its Event ID
// (DCM code, PS3.16 CID 400), EventActionCode and EventOutcomeIndicator, and a DCM EventTypeCode (CID
// 401/402) where one fits. `AuditEvent['type']` is this registry's key, so recording a type that is not
// here does not type-check; docs/audit-events.md is tied to it by test/docs/audit-events-doc.test.ts.

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

/** DCM EventTypeCodes (PS3.16 CID 401 Audit Event Type, CID 402 Security Alert Type) the box uses. */
export const AuditEventTypeCode = {
  ApplicationStart: { code: '110120', meaning: 'Application Start' },
  ApplicationStop: { code: '110121', meaning: 'Application Stop' },
  NodeAuthentication: { code: '110126', meaning: 'Node Authentication' },
  SecurityConfiguration: { code: '110129', meaning: 'Security Configuration' },
  ObjectSecurityAttributesChanged: { code: '110135', meaning: 'Object Security Attributes Changed' },
  Login: { code: '110122', meaning: 'Login' },
  Logout: { code: '110123', meaning: 'Logout' },
  EmergencyOverrideStarted: { code: '110127', meaning: 'Emergency Override Started' },
  EmergencyOverrideStopped: { code: '110138', meaning: 'Emergency Override Stopped' },
  UseOfRestrictedFunction: { code: '110132', meaning: 'Use of Restricted Function' },
  SecurityRolesChanged: { code: '110136', meaning: 'Security Roles Changed' },
  UserSecurityAttributesChanged: { code: '110137', meaning: 'User Security Attributes Changed' },
} as const;
export type AuditEventTypeCodeName = keyof typeof AuditEventTypeCode;

/** PS3.15 EventActionCode. */
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** PS3.15 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type AuditOutcome = 0 | 4 | 8 | 12;

export interface AuditEventSpec {
  /** The Event IDs a record of this type may carry; the first is the one builders use unless told. */
  readonly eventIds: readonly [AuditEventIdName, ...AuditEventIdName[]];
  /** The EventActionCodes it may carry; the first is the one builders use unless told. */
  readonly actions: readonly [AuditAction, ...AuditAction[]];
  readonly outcome: AuditOutcome;
  readonly eventTypeCode?: AuditEventTypeCodeName;
}

const AA = ['ApplicationActivity'] as const;
const SA = ['SecurityAlert'] as const;
const UA = ['UserAuthentication'] as const;
const ALU = ['AuditLogUsed'] as const;
const DIT = ['DicomInstancesTransferred'] as const;
const HL7_RECORD = ['ProcedureRecord', 'PatientRecord'] as const;
const E = ['E'] as const;

export const AuditEvents = {
  // Application
  'application.start': { eventIds: AA, actions: E, outcome: 0, eventTypeCode: 'ApplicationStart' },
  'application.stop': { eventIds: AA, actions: E, outcome: 0, eventTypeCode: 'ApplicationStop' },
  'store.degraded': { eventIds: AA, actions: E, outcome: 8 },
  'store.recovered': { eventIds: AA, actions: E, outcome: 0 },
  'keys.development-backend': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'SecurityConfiguration' },
  'process.core-dumps-were-enabled': { eventIds: SA, actions: E, outcome: 4 },
  'keys.safe-mode': { eventIds: SA, actions: E, outcome: 4 },
  'keys.data-key-rotated': { eventIds: AA, actions: E, outcome: 0 },
  'keys.data-key-rotation-failed': { eventIds: SA, actions: E, outcome: 4 },
  'network.segmentation-drift': { eventIds: SA, actions: E, outcome: 8 },
  'network.segmentation-restored': { eventIds: AA, actions: E, outcome: 0 },
  // The audit trail itself
  'audit.bundle-pulled': { eventIds: ALU, actions: ['R'], outcome: 0 },
  'audit.ranges-viewed': { eventIds: ALU, actions: ['R'], outcome: 0 },
  'audit.bundle-failed': { eventIds: ALU, actions: ['R'], outcome: 8 },
  'audit.pruned': { eventIds: ALU, actions: ['D'], outcome: 0 },
  'audit.prune-failed': { eventIds: SA, actions: E, outcome: 4 },
  'audit.pull-refused': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'NodeAuthentication' },
  'audit.collector-unreachable': { eventIds: SA, actions: E, outcome: 4 },
  'audit.collector-restored': { eventIds: SA, actions: E, outcome: 0 },
  'audit.checkpoint-failed': { eventIds: SA, actions: E, outcome: 8 },
  'audit.disk-budget-warning': { eventIds: SA, actions: E, outcome: 4 },
  'audit.disk-budget-exceeded': { eventIds: SA, actions: E, outcome: 8 },
  'audit.disk-budget-ok': { eventIds: SA, actions: E, outcome: 0 },
  'audit.chain-damaged': { eventIds: SA, actions: E, outcome: 12, eventTypeCode: 'ObjectSecurityAttributesChanged' },
  'audit.chain-truncated': { eventIds: SA, actions: E, outcome: 12 },
  'audit.records-damaged': { eventIds: SA, actions: E, outcome: 12 },
  'audit.signing-key-changed': { eventIds: SA, actions: E, outcome: 12 },
  // HL7 from the RIS: a Procedure Record for an order, a Patient Record for an ADT update or merge
  'hl7.order-committed': { eventIds: HL7_RECORD, actions: ['C', 'U', 'D'], outcome: 0 },
  'hl7.invalid-message': { eventIds: HL7_RECORD, actions: ['C', 'U', 'D'], outcome: 4 },
  'hl7.apply-failed': { eventIds: HL7_RECORD, actions: ['C', 'U', 'D'], outcome: 8 },
  'hl7.peer-refused': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'NodeAuthentication' },
  'hl7.connection-superseded': { eventIds: SA, actions: E, outcome: 4 },
  'hl7.sender-mismatch': { eventIds: SA, actions: E, outcome: 4 },
  'hl7.unsupported-message': { eventIds: SA, actions: E, outcome: 4 },
  'hl7.processing-id-refused': { eventIds: SA, actions: E, outcome: 4 },
  'hl7.duplicate-control-id': { eventIds: SA, actions: E, outcome: 4 },
  'hl7.framing-error': { eventIds: SA, actions: E, outcome: 4 },
  // DICOM from modalities, and forwarding to the PACS
  'worklist.query': { eventIds: ['Query'], actions: E, outcome: 0 },
  'worklist.item-skipped': { eventIds: ['Query'], actions: E, outcome: 4 },
  'dicom.association-rejected': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'NodeAuthentication' },
  'dicom.tls-handshake-failed': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'NodeAuthentication' },
  'dicom.connection-refused': { eventIds: SA, actions: E, outcome: 4 },
  'dicom.association-aborted': { eventIds: SA, actions: E, outcome: 4 },
  'dicom.instance-stored': { eventIds: DIT, actions: ['C'], outcome: 0 },
  'dicom.instance-refused': { eventIds: DIT, actions: ['C'], outcome: 4 },
  'pacs.instance-forwarded': { eventIds: DIT, actions: ['R'], outcome: 0 },
  'pacs.environment-refused': { eventIds: SA, actions: E, outcome: 8 },
  'pacs.demographics-reconciled': { eventIds: ['PatientRecord'], actions: ['U'], outcome: 0 },
  'pacs.demographics-not-reconciled': { eventIds: ['PatientRecord'], actions: ['U'], outcome: 4 },
  // The upstream worklist cache (C-FIND to the RIS's own MWL SCP)
  'worklist.upstream-imported': { eventIds: ['Import'], actions: ['C'], outcome: 0 },
  'worklist.upstream-item-skipped': { eventIds: ['Import'], actions: ['C'], outcome: 4 },
  'worklist.upstream-stale': { eventIds: AA, actions: E, outcome: 4 },
  'worklist.upstream-fresh': { eventIds: AA, actions: E, outcome: 0 },
  // Downtime orders entered at the box
  'order.downtime-entered': { eventIds: ['ProcedureRecord'], actions: ['C'], outcome: 0 },
  'order.downtime-placed': { eventIds: ['ProcedureRecord'], actions: ['C'], outcome: 0 },
  'order.downtime-linked': { eventIds: ['ProcedureRecord'], actions: ['U'], outcome: 0 },
  'order.downtime-conflict': { eventIds: ['ProcedureRecord'], actions: ['U'], outcome: 4 },
  'order.downtime-resolved': { eventIds: ['ProcedureRecord'], actions: ['U'], outcome: 0 },
  // Storage commitment (PS3.4 Annex J): the modality's request, the box's report
  'storage-commitment.requested': { eventIds: DIT, actions: E, outcome: 0 },
  'storage-commitment.refused': { eventIds: DIT, actions: E, outcome: 4 },
  'storage-commitment.committed': { eventIds: DIT, actions: E, outcome: 0 },
  'storage-commitment.failed': { eventIds: DIT, actions: E, outcome: 4 },
  'storage-commitment.report-sent': { eventIds: DIT, actions: E, outcome: 0 },
  'pacs.storage-committed': { eventIds: DIT, actions: E, outcome: 0 },
  'pacs.storage-commitment-failed': { eventIds: DIT, actions: E, outcome: 4 },
  // Procedure status (MPPS in, HL7 status out)
  'mpps.created': { eventIds: ['ProcedureRecord'], actions: ['C'], outcome: 0 },
  'mpps.updated': { eventIds: ['ProcedureRecord'], actions: ['U'], outcome: 0 },
  'mpps.refused': { eventIds: ['ProcedureRecord'], actions: ['C', 'U'], outcome: 4 },
  'hl7.status-sent': { eventIds: ['ProcedureRecord'], actions: ['U'], outcome: 0 },
  // The outbox: a refused image forward is about DICOM instances, a refused status message about a procedure
  'outbox.dead-lettered': { eventIds: ['ProcedureRecord', 'DicomInstancesTransferred'], actions: E, outcome: 8 },
  'outbox.destination-down': { eventIds: AA, actions: E, outcome: 4 },
  'outbox.destination-up': { eventIds: AA, actions: E, outcome: 0 },
  'outbox.retry-now': { eventIds: AA, actions: E, outcome: 0 },
  'outbox.retry-one': { eventIds: AA, actions: ['U'], outcome: 0 },
  'outbox.retry-all': { eventIds: AA, actions: ['U'], outcome: 0 },
  'outbox.discarded': { eventIds: AA, actions: ['D'], outcome: 0 },
  // Incident support: alerts from the rules over this trail, quarantined peers, breach-scope reports
  'alert.raised': { eventIds: SA, actions: E, outcome: 8 },
  'alert.repeated': { eventIds: SA, actions: E, outcome: 8 },
  'alert.acknowledged': { eventIds: SA, actions: E, outcome: 0 },
  'peer.quarantined': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'SecurityConfiguration' },
  'peer.released': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'SecurityConfiguration' },
  'report.breach-scope': { eventIds: ALU, actions: ['R'], outcome: 0 },
  // The admin page and the central monitor
  'admin.patient-data-viewed': { eventIds: ['PatientRecord'], actions: ['R'], outcome: 0 },
  'metrics.scrape-refused': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'NodeAuthentication' },
  // Configuration reloads
  'config.reloaded': { eventIds: SA, actions: E, outcome: 0 },
  'config.reload-refused': { eventIds: SA, actions: E, outcome: 4 },
  // Backup and restore
  'backup.exported': { eventIds: ['Export'], actions: ['R'], outcome: 0 },
  'backup.export-failed': { eventIds: ['Export'], actions: ['R'], outcome: 8 },
  'backup.restored': { eventIds: ['Import'], actions: ['C'], outcome: 0 },
  // Single sign-on (OpenID Connect) and WebAuthn at the admin listener
  'sso.sign-in': { eventIds: ['UserAuthentication'], actions: E, outcome: 0, eventTypeCode: 'Login' },
  'sso.sign-in-failed': { eventIds: ['UserAuthentication'], actions: E, outcome: 4, eventTypeCode: 'Login' },
  'sso.sign-in-refused': { eventIds: ['UserAuthentication'], actions: E, outcome: 4, eventTypeCode: 'Login' },
  'webauthn.credential-registered': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'webauthn.credential-removed': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'webauthn.assertion-failed': { eventIds: ['UserAuthentication'], actions: E, outcome: 4, eventTypeCode: 'Login' },
  // Recorded by edgectl while edged is stopped
  'provision.hardware-check': { eventIds: AA, actions: E, outcome: 0 },
  'provision.device-key': { eventIds: AA, actions: E, outcome: 0 },
  'provision.keys-sealed': { eventIds: AA, actions: E, outcome: 0 },
  'provision.certificate-files': { eventIds: AA, actions: E, outcome: 0 },
  'provision.config-written': { eventIds: AA, actions: E, outcome: 0 },
  'provision.self-test': { eventIds: AA, actions: E, outcome: 0 },
  'provision.admin-created': { eventIds: SA, actions: ['C'], outcome: 0 },
  'decommission.crypto-erase': { eventIds: SA, actions: ['D'], outcome: 0 },
  // People on the admin listener and the console (docs/access-control.md)
  'access.sign-in': { eventIds: UA, actions: E, outcome: 0, eventTypeCode: 'Login' },
  'access.sign-in-failed': { eventIds: UA, actions: E, outcome: 4, eventTypeCode: 'Login' },
  'access.sign-out': { eventIds: UA, actions: E, outcome: 0, eventTypeCode: 'Logout' },
  'access.session-expired': { eventIds: UA, actions: E, outcome: 0, eventTypeCode: 'Logout' },
  'access.session-refused': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'UseOfRestrictedFunction' },
  'access.step-up': { eventIds: UA, actions: E, outcome: 0, eventTypeCode: 'Login' },
  'access.step-up-failed': { eventIds: UA, actions: E, outcome: 4, eventTypeCode: 'Login' },
  'access.locked-out': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.unlocked': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.permission-denied': { eventIds: SA, actions: E, outcome: 4, eventTypeCode: 'UseOfRestrictedFunction' },
  'access.request-refused': { eventIds: SA, actions: E, outcome: 4 },
  'access.user-created': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.user-disabled': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.user-enabled': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.role-changed': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'SecurityRolesChanged' },
  'access.password-changed': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.mfa-enrolled': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.mfa-reset': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'UserSecurityAttributesChanged' },
  'access.recovery-code-used': { eventIds: UA, actions: E, outcome: 0, eventTypeCode: 'Login' },
  'access.break-glass-started': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'EmergencyOverrideStarted' },
  'access.break-glass-stopped': { eventIds: SA, actions: E, outcome: 0, eventTypeCode: 'EmergencyOverrideStopped' },
  'access.break-glass-reviewed': { eventIds: SA, actions: E, outcome: 0 },
} as const satisfies Record<string, AuditEventSpec>;

export type AuditEventType = keyof typeof AuditEvents;
type Registry = typeof AuditEvents;
/** The Event IDs, actions and outcome a record of type T may carry (a union when T is one). */
export type EventIdOf<T extends AuditEventType> = Registry[T]['eventIds'][number];
export type ActionOf<T extends AuditEventType> = Registry[T]['actions'][number];
export type OutcomeOf<T extends AuditEventType> = Registry[T]['outcome'];

/**
 * What the registry says of `type`, or undefined for a type it does not hold (a record written by an
 * older version, read back from the chain).
 */
export function auditEventSpec(type: string): AuditEventSpec | undefined {
  return Object.hasOwn(AuditEvents, type) ? AuditEvents[type as AuditEventType] : undefined;
}
