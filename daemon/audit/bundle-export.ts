// Writes a bundle for a sequence range straight from the chain, streaming. The main thread reads,
// decrypts and checks the chain in chunks of records; worker threads render each chunk's DICOM audit XML
// meanwhile (parse + render was most of an export's CPU). The XML (the larger part) goes straight into
// the tar as its first entry; the chain lines go to a side file copied in after, once both sizes are
// known; the manifest is signed last. Every part is written in large writes and hashed as it goes.
import { X509Certificate } from 'node:crypto';
import { createHash } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { AuditRecord, AuditTrail } from '../core/audit-trail.ts';
import { EdgeError } from '../core/errors.ts';
import { BundleFile, BundleFormat, type BundleManifest, type DamagedRange } from './bundle.ts';
import { type ChainLink, chainLinkOf } from './chain-line.ts';
import { signDetached } from './cms.ts';
import type { Signer } from './signer.ts';
import { BLOCK, padding, ustarHeader } from './tar.ts';
import { type Rendered, XmlRenderPool } from './xml-render-pool.ts';

export interface ExportOptions {
  readonly trail: AuditTrail;
  readonly signer: Signer;
  /** site.name: the audit source id and the manifest's device name. */
  readonly site: string;
  /** site.environment: named in the manifest. */
  readonly environment?: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  /** Where to write the bundle (replaced). A side file `<path>.records.tmp` is used while writing. */
  readonly path: string;
  /** The signed checkpoint the range continues from when older records were pruned. */
  readonly anchor?: AuditCheckpoint;
  /**
   * Records the box found damaged and quarantined: left out, and declared in the signed manifest, so
   * a range over them is still exported (the verifier states each gap) instead of failing.
   */
  readonly damaged?: readonly DamagedRange[];
  /**
   * Worker threads rendering the XML; 0 renders on the calling thread. Default: one less than the CPUs
   * (at least 1, at most 4) for ranges of WORKER_MIN_RECORDS or more, else 0 (a worker's start-up
   * costs more than rendering a few thousand records).
   */
  readonly renderWorkers?: number;
}

type AuditCheckpoint = NonNullable<BundleManifest['anchor']>;

const FLUSH_BYTES = 4 * 1024 * 1024;
const encoder = new TextEncoder();
export const WORKER_MIN_RECORDS = 20_000;

/** Appends bytes in large writes (one in flight while the next fills) and hashes what it wrote. */
class HashingWriter {
  readonly #fh: FileHandle;
  #position: number;
  readonly #hash = createHash('sha256');
  #parts: Uint8Array[] = [];
  #pending = 0;
  #writing: Promise<void> = Promise.resolve();
  bytes = 0;

  constructor(fh: FileHandle, position: number) {
    this.#fh = fh;
    this.#position = position;
  }

  async add(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    this.#hash.update(chunk);
    this.#parts.push(chunk);
    this.#pending += chunk.length;
    this.bytes += chunk.length;
    if (this.#pending >= FLUSH_BYTES) await this.flush();
  }

  /** Hand the buffered bytes to the disk; the write overlaps with preparing the next chunk. */
  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const parts = this.#parts;
    const size = this.#pending;
    const position = this.#position;
    this.#parts = [];
    this.#pending = 0;
    this.#position += size;
    await this.#writing;
    this.#writing = writeFully(this.#fh, parts, size, position);
  }

  /** Wait for the last write. */
  async settle(): Promise<void> {
    await this.#writing;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

async function writeFully(fh: FileHandle, parts: Uint8Array[], size: number, position: number): Promise<void> {
  const { bytesWritten } = await fh.writev(parts, position);
  if (bytesWritten === size) return;
  // A short writev (rare on a regular file): write the rest from one buffer.
  const rest = Buffer.concat(parts).subarray(bytesWritten);
  for (let done = 0; done < rest.length;) {
    const r = await fh.write(rest, done, rest.length - done, position + bytesWritten + done);
    if (r.bytesWritten === 0) throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', 'the bundle file stopped taking writes');
    done += r.bytesWritten;
  }
}

export interface ExportResult {
  readonly manifest: BundleManifest;
  readonly bytes: number;
}

function defaultWorkers(records: number): number {
  if (records < WORKER_MIN_RECORDS) return 0;
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

function linkOf(line: string): ChainLink {
  const link = chainLinkOf(line);
  if (link !== undefined) return link;
  const r = JSON.parse(line) as AuditRecord;
  return { seq: r.seq, prevHash: r.prevHash };
}

const eventTime = (line: string): number => (JSON.parse(line) as AuditRecord).event.at;

export async function exportBundle(o: ExportOptions): Promise<ExportResult> {
  if (!(Number.isSafeInteger(o.fromSeq) && Number.isSafeInteger(o.toSeq) && o.fromSeq >= 1 && o.toSeq >= o.fromSeq)) {
    throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `bad range ${o.fromSeq}..${o.toSeq}`);
  }
  const sidePath = `${o.path}.records.tmp`;
  const out = await open(o.path, 'w', 0o600);
  const side = await open(sidePath, 'w+', 0o600);
  const workers = o.renderWorkers ?? defaultWorkers(o.toSeq - o.fromSeq + 1);
  const pool = new XmlRenderPool(workers, o.site);
  // Rendered chunks in sequence order; a few in flight keep the workers busy while this thread reads.
  const rendering: Array<Promise<Rendered>> = [];
  const maxRendering = Math.max(2, workers * 4);
  try {
    const xml = new HashingWriter(out, BLOCK);
    const records = new HashingWriter(side, 0);
    const write = async (r: Rendered): Promise<void> => {
      await records.add(r.lines);
      await xml.add(r.xml);
    };
    await xml.add(Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>\n', 'utf8'));
    let count = 0;
    let expected = o.fromSeq;
    let previousHash = '';
    let lastHash = '';
    let firstHash = '';
    let firstLine = '';
    let lastLine = '';
    const damaged = (o.damaged ?? [])
      .filter((d) => d.toSeq >= o.fromSeq && d.fromSeq <= o.toSeq)
      .map((d) => ({ ...d, fromSeq: Math.max(d.fromSeq, o.fromSeq), toSeq: Math.min(d.toSeq, o.toSeq) }));
    /** Step `expected` over declared damaged ranges that start there; true when it stepped. */
    const skipDamaged = (): boolean => {
      let stepped = false;
      for (const d of damaged) {
        if (d.fromSeq === expected) {
          expected = d.toSeq + 1;
          stepped = true;
        }
      }
      return stepped;
    };
    for await (const batch of o.trail.readBatches(o.fromSeq, o.toSeq)) {
      if (batch.length === 0) continue;
      for (const r of batch) {
        const link = linkOf(r.line);
        // After a damaged range the record links to a record left out: its prevHash cannot be checked.
        const afterGap = skipDamaged();
        if (r.seq !== expected || link.seq !== r.seq)
          throw new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `expected seq ${expected}, found ${r.seq}`);
        if (count === 0) {
          previousHash = link.prevHash;
          firstHash = r.hash;
          firstLine = r.line;
        } else if (!afterGap && link.prevHash !== lastHash) {
          throw new EdgeError('EDGE_AUDIT_CHAIN_BROKEN', `record seq ${r.seq} does not link to seq ${r.seq - 1}`);
        }
        lastHash = r.hash;
        count++;
        expected++;
      }
      lastLine = batch[batch.length - 1]!.line;
      let text = '';
      for (const r of batch) text += `${r.line}\n`;
      const rendered = pool.render(text, encoder.encode(text));
      // Awaited in order below; until then a failure must not surface as an unhandled rejection.
      rendered.catch(() => undefined);
      rendering.push(rendered);
      while (rendering.length >= maxRendering) await write(await rendering.shift()!);
    }
    while (rendering.length > 0) await write(await rendering.shift()!);
    skipDamaged();
    if (count === 0) throw new EdgeError('EDGE_AUDIT_RANGE_EMPTY', `no records in ${o.fromSeq}..${o.toSeq}`);
    const fromAt = eventTime(firstLine);
    const toAt = eventTime(lastLine);
    await xml.add(Buffer.from('</AuditMessages>\n', 'utf8'));
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
    // Copy the side file in with two buffers, so reading the next piece overlaps writing this one.
    const chunks = [Buffer.allocUnsafe(FLUSH_BYTES), Buffer.allocUnsafe(FLUSH_BYTES)] as const;
    let writing: Promise<unknown> = Promise.resolve();
    for (let read = 0, n = 0; read < records.bytes; n++) {
      const chunk = chunks[n % 2]!;
      const { bytesRead } = await side.read(chunk, 0, Math.min(chunk.length, records.bytes - read), read);
      if (bytesRead === 0) throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', 'the side file ended early');
      await writing;
      writing = out.write(chunk, 0, bytesRead, pos);
      pos += bytesRead;
      read += bytesRead;
    }
    await writing;
    const leaf = new X509Certificate(o.signer.certificates[0]!);
    const manifest: BundleManifest = {
      format: BundleFormat,
      device: {
        site: o.site,
        ...(o.environment === undefined ? {} : { environment: o.environment }),
        certificateSubject: leaf.subject.replace(/\n/g, ', '),
        certificateSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
      },
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
      ...(damaged.length === 0 ? {} : { damaged: damaged.filter((d) => d.fromSeq < expected) }),
    };
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
    const cms = await signDetached(o.signer, manifestBytes);
    const tail = Buffer.concat([
      padding(records.bytes),
      ustarHeader(BundleFile.manifest, manifestBytes.length, mtime),
      manifestBytes,
      padding(manifestBytes.length),
      ustarHeader(BundleFile.signature, cms.length, mtime),
      cms,
      padding(cms.length),
      Buffer.alloc(BLOCK * 2, 0),
    ]);
    await out.write(tail, 0, tail.length, pos);
    pos += tail.length;
    await out.truncate(pos);
    // No fsync: a bundle is a transfer file made on request, not a record of its own.
    return { manifest, bytes: pos };
  } catch (err) {
    await Promise.allSettled(rendering);
    await out.close().catch(() => undefined);
    await rm(o.path, { force: true });
    throw err;
  } finally {
    await pool.close();
    await out.close().catch(() => undefined);
    await side.close();
    await rm(sidePath, { force: true });
  }
}

/** The sequence range of durable records whose event time is within [from, to] (a scan: records are in time order). */
export async function seqRangeForTime(
  trail: AuditTrail,
  from: number | undefined,
  to: number | undefined,
): Promise<{ fromSeq: number; toSeq: number } | undefined> {
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
