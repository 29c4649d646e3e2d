// Writes a bundle for a sequence range straight from the chain, streaming: chain lines go into the tar
// as they are read: the XML straight into the tar, the chain lines to a side file appended after (the
// smaller of the two), and the manifest is signed last.
import { X509Certificate, createHash } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import type { AuditRecord, AuditTrail } from '../core/audit-trail.ts';
import { EdgeError } from '../core/errors.ts';
import { auditMessageXml } from './audit-message-xml.ts';
import { BundleFile, BundleFormat, type BundleManifest } from './bundle.ts';
import { signDetached } from './cms.ts';
import type { Signer } from './signer.ts';
import { BLOCK, padding, ustarHeader } from './tar.ts';

export interface ExportOptions {
  readonly trail: AuditTrail;
  readonly signer: Signer;
  /** site.name: the audit source id and the manifest's device name. */
  readonly site: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  /** Where to write the bundle (replaced). A side file `<path>.records.tmp` is used while writing. */
  readonly path: string;
  /** The signed checkpoint the range continues from when older records were pruned. */
  readonly anchor?: AuditCheckpoint;
}

type AuditCheckpoint = NonNullable<BundleManifest['anchor']>;

const FLUSH_BYTES = 4 * 1024 * 1024;

/** Appends text in large writes and hashes what it wrote. */
class HashingWriter {
  readonly #fh: FileHandle;
  #position: number;
  readonly #hash = createHash('sha256');
  #parts: string[] = [];
  #pending = 0;
  #writing: Promise<void> = Promise.resolve();
  bytes = 0;

  constructor(fh: FileHandle, position: number) {
    this.#fh = fh;
    this.#position = position;
  }

  async add(text: string): Promise<void> {
    this.#parts.push(text);
    this.#pending += text.length;
    if (this.#pending >= FLUSH_BYTES) await this.flush();
  }

  /** Hand the buffered text to the disk; the write overlaps with preparing the next chunk. */
  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const buf = Buffer.from(this.#parts.join(''), 'utf8');
    this.#parts = [];
    this.#pending = 0;
    this.#hash.update(buf);
    const position = this.#position;
    this.#position += buf.length;
    this.bytes += buf.length;
    await this.#writing;
    this.#writing = this.#fh.write(buf, 0, buf.length, position).then(() => undefined);
  }

  /** Wait for the last write. */
  async settle(): Promise<void> {
    await this.#writing;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

export interface ExportResult {
  readonly manifest: BundleManifest;
  readonly bytes: number;
}

export async function exportBundle(o: ExportOptions): Promise<ExportResult> {
  if (!(Number.isSafeInteger(o.fromSeq) && Number.isSafeInteger(o.toSeq) && o.fromSeq >= 1 && o.toSeq >= o.fromSeq)) {
    throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `bad range ${o.fromSeq}..${o.toSeq}`);
  }
  const sidePath = `${o.path}.records.tmp`;
  const out = await open(o.path, 'w', 0o600);
  const side = await open(sidePath, 'w+', 0o600);
  try {
    // The XML (the larger part) goes straight into the tar as its first entry; the chain lines go to a
    // side file that is copied in after, once both sizes are known.
    const xml = new HashingWriter(out, BLOCK);
    const records = new HashingWriter(side, 0);
    await xml.add('<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>\n');
    let count = 0;
    let expected = o.fromSeq;
    let previousHash = '';
    let lastHash = '';
    let firstHash = '';
    let fromAt = 0;
    let toAt = 0;
    for await (const batch of o.trail.readBatches(o.fromSeq, o.toSeq)) {
      const jsonl: string[] = [];
      const xmls: string[] = [];
      for (const r of batch) {
        const record = JSON.parse(r.line) as AuditRecord;
        if (r.seq !== expected || record.seq !== r.seq) throw new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `expected seq ${expected}, found ${r.seq}`);
        if (count === 0) {
          previousHash = record.prevHash;
          firstHash = r.hash;
          fromAt = record.event.at;
        } else if (record.prevHash !== lastHash) {
          throw new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `record seq ${r.seq} does not link to seq ${r.seq - 1}`);
        }
        lastHash = r.hash;
        toAt = record.event.at;
        jsonl.push(r.line);
        xmls.push(auditMessageXml(record, o.site));
        count++;
        expected++;
      }
      if (jsonl.length > 0) {
        await records.add(`${jsonl.join('\n')}\n`);
        await xml.add(`${xmls.join('\n')}\n`);
      }
    }
    if (count === 0) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `no records in ${o.fromSeq}..${o.toSeq}`);
    await xml.add('</AuditMessages>\n');
    await xml.flush();
    await records.flush();
    await xml.settle();
    await records.settle();
    const mtime = Date.now();
    await out.write(ustarHeader(BundleFile.xml, xml.bytes, mtime), 0, BLOCK, 0);
    let pos = BLOCK + xml.bytes;
    const pad1 = Buffer.concat([padding(xml.bytes), ustarHeader(BundleFile.records, records.bytes, mtime)]);
    await out.write(pad1, 0, pad1.length, pos);
    pos += pad1.length;
    const chunk = Buffer.allocUnsafe(FLUSH_BYTES);
    for (let read = 0; read < records.bytes;) {
      const { bytesRead } = await side.read(chunk, 0, Math.min(chunk.length, records.bytes - read), read);
      if (bytesRead === 0) throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', 'the side file ended early');
      await out.write(chunk, 0, bytesRead, pos);
      pos += bytesRead;
      read += bytesRead;
    }
    const leaf = new X509Certificate(o.signer.certificates[0]!);
    const manifest: BundleManifest = {
      format: BundleFormat,
      device: { site: o.site, certificateSubject: leaf.subject.replace(/\n/g, ', '), certificateSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase() },
      createdAt: new Date(mtime).toISOString(),
      range: { fromSeq: o.fromSeq, toSeq: expected - 1, fromTime: new Date(fromAt).toISOString(), toTime: new Date(toAt).toISOString() },
      count,
      previousHash,
      firstHash,
      lastHash,
      files: {
        [BundleFile.records]: { bytes: records.bytes, sha256: records.digest() },
        [BundleFile.xml]: { bytes: xml.bytes, sha256: xml.digest() },
      },
      ...(o.anchor !== undefined && o.anchor.seq === o.fromSeq - 1 ? { anchor: o.anchor } : {}),
    };
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
    const cms = await signDetached(o.signer, manifestBytes);
    const tail = Buffer.concat([
      padding(records.bytes),
      ustarHeader(BundleFile.manifest, manifestBytes.length, mtime), manifestBytes, padding(manifestBytes.length),
      ustarHeader(BundleFile.signature, cms.length, mtime), cms, padding(cms.length),
      Buffer.alloc(BLOCK * 2, 0),
    ]);
    await out.write(tail, 0, tail.length, pos);
    pos += tail.length;
    await out.truncate(pos);
    // No fsync: a bundle is a transfer file made on request, not a record of its own.
    return { manifest, bytes: pos };
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(o.path, { force: true });
    throw err;
  } finally {
    await out.close().catch(() => undefined);
    await side.close();
    await rm(sidePath, { force: true });
  }
}

/** The sequence range of durable records whose event time is within [from, to] (a scan: records are in time order). */
export async function seqRangeForTime(trail: AuditTrail, from: number | undefined, to: number | undefined): Promise<{ fromSeq: number; toSeq: number } | undefined> {
  let fromSeq: number | undefined;
  let toSeq: number | undefined;
  for await (const r of trail.read(trail.firstSeq)) {
    const at = (JSON.parse(r.line) as AuditRecord).event.at;
    if (from !== undefined && at < from) continue;
    if (to !== undefined && at > to) break;
    fromSeq ??= r.seq;
    toSeq = r.seq;
  }
  return fromSeq === undefined || toSeq === undefined ? undefined : { fromSeq, toSeq };
}
