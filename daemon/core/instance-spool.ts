// The spool port: where received DICOM instances wait, encrypted and durable, until the PACS confirmed
// them. The storage SCP writes through it (streamed, never whole in memory); the forwarder reads from it.

/** What the box knows about a spooled instance besides its bytes (stored encrypted, never logged). */
export interface SpooledInstanceMeta {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  /** The transfer syntax the data set bytes are in (as received; compressed ones are kept as they are). */
  readonly transferSyntaxUid: string;
  /** The modality that sent it. */
  readonly callingAeTitle: string;
  /** From the header, so the forward can be audited with the study, order and patient it belongs to. */
  readonly studyInstanceUid?: string;
  readonly accessionNumber?: string;
  readonly patientId?: string;
  readonly issuerOfPatientId?: string;
}

export interface SpooledInstance extends SpooledInstanceMeta {
  /** Opaque key of the spool record (a keyed hash of the SOP Instance UID: no patient data). */
  readonly key: string;
  /** Random id of the current file; changes when the same SOP Instance UID is received again. */
  readonly fileId: string;
  /** Data set bytes (without a Part 10 header). */
  readonly bytes: number;
  readonly receivedAt: number;
}

export type SpoolCommitResult =
  /** Durable: file and record synced. `replaced` when this SOP Instance UID was already spooled. */
  { readonly status: 'stored'; readonly instance: SpooledInstance; readonly replaced: boolean };

/** One incoming instance being written. */
export interface SpoolWriter {
  /** Append data set bytes. A returned promise means: stop feeding until it settles (back-pressure). */
  write(fragment: Uint8Array): Promise<void> | undefined;
  /**
   * Finish: flush, fsync file and directory, then commit the record. Throws EdgeError EDGE_SPOOL_FULL
   * (no space; nothing is kept) or EDGE_STORE_WRITE_FAILED.
   */
  commit(meta: SpooledInstanceMeta): Promise<SpoolCommitResult>;
  /** Drop what was written (association aborted, bad data set). Idempotent; never throws. */
  discard(): Promise<void>;
}

export type SpoolAdmission = { readonly accept: true } | { readonly accept: false; readonly why: string };

export interface SpoolUsage {
  readonly instances: number;
  readonly bytes: number;
  readonly highWaterBytes: number;
  readonly maxBytes: number;
  /** Free bytes on the spool's file system. */
  readonly freeBytes: number;
  readonly aboveHighWater: boolean;
  /** Bytes of instances being received now (reserved, not yet committed). */
  readonly inflightBytes: number;
}

export interface InstanceSpool {
  /** Whether a new instance may be received now (high-water mark, free space). */
  admission(): SpoolAdmission;
  begin(): SpoolWriter;
  usage(): SpoolUsage;
}

/** The forwarder's side: find an instance, read its data set, remove it once the PACS confirmed it. */
export interface SpoolReader {
  get(key: string): Promise<SpooledInstance | undefined>;
  /** The data set bytes, decrypted and authenticated chunk by chunk (throws EDGE_STORE_DECRYPT_FAILED). */
  read(instance: SpooledInstance): AsyncIterable<Uint8Array>;
  /** Remove the record and its file, unless a newer copy (another file id) replaced it meanwhile. */
  remove(key: string, fileId: string): Promise<void>;
}

/** Payload of an outbox entry of kind `dicom-instance`: the spool record and file it was queued for. */
export interface SpooledInstanceRef {
  readonly key: string;
  readonly fileId: string;
}

export const DICOM_INSTANCE_KIND = 'dicom-instance';
