// One registry of the box's error codes. Callers branch on `code` (stable API) and on `kind`
// (retry policy), never on the message. Each protocol edge maps codes to its wire in one place.

export const ErrorKind = {
  /** Try again later; nothing was changed. */
  Transient: 'transient',
  /** It may or may not have happened (a timeout after sending). */
  Ambiguous: 'ambiguous',
  /** Retrying the same input will fail the same way. */
  Permanent: 'permanent',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

export const ErrorCodes = {
  EDGE_CONFIG_INVALID: { kind: 'permanent', summary: 'the configuration does not match the schema' },
  EDGE_CONFIG_UNREADABLE: { kind: 'permanent', summary: 'the configuration file cannot be read or parsed' },
  EDGE_STORE_LOCKED: { kind: 'permanent', summary: 'another process holds the data directory' },
  EDGE_STORE_WRITE_FAILED: { kind: 'transient', summary: 'a durable write did not complete' },
  EDGE_STORE_DECRYPT_FAILED: { kind: 'permanent', summary: 'a stored value failed authentication (wrong key or tampering)' },
  EDGE_STORE_UNKNOWN_KEY_ID: { kind: 'permanent', summary: 'a stored value names a data key this box does not hold' },
  EDGE_KEYS_UNAVAILABLE: { kind: 'permanent', summary: 'the data key could not be loaded' },
  EDGE_KEYS_FILE_MODE: { kind: 'permanent', summary: 'the key file is readable by group or others' },
  EDGE_KEYS_ROTATION_UNSUPPORTED: { kind: 'permanent', summary: 'this key backend cannot rotate the data key' },
  EDGE_KEYS_ROTATION_BUSY: { kind: 'transient', summary: 'a data-key rotation is already running' },
  EDGE_KEYS_RECOVERY_FAILED: { kind: 'permanent', summary: 'the recovery secret does not open the key escrow' },
  EDGE_TPM_UNAVAILABLE: { kind: 'permanent', summary: 'no TPM answers at the configured TCTI' },
  EDGE_TPM_COMMAND_FAILED: { kind: 'permanent', summary: 'a TPM command (tpm2-tools) failed' },
  EDGE_TPM_TIMEOUT: { kind: 'transient', summary: 'a TPM command did not finish in time' },
  EDGE_TPM_POLICY_MISMATCH: { kind: 'permanent', summary: 'PCR values differ from those the keys were sealed to (boot chain changed)' },
  EDGE_TPM_LOCKOUT: { kind: 'permanent', summary: 'the TPM is in dictionary-attack lockout' },
  EDGE_TPM_OBJECT_MISSING: { kind: 'permanent', summary: 'a sealed key is not in the TPM (evicted or another TPM)' },
  EDGE_TLS_MATERIAL: { kind: 'permanent', summary: 'a certificate, key or CA file cannot be loaded' },
  EDGE_HL7_FRAME_TOO_LARGE: { kind: 'permanent', summary: 'an MLLP frame exceeded the size cap' },
  EDGE_HL7_FRAME_INVALID: { kind: 'permanent', summary: 'bytes outside an MLLP frame' },
  EDGE_HL7_FRAME_TIMEOUT: { kind: 'permanent', summary: 'an MLLP frame was not completed within the frame deadline' },
  EDGE_HL7_PARSE: { kind: 'permanent', summary: 'the message is not valid HL7 v2' },
  EDGE_HL7_LIMIT_EXCEEDED: {
    kind: 'permanent',
    summary: 'the message has more segments, order groups, fields, repetitions, components or sub-components than the configured caps',
  },
  EDGE_HL7_UNSUPPORTED_MESSAGE: { kind: 'permanent', summary: 'the message type or trigger event is not supported' },
  EDGE_HL7_REQUIRED_FIELD: { kind: 'permanent', summary: 'a required field is missing' },
  EDGE_HL7_INVALID_FIELD: { kind: 'permanent', summary: 'a field has an invalid value' },
  EDGE_HL7_UNSUPPORTED_CHARSET: { kind: 'permanent', summary: 'MSH-18 names a character set the box does not support' },
  EDGE_DICOM_PDU_TOO_LARGE: { kind: 'permanent', summary: 'a PDU exceeded the size cap' },
  EDGE_DICOM_PDU_INVALID: { kind: 'permanent', summary: 'a PDU or DIMSE message is malformed' },
  EDGE_DICOM_TIMEOUT: { kind: 'transient', summary: 'a DICOM peer did not answer in time' },
  EDGE_DICOM_DATASET_INVALID: { kind: 'permanent', summary: 'a dataset cannot be decoded' },
  EDGE_LISTEN_FAILED: { kind: 'permanent', summary: 'a listener could not bind its address' },
  EDGE_CONTROL_BAD_REQUEST: { kind: 'permanent', summary: 'a control API request is malformed' },
  EDGE_CONTROL_NOT_FOUND: { kind: 'permanent', summary: 'the control API has no such route' },
  EDGE_ACCESS_UNAUTHENTICATED: { kind: 'permanent', summary: 'the admin API route needs a signed-in session (none, expired or forged)' },
  EDGE_ACCESS_SIGN_IN_FAILED: {
    kind: 'permanent',
    summary: 'sign-in refused: unknown user, wrong password or code, or the account is locked or disabled (one answer for all)',
  },
  EDGE_ACCESS_SIGN_IN_INCOMPLETE: {
    kind: 'permanent',
    summary: 'the session has not finished signing in (second factor, new password or TOTP enrolment pending)',
  },
  EDGE_ACCESS_THROTTLED: { kind: 'transient', summary: 'too many failed sign-ins for this user name or from this address: back-off' },
  EDGE_ACCESS_FORBIDDEN: { kind: 'permanent', summary: "the user's role does not have the route's permission" },
  EDGE_ACCESS_STEP_UP_REQUIRED: { kind: 'permanent', summary: 'a sensitive action needs the password or a TOTP code proven again' },
  EDGE_ACCESS_HOST_REFUSED: { kind: 'permanent', summary: 'the Host header is not one of admin.hostNames (DNS rebinding defence)' },
  EDGE_ACCESS_ORIGIN_REFUSED: {
    kind: 'permanent',
    summary: 'a write without this listener as its Origin, or from another site (CSRF defence)',
  },
  EDGE_ACCESS_PASSWORD_POLICY: { kind: 'permanent', summary: 'the new password is too short or a common password' },
  EDGE_ACCESS_USER_EXISTS: { kind: 'permanent', summary: 'a user of that name exists' },
  EDGE_ACCESS_USER_NOT_FOUND: { kind: 'permanent', summary: 'no user of that name' },
  EDGE_ACCESS_USER_INVALID: { kind: 'permanent', summary: 'a user name, display name or role is malformed' },
  EDGE_ACCESS_MFA_INVALID: { kind: 'permanent', summary: 'the TOTP or recovery code is wrong, used already, or no enrolment is pending' },
  EDGE_ACCESS_BREAK_GLASS_INVALID: { kind: 'permanent', summary: 'break-glass needs a reason; or no such break-glass record' },
  EDGE_SHUTDOWN: { kind: 'transient', summary: 'the box is stopping' },
  EDGE_START_STEP_TIMEOUT: { kind: 'transient', summary: 'a start step that touches the file system did not finish in time' },
  EDGE_CORE_DUMPS_ENABLED: { kind: 'permanent', summary: 'the process could dump core (RLIMIT_CORE is not 0) and could not disable it' },
  EDGE_WORKLIST_QUERY_INVALID: { kind: 'permanent', summary: 'a worklist query key has a value its VR does not allow' },
  EDGE_SPOOL_FULL: { kind: 'transient', summary: 'the spool file system has no space left for the instance' },
  EDGE_SPOOL_HIGH_WATER: {
    kind: 'transient',
    summary: 'the spool is above its high-water mark; new instances are refused until it drains',
  },
  EDGE_SPOOL_OBJECT_TOO_LARGE: { kind: 'permanent', summary: 'an instance exceeds the configured maximum object size' },
  EDGE_STORE_SCU_REJECTED: { kind: 'permanent', summary: 'the PACS refused an instance with a failure status' },
  EDGE_STORE_SCU_REFUSED: {
    kind: 'transient',
    summary:
      'the PACS answered an instance with a transient failure status (0xA7xx out of resources, 0x0110 processing failure, 0x0213 resource limitation)',
  },
  EDGE_STORE_SCU_FAILED: { kind: 'transient', summary: 'the PACS could not be reached or the association failed' },
  EDGE_STOW_FAILED: { kind: 'transient', summary: 'a STOW-RS request failed (network, timeout or 5xx)' },
  EDGE_STOW_REJECTED: { kind: 'permanent', summary: 'the STOW-RS service refused an instance (4xx or failed SOP sequence)' },
  EDGE_OUTBOX_NOT_FOUND: { kind: 'permanent', summary: 'no outbox entry or dead letter with that id' },
  EDGE_OUTBOX_NOT_ATTEMPTED: {
    kind: 'transient',
    summary: 'not sent because an earlier entry with the same ordering key was not delivered',
  },
  EDGE_OUTBOX_PAYLOAD_INVALID: {
    kind: 'permanent',
    summary: 'an outbox entry holds no payload its destination can send (e.g. not a spooled instance)',
  },
  EDGE_OUTBOX_SENDER_FAILED: { kind: 'transient', summary: 'the sender of a destination failed unexpectedly' },
  EDGE_HL7_OUTBOUND_CONNECT: { kind: 'transient', summary: 'the RIS status receiver cannot be reached (connect or TLS failed)' },
  EDGE_HL7_OUTBOUND_REJECTED: { kind: 'permanent', summary: 'the RIS refused a status message (MSA-1 AE, AR, CE or CR)' },
  EDGE_HL7_OUTBOUND_TIMEOUT: { kind: 'ambiguous', summary: 'the RIS did not acknowledge in time' },
  EDGE_HL7_OUTBOUND_ACK_INVALID: { kind: 'ambiguous', summary: 'the RIS answered with something that is not an ACK for the message' },
  EDGE_AUDIT_COLLECTOR_UNREACHABLE: { kind: 'transient', summary: 'an audit syslog collector cannot be reached' },
  EDGE_AUDIT_CHAIN_BROKEN: { kind: 'permanent', summary: 'the audit chain has a gap, an altered record or a bad hash' },
  EDGE_AUDIT_BUNDLE_INVALID: { kind: 'permanent', summary: 'an audit bundle is malformed or fails verification' },
  EDGE_AUDIT_RANGE_INVALID: { kind: 'permanent', summary: 'the requested audit range is malformed or too large' },
  EDGE_AUDIT_RANGE_EMPTY: { kind: 'permanent', summary: 'the box holds no audit records in the requested range' },
  EDGE_BACKUP_INVALID: { kind: 'permanent', summary: 'a backup file is malformed, truncated or altered' },
  EDGE_BACKUP_KEY_MISMATCH: { kind: 'permanent', summary: "neither the box's keys nor the recovery secret open the backup" },
  EDGE_BACKUP_VERIFY_FAILED: {
    kind: 'permanent',
    summary: 'a restored store failed verification (unreadable value or broken audit chain)',
  },
  EDGE_BACKUP_DAEMON_RUNNING: { kind: 'permanent', summary: 'restore refused: edged is running on the data directory' },
  EDGE_FIREWALL_PLAN_INVALID: {
    kind: 'permanent',
    summary: 'the segmentation plan cannot be built from the configuration (a malformed address, a host name without addresses, port 0)',
  },
  EDGE_FIREWALL_CHECK_FAILED: { kind: 'permanent', summary: 'nft -c refused the generated ruleset; nothing was loaded' },
  EDGE_FIREWALL_NFT_FAILED: { kind: 'transient', summary: 'the nft command failed or could not be run' },
  EDGE_FIREWALL_DRIFT: { kind: 'permanent', summary: 'the loaded firewall table differs from the plan rendered from the configuration' },
} as const satisfies Record<string, { kind: ErrorKind; summary: string }>;
export type ErrorCode = keyof typeof ErrorCodes;

export class EdgeError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** Extra identifiers for logs (never patient data). */
  readonly detail: Readonly<Record<string, string | number | boolean>> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; detail?: Record<string, string | number | boolean> }) {
    super(message ?? ErrorCodes[code].summary, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgeError';
    this.code = code;
    this.kind = ErrorCodes[code].kind;
    this.detail = options?.detail;
  }
}

/** The retry policy of a code; a code this box does not know (a record from an older version) is transient. */
export function kindOf(code: string): ErrorKind {
  return Object.hasOwn(ErrorCodes, code) ? ErrorCodes[code as ErrorCode].kind : ErrorKind.Transient;
}

export function isEdgeError(err: unknown, code?: ErrorCode): err is EdgeError {
  return err instanceof EdgeError && (code === undefined || err.code === code);
}
