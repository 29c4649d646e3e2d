// Verifies a bundle with nothing but the file (and optionally the central team's copy of the site CA and
// the previous bundle): signature and signer, manifest, file digests, the hash chain record by record,
// and contiguity with the previous bundle. Runs on a workstation: no store, no TPM, no daemon.
import { X509Certificate, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { isEdgeError } from '../core/errors.ts';
import { BundleFile, BundleFormat, type BundleManifest } from './bundle.ts';
import { verifyDetached } from './cms.ts';
import { type TarEntry, readEntry, readTarIndex } from './tar.ts';

export interface BundleProblem {
  /** Where: `signature`, `manifest`, `records.jsonl line N (seq S)`, `audit-messages.xml`, `previous bundle`, `bundle`. */
  readonly where: string;
  readonly what: string;
}

export interface BundleReport {
  readonly ok: boolean;
  readonly manifest?: BundleManifest;
  /** The signer chains to a CA the caller gave. */
  readonly trusted: boolean;
  readonly signer?: string;
  readonly problems: readonly BundleProblem[];
  /** The first record that fails the chain, if any. */
  readonly firstBadRecord?: { readonly line: number; readonly seq?: number; readonly text: string };
}

export interface VerifyOptions {
  readonly trustAnchors?: readonly X509Certificate[];
  /** The bundle just before this one: its last hash must be this one's previous hash. */
  readonly after?: BundleManifest;
}

const HEX64 = /^[0-9a-f]{64}$/;

function manifestProblem(m: unknown): string | undefined {
  const x = m as Partial<BundleManifest> | null;
  if (x === null || typeof x !== 'object') return 'not a JSON object';
  if (x.format !== BundleFormat) return `unknown format ${String(x.format)}`;
  const r = x.range;
  if (r === undefined || !Number.isSafeInteger(r.fromSeq) || !Number.isSafeInteger(r.toSeq) || r.toSeq < r.fromSeq) return 'bad range';
  if (x.count !== r.toSeq - r.fromSeq + 1) return 'count does not match the range';
  for (const k of ['previousHash', 'firstHash', 'lastHash'] as const) if (typeof x[k] !== 'string' || !HEX64.test(x[k])) return `bad ${k}`;
  if (x.files?.[BundleFile.records] === undefined || x.files[BundleFile.xml] === undefined) return 'file digests missing';
  return undefined;
}

/** Read the signed manifest of a bundle without checking the records (for --after). */
export async function readManifest(path: string): Promise<BundleManifest> {
  const index = await readTarIndex(path);
  const entry = index.find((e) => e.name === BundleFile.manifest);
  if (entry === undefined) throw new Error(`${path}: no ${BundleFile.manifest}`);
  return JSON.parse((await readEntry(path, entry)).toString('utf8')) as BundleManifest;
}

async function digestOf(path: string, entry: TarEntry): Promise<string> {
  const hash = createHash('sha256');
  if (entry.size > 0) {
    for await (const chunk of createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export async function verifyBundle(path: string, options: VerifyOptions = {}): Promise<BundleReport> {
  const problems: BundleProblem[] = [];
  const fail = (where: string, what: string): void => void problems.push({ where, what });
  let index: TarEntry[];
  try {
    index = await readTarIndex(path);
  } catch (err) {
    return { ok: false, trusted: false, problems: [{ where: 'bundle', what: isEdgeError(err) ? err.message : `cannot read: ${(err as Error).message}` }] };
  }
  const entry = (name: string): TarEntry | undefined => index.find((e) => e.name === name);
  const names = index.map((e) => e.name).sort();
  const expectedNames = Object.values(BundleFile).slice().sort();
  if (names.join('\n') !== expectedNames.join('\n')) fail('bundle', `expected entries ${expectedNames.join(', ')}; found ${names.join(', ')}`);
  const mEntry = entry(BundleFile.manifest);
  const sEntry = entry(BundleFile.signature);
  if (mEntry === undefined || sEntry === undefined) return { ok: false, trusted: false, problems };

  // 1. The signature over the manifest, and who made it.
  const manifestBytes = await readEntry(path, mEntry);
  const sig = verifyDetached(await readEntry(path, sEntry), manifestBytes, options.trustAnchors);
  const signer = sig.signer?.subject.replace(/\n/g, ', ');
  if (!sig.ok) fail('signature', sig.problem ?? 'invalid');

  // 2. The manifest itself.
  let manifest: BundleManifest | undefined;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as BundleManifest;
  } catch {
    fail('manifest', 'not JSON');
  }
  const mp = manifest === undefined ? undefined : manifestProblem(manifest);
  if (mp !== undefined) fail('manifest', mp);
  if (manifest === undefined || mp !== undefined) return { ok: false, trusted: false, ...(signer === undefined ? {} : { signer }), problems };
  if (sig.signer !== undefined && manifest.device.certificateSha256 !== sig.signer.fingerprint256.replace(/:/g, '').toLowerCase()) {
    fail('manifest', 'the device certificate named in the manifest is not the signer');
  }

  // 3. The chain, record by record: this names the first bad record precisely.
  let firstBadRecord: BundleReport['firstBadRecord'];
  const rEntry = entry(BundleFile.records);
  if (rEntry !== undefined) {
    const bad = (line: number, seq: number | undefined, what: string, text: string): void => {
      const where = `${BundleFile.records} line ${line}${seq === undefined ? '' : ` (seq ${seq})`}`;
      fail(where, what);
      firstBadRecord ??= { line, ...(seq === undefined ? {} : { seq }), text: text.length > 300 ? `${text.slice(0, 300)}…` : text };
    };
    let lineNo = 0;
    let prevHash = manifest.previousHash;
    let expectedSeq = manifest.range.fromSeq;
    let chainBroken = false;
    const hash = createHash('sha256');
    let bytes = 0;
    const stream = rEntry.size === 0 ? [] : createReadStream(path, { start: rEntry.offset, end: rEntry.offset + rEntry.size - 1, highWaterMark: 1 << 20 });
    if (!Array.isArray(stream)) stream.on('data', (chunk) => { hash.update(chunk as Buffer); bytes += (chunk as Buffer).length; });
    const lines = Array.isArray(stream) ? [] : createInterface({ input: stream, crlfDelay: Infinity });
    for await (const line of lines) {
      lineNo++;
      if (chainBroken) continue;
      let rec: { seq?: unknown; prevHash?: unknown };
      try {
        rec = JSON.parse(line) as { seq?: unknown; prevHash?: unknown };
      } catch {
        bad(lineNo, undefined, 'not valid JSON (edited?)', line);
        chainBroken = true;
        continue;
      }
      const seq = typeof rec.seq === 'number' ? rec.seq : undefined;
      if (seq !== expectedSeq) {
        bad(lineNo, seq, seq !== undefined && seq > expectedSeq ? `expected seq ${expectedSeq}: record(s) deleted` : `expected seq ${expectedSeq}: records out of order or edited`, line);
        chainBroken = true;
        continue;
      }
      if (rec.prevHash !== prevHash) {
        bad(lineNo, seq, lineNo === 1
          ? 'prevHash does not match the manifest\'s previousHash'
          : `prevHash does not match the hash of line ${lineNo - 1}: line ${lineNo - 1} or this record was altered`, line);
        chainBroken = true;
        continue;
      }
      prevHash = createHash('sha256').update(line, 'utf8').digest('hex');
      if (lineNo === 1 && prevHash !== manifest.firstHash) {
        bad(lineNo, seq, 'hash differs from the signed manifest\'s firstHash (altered, or the chain was re-hashed)', line);
        chainBroken = true;
        continue;
      }
      expectedSeq++;
    }
    if (!chainBroken) {
      const lastSeq = expectedSeq - 1;
      if (lastSeq < manifest.range.toSeq) {
        bad(lineNo + 1, lastSeq + 1, `records end at seq ${lastSeq} (line ${lineNo}) but the signed manifest says toSeq ${manifest.range.toSeq}: tail truncated`, '');
      } else if (lastSeq > manifest.range.toSeq) {
        bad(lineNo, lastSeq, `records continue past the signed manifest's toSeq ${manifest.range.toSeq}`, '');
      } else if (prevHash !== manifest.lastHash) {
        bad(lineNo, lastSeq, 'the last record\'s hash differs from the signed manifest\'s lastHash (the chain was re-hashed or altered)', '');
      }
    }
    const digest = hash.digest('hex');
    const declared = manifest.files[BundleFile.records];
    if (digest !== declared.sha256 || bytes !== declared.bytes) fail(BundleFile.records, 'digest does not match the signed manifest');
  }
  const xEntry = entry(BundleFile.xml);
  if (xEntry !== undefined) {
    const declared = manifest.files[BundleFile.xml];
    if (xEntry.size !== declared.bytes || (await digestOf(path, xEntry)) !== declared.sha256) fail(BundleFile.xml, 'digest does not match the signed manifest');
  }

  // 4. Contiguity with the previous bundle.
  if (options.after !== undefined) {
    const prev = options.after;
    if (prev.device.certificateSha256 !== manifest.device.certificateSha256 && prev.device.site !== manifest.device.site) {
      fail('previous bundle', 'comes from another device');
    }
    if (manifest.range.fromSeq !== prev.range.toSeq + 1) {
      fail('previous bundle', `ends at seq ${prev.range.toSeq} but this bundle starts at seq ${manifest.range.fromSeq}: not contiguous`);
    } else if (manifest.previousHash !== prev.lastHash) {
      fail('previous bundle', 'its lastHash is not this bundle\'s previousHash: the chain between them was altered');
    }
  }
  return {
    ok: problems.length === 0,
    manifest,
    trusted: sig.trusted,
    ...(signer === undefined ? {} : { signer }),
    problems,
    ...(firstBadRecord === undefined ? {} : { firstBadRecord }),
  };
}
