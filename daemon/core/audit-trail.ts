// The audit trail port: the durable, hash-linked record list the store keeps and the audit adapter reads
// (syslog stream, checkpoints, bundles, retention). Records are addressed by sequence number; each record
// is one JSON line whose SHA-256 the next record carries as `prevHash`, so the exact bytes are the record.
import type { AuditEvent } from './audit.ts';
import type { Environment } from './environment.ts';

/**
 * The JSON object of one chain line: `{"seq":…,"prevHash":…,"event":{…},"environment":…}`, keys in this
 * order. `environment` is the recording box's site.environment (absent in records of older versions).
 */
export interface AuditRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly event: AuditEvent;
  readonly environment?: Environment;
}

/** A record as the chain holds it: the exact line (hashed as UTF-8) and its hash. */
export interface ChainedRecord {
  readonly seq: number;
  readonly line: string;
  readonly hash: string;
}

/** A signed statement by the device that the chain held `hash` at `seq` (CMS over `statement`). */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  /** ms since epoch */
  readonly at: number;
  /** The exact signed bytes (a JSON object with device, seq, hash, at). */
  readonly statement: string;
  /** Detached CMS SignedData (DER, base64) over `statement`. */
  readonly cms: string;
  /** The head anchor's counter value this checkpoint is bound to (also in the signed statement). */
  readonly counter?: number;
}

/**
 * Where the chain's head is kept outside the store, so that deleting the tail of the store (records and
 * checkpoints together) is noticed at the next start: a TPM NV monotonic counter, a head file beside the
 * keys. The checkpointer calls `advance` before it signs a checkpoint and `recorded` once it is saved.
 */
export interface AuditHeadAnchor {
  /** The counter value to bind the next checkpoint to (advanced when due; `final` at a clean stop). */
  advance(final: boolean): Promise<number | undefined>;
  recorded(checkpoint: AuditCheckpoint): Promise<void>;
}

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditTrail {
  /** Highest sequence number known durable (0 when empty). */
  readonly durableSeq: number;
  /** Lowest sequence number still held (records below were pruned); durableSeq + 1 when empty. */
  readonly firstSeq: number;
  /** Hash of the record just before `firstSeq` (GENESIS_HASH unless pruned). */
  readonly anchorHash: string;
  /** Durable records with fromSeq ≤ seq ≤ toSeq, in order. */
  read(fromSeq: number, toSeq?: number): AsyncIterable<ChainedRecord>;
  /** The same records in arrays (one await per batch: bundle export reads millions). */
  readBatches(fromSeq: number, toSeq?: number): AsyncIterable<readonly ChainedRecord[]>;
  /** Called (synchronously, keep it cheap) whenever durableSeq advances. Returns an unsubscribe. */
  onDurable(listener: (durableSeq: number) => void): () => void;
  /** A named reader's position (last sequence number it has finished with), 0 if none. */
  cursor(name: string): Promise<number>;
  setCursor(name: string, seq: number): Promise<void>;
  saveCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  checkpoints(): Promise<AuditCheckpoint[]>;
  /** Delete records with seq ≤ checkpoint.seq; the checkpoint becomes the anchor. Returns how many. */
  pruneThrough(checkpoint: AuditCheckpoint): Promise<number>;
}

export function parseAuditRecord(line: string): AuditRecord {
  return JSON.parse(line) as AuditRecord;
}
