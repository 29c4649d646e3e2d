// Config of the image path: the Storage SCP (SOP classes, transfer syntaxes, spool limits) under
// `dicom.storage`, and the forwarding fields of `upstream.pacs`. Part of the one schema (edge-config-schema.ts).
import { dataLocationProblem } from './file-access.ts';
import { Environments } from '../core/environment.ts';
import { array, boolean, filePath, integer, object, oneOf, optional, string, withDefault } from './schema-kit.ts';
import { uidProblem } from './value-syntax.ts';
import { STANDARD_STORAGE_SOP_CLASS_UIDS } from '../core/storage-sop-classes.ts';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

/**
 * Storage SOP classes accepted by default: every standard one of PS3.4 Annex B (the table in core). A site
 * narrows it by listing its own.
 */
export const DEFAULT_STORAGE_SOP_CLASSES: readonly string[] = STANDARD_STORAGE_SOP_CLASS_UIDS;

/** Transfer syntaxes accepted for storage by default; compressed ones are kept and forwarded as received. */
export const DEFAULT_STORAGE_TRANSFER_SYNTAXES = [
  '1.2.840.10008.1.2.1', // Explicit VR Little Endian
  '1.2.840.10008.1.2', // Implicit VR Little Endian
  '1.2.840.10008.1.2.4.50', // JPEG Baseline (Process 1)
  '1.2.840.10008.1.2.4.51', // JPEG Extended (Process 2 & 4)
  '1.2.840.10008.1.2.4.57', // JPEG Lossless, Non-Hierarchical (Process 14)
  '1.2.840.10008.1.2.4.70', // JPEG Lossless, First-Order Prediction
  '1.2.840.10008.1.2.4.80', // JPEG-LS Lossless
  '1.2.840.10008.1.2.4.81', // JPEG-LS Lossy (Near-Lossless)
  '1.2.840.10008.1.2.4.90', // JPEG 2000 (Lossless Only)
  '1.2.840.10008.1.2.4.91', // JPEG 2000
  '1.2.840.10008.1.2.5', // RLE Lossless
] as const;

const uid = (doc: string) => string({ doc, check: uidProblem, label: 'UID' });

export const storageSchema = object(
  {
    enabled: withDefault(boolean({ doc: 'offer the Storage SOP classes (C-STORE SCP) to the configured modalities' }), true),
    sopClasses: withDefault(
      array(uid('a Storage SOP Class UID'), {
        doc: 'SOP classes accepted; anything else is refused at association time. List a subset to narrow what this site takes',
        minItems: 1,
        unique: [{ key: (u) => u, what: 'SOP class' }],
      }),
      [...DEFAULT_STORAGE_SOP_CLASSES],
      `every Storage SOP class of PS3.4 Table B.5-1 (${DEFAULT_STORAGE_SOP_CLASSES.length}, listed in the DICOM conformance statement)`,
    ),
    transferSyntaxes: withDefault(
      array(uid('a transfer syntax UID'), {
        doc: 'transfer syntaxes accepted for storage, in order of preference; kept as received (deflated and big-endian syntaxes are refused)',
        minItems: 1,
        unique: [{ key: (u) => u, what: 'transfer syntax' }],
      }),
      [...DEFAULT_STORAGE_TRANSFER_SYNTAXES],
    ),
    spool: withDefault(
      object(
        {
          directory: optional(
            filePath({
              doc: 'where spool files live; default `<dataDir>/spool` (may be its own file system; not under /proc, /sys or /dev)',
              mustExist: 'nothing',
              location: dataLocationProblem,
              createdFolder: true,
            }),
          ),
          highWaterBytes: withDefault(
            integer({ doc: 'spooled bytes above which new instances get 0xA700 until the PACS drains the spool', min: MiB, max: 2 ** 50 }),
            20 * GiB,
          ),
          minFreeBytes: withDefault(
            integer({ doc: 'free bytes the spool file system must keep; below it new instances get 0xA700', min: 0, max: 2 ** 50 }),
            GiB,
          ),
          maxObjectBytes: withDefault(integer({ doc: 'largest instance accepted (bytes)', min: MiB, max: 2 ** 40 }), 4 * GiB),
        },
        { doc: 'the encrypted spool of received instances' },
      ),
      {},
    ),
  },
  { doc: 'the Storage SCP (images from modalities, spooled encrypted, then forwarded to upstream.pacs)' },
);

/** Fields of `upstream.pacs` that both routes (DIMSE C-STORE and STOW-RS) read. */
export const pacsCommonFields = {
  maxAssociations: withDefault(integer({ doc: 'associations (or STOW requests) in parallel', min: 1, max: 32 }), 4),
  batchSize: withDefault(integer({ doc: 'instances sent over one association (or one STOW-RS request)', min: 1, max: 1000 }), 50),
  reconcileDemographics: withDefault(
    boolean({
      doc: "on forward, correct Patient's Name, ID, Issuer, Birth Date and Sex in the object from the linked order when the RIS changed them (A08/A40); every change is audited",
    }),
    false,
  ),
  environment: optional(
    oneOf(Environments, {
      doc: "which world this PACS serves; a test or training box refuses to forward to a `production` PACS (each image becomes a dead letter, audited); omitted = the box's own site.environment",
    }),
  ),
} as const;

/** Fields of the STOW-RS route only. */
export const stowRouteFields = {
  stowUrl: string({
    doc: "STOW-RS studies endpoint, e.g. https://pacs.example/dicom-web/studies (the box's certificate is its TLS client certificate)",
    maxLength: 2048,
    check: stowUrlProblem,
    label: 'URL',
  }),
  bearerTokenFile: optional(filePath({ doc: 'file holding the bearer token for STOW-RS (mode 0600)', mustExist: 'file', secret: true })),
} as const;

/** Fields of the DIMSE route only. */
export const dimseRouteFields = {
  maxPduLength: withDefault(integer({ doc: 'largest PDU the box receives from the PACS (bytes)', min: 16_384, max: 1_048_576 }), 65_536),
  storageCommitment: withDefault(
    boolean({
      doc: "ask the PACS's own Storage Commitment SCP for each forwarded instance; a modality's commitment request is then answered success only for instances the PACS committed (its N-EVENT-REPORT comes to the box's DICOM listener as calling AE aeTitle, from host)",
    }),
    false,
  ),
  storageCommitmentReaskMs: withDefault(
    integer({
      doc: 'ask the PACS again for instances it has not reported on this long after the box asked (milliseconds)',
      min: 1000,
      max: 86_400_000,
    }),
    600_000,
  ),
} as const;

/**
 * Keys a STOW-RS route used to need (the route was one object whose DIMSE fields were required): accepted
 * with a warning so those configs stay valid, never read.
 */
export const stowIgnoredKeys = {
  host: 'protocol "stow" sends to stowUrl (host is for protocol "dimse")',
  port: 'protocol "stow" sends to stowUrl (port is for protocol "dimse")',
  aeTitle: 'protocol "stow" has no called AE title (aeTitle is for protocol "dimse")',
  tls: 'protocol "stow" always uses mutual TLS for https URLs (tls is for protocol "dimse")',
  maxPduLength: 'protocol "stow" sends no PDUs (maxPduLength is for protocol "dimse")',
} as const;

function stowUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL, e.g. https://pacs.example/dicom-web/studies';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https (or http) URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials (use bearerTokenFile)';
  return undefined;
}
