// One spooled DICOM data set on disk: a streamed, chunked AEAD file (the STREAM construction).
//
//   header (64 bytes): magic "EDGESPL1" | key id u32 | chunk size u32 | salt 32 | file id 16
//   chunks:            ciphertext of up to `chunk size` plaintext bytes | GCM tag 16
//   terminator:        an empty chunk (tag only) marked final
//
// Each file has its own key, HKDF(data key, salt, file id), so a chunk counter is a safe nonce. Every
// chunk authenticates the header, its index and whether it is the terminator: reordered, truncated,
// spliced or re-keyed files fail to open. The reader decrypts one chunk at a time.
//
// Memory and speed of the writer (measured, see docs/storage.md): ciphertext is copied into reused
// 1 MiB write buffers (at most two per file: one filling, one being written), so what a 200 MB object
// leaves behind is short-lived garbage only; a minor GC every few MiB spooled frees that garbage (V8
// would otherwise keep ~100 MB of dead socket/cipher buffers until its external-memory heuristics fire,
// because big byte streams create too few JS objects to fill the young generation). File data of a
// large object is fdatasynced in the background every EARLY_SYNC_BYTES while it is still arriving, so
// the final flush only covers the tail.
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import type { CipherGCM, KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EdgeError } from '../core/errors.ts';
import type { DataKeyRing } from '../core/keys.ts';

const MAGIC = Buffer.from('EDGESPL1', 'latin1');
export const SPOOL_HEADER_BYTES = 64;
const TAG_BYTES = 16;
/** Plaintext bytes per chunk: large enough that per-chunk cipher setup is noise. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** One write buffer: ciphertext is gathered here, then written with one positional write. */
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Write buffers a file may hold; with both in use the feeder is asked to wait. */
const WRITE_BUFFERS_PER_FILE = 2;
/** Idle write buffers kept for the next files (shared by all associations). */
const FREE_BUFFERS_KEPT = 4;
/** Start a background fdatasync after this much new file data (large objects only). */
export const EARLY_SYNC_BYTES = 16 * 1024 * 1024;
/** Spooled bytes between two minor GCs. */
const YOUNG_GC_BYTES = 4 * 1024 * 1024;

const freeBuffers: Buffer[] = [];

function takeBuffer(): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
}

function returnBuffer(b: Buffer): void {
  if (freeBuffers.length < FREE_BUFFERS_KEPT) freeBuffers.push(b);
}

// The garbage of a streamed object (TLS records, PDU bodies, cipher output) is young and dies at once,
// but V8 frees young array buffers only at a scavenge, and a scavenge comes when the young generation
// fills with JS objects, which a byte stream barely allocates. `gc` exists only in a context created
// after --expose-gc; the main context is unaffected.
let minorGc: (() => void) | undefined;
let sinceGc = 0;
function noteSpooled(bytes: number): void {
  sinceGc += bytes;
  if (sinceGc < YOUNG_GC_BYTES) return;
  sinceGc = 0;
  if (minorGc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as (options: { type: 'minor' }) => void;
      minorGc = () => gc({ type: 'minor' });
    } catch {
      minorGc = () => undefined;
    }
  }
  minorGc();
}

/** One KeyObject per file: a raw key would be re-imported for every 1 MiB chunk's cipher. */
function fileKey(dataKey: Uint8Array, salt: Uint8Array, fileId: Uint8Array): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', dataKey, salt, Buffer.concat([Buffer.from('imaging-edge spool v1'), fileId]), 32)));
}

function nonceFor(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(index, 8);
  return n;
}

function aadFor(header: Buffer, index: number, final: boolean): Buffer {
  const a = Buffer.allocUnsafe(SPOOL_HEADER_BYTES + 5);
  header.copy(a, 0);
  a.writeUInt32BE(index, SPOOL_HEADER_BYTES);
  a[SPOOL_HEADER_BYTES + 4] = final ? 1 : 0;
  return a;
}

function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG';
}

/** Map a file-system error to the box's codes: no space is its own case (DIMSE 0xA700). */
export function spoolWriteError(err: unknown): EdgeError {
  if (err instanceof EdgeError) return err;
  if (isNoSpace(err)) return new EdgeError('EDGE_SPOOL_FULL', undefined, { cause: err });
  return new EdgeError('EDGE_STORE_WRITE_FAILED', 'spool file write failed', {
    cause: err,
    detail: { errno: (err as NodeJS.ErrnoException).code ?? 'unknown' },
  });
}

/** An empty spool file, open for writing, named by its file id. */
export interface SpoolFileSlot {
  readonly fileId: Buffer;
  readonly path: string;
  readonly fh: FileHandle;
}

/** Create an empty spool file (exclusively, mode 0600) at `dir/<random file id>`. */
export async function createSpoolFileSlot(dir: string): Promise<SpoolFileSlot> {
  const fileId = randomBytes(16);
  const path = `${dir}/${fileId.toString('hex')}`;
  try {
    return { fileId, path, fh: await open(path, 'wx', 0o600) };
  } catch (err) {
    throw spoolWriteError(err);
  }
}

export class SpoolFileWriter {
  readonly fileId: string;
  readonly path: string;
  readonly #fh: FileHandle;
  readonly #header: Buffer;
  readonly #key: KeyObject;
  readonly #chunkBytes: number;
  readonly #maxBytes: number;
  #cipher: CipherGCM;
  #index = 0;
  #chunkFill = 0;
  #plainBytes = 0;
  /** The buffer being filled (undefined until needed) and how much of it is filled. */
  #buf: Buffer | undefined;
  #fill = 0;
  /** Buffers handed to this file (filling + being written). */
  #held = 0;
  /** File offset of the next submitted buffer. */
  #position = 0;
  /** Writes run one after another, in order. */
  #writes: Promise<void> = Promise.resolve();
  #unsynced = 0;
  #syncing: Promise<void> | undefined;
  #error: EdgeError | undefined;
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(slot: SpoolFileSlot, header: Buffer, key: KeyObject, chunkBytes: number, maxBytes: number) {
    this.#fh = slot.fh;
    this.path = slot.path;
    this.fileId = slot.fileId.toString('hex');
    this.#header = header;
    this.#key = key;
    this.#chunkBytes = chunkBytes;
    this.#maxBytes = maxBytes;
    this.#cipher = this.#newCipher(false);
    this.#append(header);
  }

  /** Create the file (exclusively, mode 0600) at `dir/<file id>`. */
  static async create(dir: string, keys: DataKeyRing, options: { chunkBytes?: number; maxBytes: number }): Promise<SpoolFileWriter> {
    const dataKey = keys.dataKey(keys.activeKeyId);
    if (dataKey === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `active key id ${keys.activeKeyId} is not loaded`);
    return SpoolFileWriter.open(await createSpoolFileSlot(dir), keys, options);
  }

  /** Write into an empty file made earlier (its directory entry may already be durable). */
  static open(slot: SpoolFileSlot, keys: DataKeyRing, options: { chunkBytes?: number; maxBytes: number }): SpoolFileWriter {
    const keyId = keys.activeKeyId;
    const dataKey = keys.dataKey(keyId);
    if (dataKey === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `active key id ${keyId} is not loaded`);
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const salt = randomBytes(32);
    const header = Buffer.alloc(SPOOL_HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt32BE(keyId, 8);
    header.writeUInt32BE(chunkBytes, 12);
    salt.copy(header, 16);
    slot.fileId.copy(header, 48);
    return new SpoolFileWriter(slot, header, fileKey(dataKey, salt, slot.fileId), chunkBytes, options.maxBytes);
  }

  get plaintextBytes(): number {
    return this.#plainBytes;
  }

  get failed(): EdgeError | undefined {
    return this.#error;
  }

  #newCipher(final: boolean): CipherGCM {
    const c = createCipheriv('aes-256-gcm', this.#key, nonceFor(this.#index));
    c.setAAD(aadFor(this.#header, this.#index, final));
    return c;
  }

  /** Copy bytes into the write buffers, submitting each one that fills. */
  #append(b: Buffer): void {
    let at = 0;
    while (at < b.length) {
      if (this.#buf === undefined) {
        this.#buf = takeBuffer();
        this.#fill = 0;
        this.#held++;
      }
      const n = b.copy(this.#buf, this.#fill, at);
      this.#fill += n;
      at += n;
      if (this.#fill === this.#buf.length) this.#submit();
    }
  }

  #submit(): void {
    const buf = this.#buf;
    if (buf === undefined || this.#fill === 0) return;
    const length = this.#fill;
    const at = this.#position;
    this.#buf = undefined;
    this.#fill = 0;
    this.#position += length;
    this.#writes = this.#writes.then(async () => {
      try {
        if (this.#error === undefined) await writeAll(this.#fh, buf, length, at);
        this.#unsynced += length;
        if (this.#unsynced >= EARLY_SYNC_BYTES) this.#startSync();
      } catch (err) {
        this.#error ??= spoolWriteError(err);
      } finally {
        this.#held--;
        returnBuffer(buf);
        this.#release();
      }
    });
  }

  /** Flush what is written so far in the background; the final flush then covers only the tail. */
  #startSync(): void {
    if (this.#syncing !== undefined || this.#closed) return;
    this.#unsynced = 0;
    this.#syncing = this.#fh.datasync().then(
      () => {
        this.#syncing = undefined;
      },
      (err: unknown) => {
        this.#syncing = undefined;
        this.#error ??= spoolWriteError(err);
      },
    );
  }

  /** Encrypt and queue a fragment. A returned promise asks the caller to wait (back-pressure). */
  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#error !== undefined || this.#closed) return undefined;
    this.#plainBytes += fragment.length;
    if (this.#plainBytes > this.#maxBytes) {
      this.#error = new EdgeError('EDGE_SPOOL_OBJECT_TOO_LARGE', undefined, { detail: { maxBytes: this.#maxBytes } });
      return undefined;
    }
    noteSpooled(fragment.length);
    let rest = fragment;
    while (rest.length > 0) {
      const room = this.#chunkBytes - this.#chunkFill;
      const part = rest.length <= room ? rest : rest.subarray(0, room);
      this.#append(this.#cipher.update(part));
      this.#chunkFill += part.length;
      rest = rest.subarray(part.length);
      if (this.#chunkFill === this.#chunkBytes) {
        this.#endChunk();
        this.#cipher = this.#newCipher(false);
      }
    }
    if (this.#held <= WRITE_BUFFERS_PER_FILE) return undefined;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #endChunk(): void {
    this.#cipher.final();
    this.#append(this.#cipher.getAuthTag());
    this.#index++;
    this.#chunkFill = 0;
  }

  #release(all = false): void {
    if (!all && this.#held > WRITE_BUFFERS_PER_FILE) return;
    const w = this.#waiters;
    this.#waiters = [];
    for (const resolve of w) resolve();
  }

  /** Terminate the stream, write everything, fdatasync and close. Throws the first write error. */
  async finish(): Promise<number> {
    if (this.#closed) throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'spool file already closed');
    try {
      if (this.#error === undefined) {
        if (this.#chunkFill > 0) this.#endChunk();
        const last = this.#newCipher(true);
        last.final();
        this.#append(last.getAuthTag());
        this.#submit();
        await this.#writes;
        await this.#syncing;
      }
      if (this.#error !== undefined) throw this.#error;
      // fdatasync covers the data and the file size; the directory entry is the spool's business.
      await this.#fh.datasync();
      return this.#plainBytes;
    } catch (err) {
      throw spoolWriteError(err);
    } finally {
      this.#closed = true;
      this.#dropBuffer();
      this.#release(true);
      // Closing is not part of durability: keep it off the acknowledgement's path.
      void this.#fh.close().catch(() => undefined);
    }
  }

  /** Close without finishing (the caller unlinks the file). */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#error ??= new EdgeError('EDGE_SHUTDOWN', 'spool write abandoned');
    this.#dropBuffer();
    this.#release(true);
    await this.#writes;
    await this.#syncing;
    await this.#fh.close().catch(() => undefined);
  }

  #dropBuffer(): void {
    if (this.#buf === undefined) return;
    returnBuffer(this.#buf);
    this.#buf = undefined;
    this.#held--;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  // write may write less than asked (signals, quotas); continue where it stopped.
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += bytesWritten;
  }
}

/**
 * Decrypt a spool file chunk by chunk. Yields plaintext of up to one chunk each; throws
 * EDGE_STORE_DECRYPT_FAILED on any tampering, truncation or wrong key.
 */
export async function* readSpoolFile(path: string, keys: DataKeyRing, expectedFileId?: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const header = Buffer.alloc(SPOOL_HEADER_BYTES);
    if (size < SPOOL_HEADER_BYTES + TAG_BYTES) throw corrupt('spool file too short');
    await readExactly(fh, header, 0);
    if (!header.subarray(0, 8).equals(MAGIC)) throw corrupt('not a spool file');
    const keyId = header.readUInt32BE(8);
    const chunkBytes = header.readUInt32BE(12);
    const fileId = header.subarray(48, 64);
    if (expectedFileId !== undefined && fileId.toString('hex') !== expectedFileId) throw corrupt('spool file id mismatch');
    const dataKey = keys.dataKey(keyId);
    if (dataKey === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `spool file uses key id ${keyId}`);
    if (chunkBytes === 0 || chunkBytes > 64 * 1024 * 1024) throw corrupt('bad chunk size');
    const key = fileKey(dataKey, header.subarray(16, 48), fileId);
    let pos = SPOOL_HEADER_BYTES;
    let index = 0;
    for (;;) {
      const remaining = size - pos;
      const final = remaining === TAG_BYTES;
      const length = final ? TAG_BYTES : Math.min(chunkBytes + TAG_BYTES, remaining - TAG_BYTES);
      if (length < TAG_BYTES || (!final && length === TAG_BYTES)) throw corrupt('spool file truncated');
      const chunk = Buffer.allocUnsafe(length);
      await readExactly(fh, chunk, pos);
      pos += length;
      const d = createDecipheriv('aes-256-gcm', key, nonceFor(index));
      d.setAAD(aadFor(header, index, final));
      d.setAuthTag(chunk.subarray(length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = d.update(chunk.subarray(0, length - TAG_BYTES));
        d.final();
      } catch (cause) {
        throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'spool chunk failed authentication', { cause, detail: { chunk: index } });
      }
      if (final) return;
      index++;
      yield plain;
    }
  } finally {
    await fh.close();
  }
}

function corrupt(message: string): EdgeError {
  return new EdgeError('EDGE_STORE_DECRYPT_FAILED', message);
}

async function readExactly(fh: FileHandle, into: Buffer, position: number): Promise<void> {
  let filled = 0;
  while (filled < into.length) {
    const { bytesRead } = await fh.read(into, filled, into.length - filled, position + filled);
    if (bytesRead === 0) throw corrupt('spool file ended early');
    filled += bytesRead;
  }
}
