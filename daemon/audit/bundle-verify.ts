// Verifies a bundle with nothing but the file (and optionally the central team's copy of the site CA and
// the previous bundle): signature and signer, manifest, file digests, the hash chain record by record,
// and contiguity with the previous bundle. Runs on a workstation: no store, no TPM, no daemon.
import { X509Certificate, createHash, hash as sha256Once } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { isEdgeError } from '../core/errors.ts';
import { BundleFile, BundleFormat, type BundleManifest, type DamagedRange } from './bundle.ts';
import { chainLinkOfBytes } from './chain-line.ts';
import { verifyDetached } from './cms.ts';
import { deviceCertificateProblem, deviceContinuity } from './device-signer.ts';
import type { DigestJob, DigestResult } from './file-digest-worker.ts';
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
  /**
   * The signer is the box itself: trusted, a device certificate, and the device pinned with
   * `deviceCert` or `afterSigner` (directly, by a renewal of the same key, or by signed key changes).
   */
  readonly deviceVerified: boolean;
  /** How the device was recognised (for the report), when it was. */
  readonly deviceBy?: string;
  readonly signer?: string;
  /** Records the device itself declares damaged and left out (signed in the manifest). */
  readonly damaged: readonly DamagedRange[];
  readonly problems: readonly BundleProblem[];
  /** The first record that fails the chain, if any. */
  readonly firstBadRecord?: { readonly line: number; readonly seq?: number; readonly text: string };
}

export interface VerifyOptions {
  readonly trustAnchors?: readonly X509Certificate[];
  /** The bundle just before this one: its last hash must be this one's previous hash. */
  readonly after?: BundleManifest;
  /** The certificate that signed `after` (the device as the verifier already knows it). */
  readonly afterSigner?: X509Certificate;
  /** The box's certificate as recorded at provisioning: the signer must be this device. */
  readonly deviceCert?: X509Certificate;
}

const HEX64 = /^[0-9a-f]{64}$/;

function manifestProblem(m: unknown): string | undefined {
  const x = m as Partial<BundleManifest> | null;
  if (x === null || typeof x !== 'object') return 'not a JSON object';
  if (x.format !== BundleFormat) return `unknown format ${String(x.format)}`;
  const r = x.range;
  if (r === undefined || !Number.isSafeInteger(r.fromSeq) || !Number.isSafeInteger(r.toSeq) || r.toSeq < r.fromSeq) return 'bad range';
  const damaged = x.damaged ?? [];
  if (
    !Array.isArray(damaged) ||
    damaged.some(
      (d, i) =>
        !Number.isSafeInteger(d?.fromSeq) ||
        !Number.isSafeInteger(d?.toSeq) ||
        d.toSeq < d.fromSeq ||
        d.fromSeq < r.fromSeq ||
        d.toSeq > r.toSeq ||
        (i > 0 && d.fromSeq <= damaged[i - 1]!.toSeq),
    )
  )
    return 'bad damaged ranges';
  const left = damaged.reduce((n, d) => n + d.toSeq - d.fromSeq + 1, 0);
  if (x.count !== r.toSeq - r.fromSeq + 1 - left) return 'count does not match the range';
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

/** Entries this large are hashed in a worker thread, alongside the chain check on this one. */
const WORKER_DIGEST_BYTES = 16 * 1024 * 1024;
const READ_CHUNK = 4 * 1024 * 1024;

async function digestOf(path: string, entry: TarEntry): Promise<{ sha256: string; bytes: number }> {
  if (entry.size >= WORKER_DIGEST_BYTES) {
    const job: DigestJob = { path, offset: entry.offset, size: entry.size };
    const worker = new Worker(new URL('./file-digest-worker.ts', import.meta.url), { workerData: job });
    try {
      const result = await new Promise<DigestResult>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`digest worker exited (${code})`)));
      });
      if ('error' in result) throw new Error(result.error);
      return result;
    } finally {
      await worker.terminate();
    }
  }
  const hash = createHash('sha256');
  let bytes = 0;
  if (entry.size > 0) {
    for await (const chunk of createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Where the record-by-record check stands. */
interface ChainState {
  lineNo: number;
  prevHash: string;
  expectedSeq: number;
  chainBroken: boolean;
  /** The next line follows a declared damaged range: it links to a record left out, unverifiable. */
  afterGap: boolean;
}

/** Step over damaged ranges the signed manifest declares at the expected seq. */
function enterGaps(st: ChainState, damaged: readonly DamagedRange[]): void {
  for (const d of damaged) {
    if (d.fromSeq === st.expectedSeq) {
      st.expectedSeq = d.toSeq + 1;
      st.afterGap = true;
    }
  }
}

type Bad = (line: number, seq: number | undefined, what: string, text: string) => void;

/**
 * One line, checked in full (JSON parse): the reference behaviour, and what names each kind of damage.
 * Lines on the fast path below get the same verdict; any doubt sends them here.
 */
function checkLine(line: string, st: ChainState, manifest: BundleManifest, bad: Bad): void {
  let rec: { seq?: unknown; prevHash?: unknown };
  try {
    rec = JSON.parse(line) as { seq?: unknown; prevHash?: unknown };
  } catch {
    bad(st.lineNo, undefined, 'not valid JSON (edited?)', line);
    st.chainBroken = true;
    return;
  }
  const seq = typeof rec.seq === 'number' ? rec.seq : undefined;
  if (seq !== st.expectedSeq) {
    bad(
      st.lineNo,
      seq,
      seq !== undefined && seq > st.expectedSeq
        ? `expected seq ${st.expectedSeq}: record(s) deleted`
        : `expected seq ${st.expectedSeq}: records out of order or edited`,
      line,
    );
    st.chainBroken = true;
    return;
  }
  if (!st.afterGap && rec.prevHash !== st.prevHash) {
    bad(
      st.lineNo,
      seq,
      st.lineNo === 1
        ? "prevHash does not match the manifest's previousHash"
        : `prevHash does not match the hash of line ${st.lineNo - 1}: line ${st.lineNo - 1} or this record was altered`,
      line,
    );
    st.chainBroken = true;
    return;
  }
  st.afterGap = false;
  st.prevHash = createHash('sha256').update(line, 'utf8').digest('hex');
  if (st.lineNo === 1 && st.prevHash !== manifest.firstHash) {
    bad(st.lineNo, seq, "hash differs from the signed manifest's firstHash (altered, or the chain was re-hashed)", line);
    st.chainBroken = true;
    return;
  }
  st.expectedSeq++;
}

/**
 * records.jsonl, record by record, from the bytes: a line that starts canonically, links to the line
 * before and hashes as expected is accepted without a JSON parse (the hash chain, anchored in the signed
 * manifest, already proves the device wrote those exact bytes). At the first doubt the line before and
 * this one are checked again in full, so the report names the same place and damage as a full check.
 */
async function checkRecords(
  path: string,
  entry: TarEntry,
  manifest: BundleManifest,
  bad: Bad,
): Promise<{ st: ChainState; sha256: string; bytes: number }> {
  const damaged = manifest.damaged ?? [];
  const st: ChainState = {
    lineNo: 0,
    prevHash: manifest.previousHash,
    expectedSeq: manifest.range.fromSeq,
    chainBroken: false,
    afterGap: false,
  };
  const hash = createHash('sha256');
  let bytes = 0;
  // The last line accepted on the fast path and the state before it, to re-check it in full.
  let last: { buf: Buffer; start: number; end: number; before: ChainState } | undefined;
  const onLine = (buf: Buffer, start: number, end: number): void => {
    st.lineNo++;
    if (st.chainBroken) return;
    enterGaps(st, damaged);
    const link = chainLinkOfBytes(buf, start, end);
    if (
      link !== undefined &&
      link.seq === st.expectedSeq &&
      (st.afterGap || buf.toString('latin1', link.prevHashAt, link.prevHashAt + 64) === st.prevHash)
    ) {
      const h = sha256Once('sha256', buf.subarray(start, end), 'hex');
      if (st.lineNo !== 1 || h === manifest.firstHash) {
        last = { buf, start, end, before: { ...st } };
        st.afterGap = false;
        st.prevHash = h;
        st.expectedSeq++;
        return;
      }
    }
    recheck(buf, start, end);
  };
  /** The line before (if it took the fast path) and this one, in full, from the state before the former. */
  const recheck = (buf: Buffer, start: number, end: number): void => {
    const lineNo = st.lineNo;
    if (last !== undefined) {
      const prev = last;
      last = undefined;
      Object.assign(st, prev.before);
      checkLine(prev.buf.toString('utf8', prev.start, prev.end), st, manifest, bad);
      st.lineNo = lineNo;
      if (st.chainBroken) return;
      enterGaps(st, damaged);
    }
    checkLine(buf.toString('utf8', start, end), st, manifest, bad);
  };
  const fh = await open(path, 'r');
  try {
    let carry = Buffer.alloc(0);
    for (let done = 0; done < entry.size;) {
      const want = Math.min(READ_CHUNK, entry.size - done);
      const buf = Buffer.allocUnsafe(carry.length + want);
      carry.copy(buf, 0);
      const { bytesRead } = await fh.read(buf, carry.length, want, entry.offset + done);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(carry.length, carry.length + bytesRead));
      bytes += bytesRead;
      done += bytesRead;
      const end = carry.length + bytesRead;
      let from = 0;
      for (;;) {
        const nl = buf.indexOf(10, from);
        if (nl === -1 || nl >= end) break;
        // CRLF counts as one line break (as readline does): a file whose line ends were converted fails
        // on its digest, with the chain itself intact.
        onLine(buf, from, nl > from && buf[nl - 1] === 13 ? nl - 1 : nl);
        from = nl + 1;
      }
      carry = buf.subarray(from, end);
    }
    if (carry.length > 0) onLine(carry, 0, carry.length);
  } finally {
    await fh.close();
  }
  if (!st.chainBroken) enterGaps(st, damaged);
  if (!st.chainBroken && last !== undefined && (st.expectedSeq - 1 !== manifest.range.toSeq || st.prevHash !== manifest.lastHash)) {
    // The tail is about to fail: check the last line in full first, as a full check would have.
    const lineNo = st.lineNo;
    const prev = last;
    Object.assign(st, prev.before);
    checkLine(prev.buf.toString('utf8', prev.start, prev.end), st, manifest, bad);
    st.lineNo = lineNo;
    if (!st.chainBroken) enterGaps(st, damaged);
  }
  return { st, sha256: hash.digest('hex'), bytes };
}

export async function verifyBundle(path: string, options: VerifyOptions = {}): Promise<BundleReport> {
  const problems: BundleProblem[] = [];
  const fail = (where: string, what: string): void => void problems.push({ where, what });
  let index: TarEntry[];
  try {
    index = await readTarIndex(path);
  } catch (err) {
    return {
      ok: false,
      trusted: false,
      deviceVerified: false,
      damaged: [],
      problems: [{ where: 'bundle', what: isEdgeError(err) ? err.message : `cannot read: ${(err as Error).message}` }],
    };
  }
  const entry = (name: string): TarEntry | undefined => index.find((e) => e.name === name);
  const names = index.map((e) => e.name).sort();
  const expectedNames = Object.values(BundleFile).slice().sort();
  if (names.join('\n') !== expectedNames.join('\n'))
    fail('bundle', `expected entries ${expectedNames.join(', ')}; found ${names.join(', ')}`);
  const mEntry = entry(BundleFile.manifest);
  const sEntry = entry(BundleFile.signature);
  if (mEntry === undefined || sEntry === undefined) return { ok: false, trusted: false, deviceVerified: false, damaged: [], problems };

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
  if (manifest === undefined || mp !== undefined)
    return { ok: false, trusted: false, deviceVerified: false, damaged: [], ...(signer === undefined ? {} : { signer }), problems };
  if (sig.signer !== undefined && manifest.device.certificateSha256 !== sig.signer.fingerprint256.replace(/:/g, '').toLowerCase()) {
    fail('manifest', 'the device certificate named in the manifest is not the signer');
  }
  // Who signed: the box itself, not merely someone the site CA knows (device-signer.ts has the rules).
  let deviceBy: string | undefined;
  if (sig.ok && sig.signer !== undefined) {
    const notDevice = deviceCertificateProblem(sig.signer);
    const pinned = options.deviceCert ?? options.afterSigner;
    if (notDevice !== undefined) fail('signer', notDevice);
    else if (pinned !== undefined) {
      const c = deviceContinuity(
        pinned,
        options.deviceCert === undefined ? 'after' : 'device-cert',
        sig.signer,
        manifest.keyChanges,
        options.trustAnchors,
      );
      if (c.ok) deviceBy = c.how;
      else fail('signer', c.problem);
    }
  }

  // 3. The chain, record by record: this names the first bad record precisely. The XML's digest is
  // taken at the same time (in a worker thread when it is large).
  let firstBadRecord: BundleReport['firstBadRecord'];
  const xEntry = entry(BundleFile.xml);
  const xmlDigest = xEntry === undefined ? undefined : digestOf(path, xEntry);
  // Awaited below; until then a failure must not surface as an unhandled rejection.
  xmlDigest?.catch(() => undefined);
  const rEntry = entry(BundleFile.records);
  if (rEntry !== undefined) {
    const bad: Bad = (line, seq, what, text) => {
      const where = `${BundleFile.records} line ${line}${seq === undefined ? '' : ` (seq ${seq})`}`;
      fail(where, what);
      firstBadRecord ??= { line, ...(seq === undefined ? {} : { seq }), text: text.length > 300 ? `${text.slice(0, 300)}…` : text };
    };
    const { st, sha256, bytes } = await checkRecords(path, rEntry, manifest, bad);
    if (!st.chainBroken) {
      const lastSeq = st.expectedSeq - 1;
      if (lastSeq < manifest.range.toSeq) {
        bad(
          st.lineNo + 1,
          lastSeq + 1,
          `records end at seq ${lastSeq} (line ${st.lineNo}) but the signed manifest says toSeq ${manifest.range.toSeq}: tail truncated`,
          '',
        );
      } else if (lastSeq > manifest.range.toSeq) {
        bad(st.lineNo, lastSeq, `records continue past the signed manifest's toSeq ${manifest.range.toSeq}`, '');
      } else if (st.prevHash !== manifest.lastHash) {
        bad(
          st.lineNo,
          lastSeq,
          "the last record's hash differs from the signed manifest's lastHash (the chain was re-hashed or altered)",
          '',
        );
      }
    }
    const declared = manifest.files[BundleFile.records];
    if (sha256 !== declared.sha256 || bytes !== declared.bytes) fail(BundleFile.records, 'digest does not match the signed manifest');
  }
  if (xEntry !== undefined && xmlDigest !== undefined) {
    const declared = manifest.files[BundleFile.xml];
    let digest: { sha256: string; bytes: number } | undefined;
    try {
      digest = await xmlDigest;
    } catch (err) {
      fail(BundleFile.xml, `cannot read: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (digest !== undefined && (xEntry.size !== declared.bytes || digest.sha256 !== declared.sha256))
      fail(BundleFile.xml, 'digest does not match the signed manifest');
  }

  // 4. Contiguity with the previous bundle.
  if (options.after !== undefined) {
    const prev = options.after;
    if (prev.device.site !== manifest.device.site)
      fail('previous bundle', `comes from site ${prev.device.site}, this one from ${manifest.device.site}`);
    if (manifest.range.fromSeq !== prev.range.toSeq + 1) {
      fail('previous bundle', `ends at seq ${prev.range.toSeq} but this bundle starts at seq ${manifest.range.fromSeq}: not contiguous`);
    } else if (manifest.previousHash !== prev.lastHash) {
      fail('previous bundle', "its lastHash is not this bundle's previousHash: the chain between them was altered");
    }
  }
  const ok = problems.length === 0;
  return {
    ok,
    manifest,
    trusted: sig.trusted,
    deviceVerified: ok && sig.trusted && deviceBy !== undefined,
    ...(deviceBy === undefined ? {} : { deviceBy }),
    damaged: manifest.damaged ?? [],
    ...(signer === undefined ? {} : { signer }),
    problems,
    ...(firstBadRecord === undefined ? {} : { firstBadRecord }),
  };
}
