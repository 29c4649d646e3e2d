// An audit bundle: one tar file with the records (chain lines and DICOM audit XML), a manifest (range,
// counts, first/last hashes, the previous bundle's last hash, device identity, file digests) and a
// detached CMS SignedData over the manifest by the device key with its certificate chain.
import type { AuditCheckpoint } from '../core/audit-trail.ts';

export const BundleFormat = 'imaging-edge-audit-bundle/1';

export const BundleFile = {
  records: 'records.jsonl',
  xml: 'audit-messages.xml',
  manifest: 'manifest.json',
  signature: 'manifest.p7s',
} as const;

export interface FileDigest {
  readonly bytes: number;
  readonly sha256: string;
}

export interface BundleManifest {
  readonly format: typeof BundleFormat;
  readonly device: {
    readonly site: string;
    /** site.environment of the box that signed the bundle (absent in bundles of older versions). */
    readonly environment?: string;
    readonly certificateSubject: string;
    readonly certificateSha256: string;
  };
  readonly createdAt: string;
  readonly range: { readonly fromSeq: number; readonly toSeq: number; readonly fromTime: string; readonly toTime: string };
  readonly count: number;
  /** prevHash of the first record: the last hash of the bundle before this one (zeros at the start). */
  readonly previousHash: string;
  readonly firstHash: string;
  readonly lastHash: string;
  readonly files: { readonly [BundleFile.records]: FileDigest; readonly [BundleFile.xml]: FileDigest };
  /** When older records were pruned: the signed checkpoint this range continues from. */
  readonly anchor?: AuditCheckpoint;
  /**
   * Records in the range that the box found damaged (and quarantined) and so left out of records.jsonl:
   * the device's signed word that these seqs are missing, and why. The record after a gap links to the
   * damaged record, so its prevHash cannot be checked; everything else still is.
   */
  readonly damaged?: readonly DamagedRange[];
  /** Proofs of a change of device key: each statement signed by the key it replaces. */
  readonly keyChanges?: readonly KeyChangeProof[];
}

export interface DamagedRange {
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly problem: string;
}

export const KeyChangeFormat = 'imaging-edge-audit-key-change/1';

/** `statement` is JSON {format, site, fromCertificateSha256, toCertificateSha256, at}; `cms` (base64) by the old key. */
export interface KeyChangeProof {
  readonly statement: string;
  readonly cms: string;
}
