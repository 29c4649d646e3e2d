// One spooled DICOM data set on disk: a streamed, chunked AEAD file (the STREAM construction).
//
//   header (64 bytes): magic "EDGESPL1" | key id u32 | chunk size u32 | salt 32 | file id 16
//   chunks:            ciphertext of up to `chunk size` plaintext bytes | GCM tag 16
//   terminator:        an empty chunk (tag only) marked final
//
// Each file has its own key, HKDF(data key, salt, file id), so a chunk counter is a safe nonce. Every
// chunk authenticates the header, its index and whether it is the terminator: reordered, truncated,
// spliced or re-keyed files fail to open. The writer encrypts each fragment as it arrives (no
// reassembly copy) and writes in large vectored writes; the reader decrypts one chunk at a time.
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { CipherGCM } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { EdgeError } from '../core/errors.ts';
import type { DataKeyRing } from '../core/keys.ts';

const MAGIC = Buffer.from('EDGESPL1', 'latin1');
export const SPOOL_HEADER_BYTES = 64;
const TAG_BYTES = 16;
/** Plaintext bytes per chunk: large enough that per-chunk cipher setup is noise (AES-GCM ~600 MB/s). */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Gather this much ciphertext before one vectored write. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Above this much unwritten ciphertext the writer asks its feeder to wait. */
const BACKPRESSURE_BYTES = 8 * 1024 * 1024;

function fileKey(dataKey: Uint8Array, salt: Uint8Array, fileId: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, Buffer.concat([Buffer.from('imaging-edge spool v1'), fileId]), 32));
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
  return new EdgeError('EDGE_STORE_WRITE_FAILED', 'spool file write failed', { cause: err, detail: { errno: (err as NodeJS.ErrnoException).code ?? 'unknown' } });
}

export class SpoolFileWriter {
  readonly fileId: string;
  readonly path: string;
  readonly #fh: FileHandle;
  readonly #header: Buffer;
  readonly #key: Buffer;
  readonly #chunkBytes: number;
  readonly #maxBytes: number;
  #cipher: CipherGCM;
  #index = 0;
  #chunkFill = 0;
  #plainBytes = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #position = 0;
  #writing: Promise<void> | undefined;
  #error: EdgeError | undefined;
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(fh: FileHandle, path: string, fileId: Buffer, header: Buffer, key: Buffer, chunkBytes: number, maxBytes: number) {
    this.#fh = fh;
    this.path = path;
    this.fileId = fileId.toString('hex');
    this.#header = header;
    this.#key = key;
    this.#chunkBytes = chunkBytes;
    this.#maxBytes = maxBytes;
    this.#cipher = this.#newCipher(false);
    this.#push(header);
  }

  /** Create the file (exclusively, mode 0600) at `dir/<file id>`. */
  static async create(dir: string, keys: DataKeyRing, options: { chunkBytes?: number; maxBytes: number }): Promise<SpoolFileWriter> {
    const keyId = keys.activeKeyId;
    const dataKey = keys.dataKey(keyId);
    if (dataKey === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `active key id ${keyId} is not loaded`);
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const fileId = randomBytes(16);
    const salt = randomBytes(32);
    const header = Buffer.alloc(SPOOL_HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt32BE(keyId, 8);
    header.writeUInt32BE(chunkBytes, 12);
    salt.copy(header, 16);
    fileId.copy(header, 48);
    const path = `${dir}/${fileId.toString('hex')}`;
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx', 0o600);
    } catch (err) {
      throw spoolWriteError(err);
    }
    return new SpoolFileWriter(fh, path, fileId, header, fileKey(dataKey, salt, fileId), chunkBytes, options.maxBytes);
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

  #push(b: Buffer): void {
    if (b.length === 0) return;
    this.#pending.push(b);
    this.#pendingBytes += b.length;
  }

  #endChunk(): void {
    this.#cipher.final();
    this.#push(this.#cipher.getAuthTag());
    this.#index++;
    this.#chunkFill = 0;
  }

  /** Encrypt and queue a fragment. A returned promise asks the caller to wait (back-pressure). */
  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#error !== undefined || this.#closed) return undefined;
    this.#plainBytes += fragment.length;
    if (this.#plainBytes > this.#maxBytes) {
      this.#error = new EdgeError('EDGE_SPOOL_OBJECT_TOO_LARGE', undefined, { detail: { maxBytes: this.#maxBytes } });
      return undefined;
    }
    let rest = fragment;
    while (rest.length > 0) {
      const room = this.#chunkBytes - this.#chunkFill;
      const part = rest.length <= room ? rest : rest.subarray(0, room);
      this.#push(this.#cipher.update(part));
      this.#chunkFill += part.length;
      rest = rest.subarray(part.length);
      if (this.#chunkFill === this.#chunkBytes) {
        this.#endChunk();
        this.#cipher = this.#newCipher(false);
      }
    }
    if (this.#pendingBytes >= WRITE_BATCH_BYTES) this.#flush();
    if (this.#pendingBytes < BACKPRESSURE_BYTES) return undefined;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #flush(): void {
    if (this.#writing !== undefined || this.#pending.length === 0 || this.#error !== undefined) return;
    const bufs = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    const at = this.#position;
    this.#position += bytes;
    this.#writing = writeAll(this.#fh, bufs, at).then(
      () => {
        this.#writing = undefined;
        if (this.#pendingBytes >= WRITE_BATCH_BYTES) this.#flush();
        this.#release();
      },
      (err: unknown) => {
        this.#writing = undefined;
        this.#error = spoolWriteError(err);
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#release(true);
      },
    );
  }

  #release(all = false): void {
    if (!all && this.#pendingBytes >= BACKPRESSURE_BYTES) return;
    const w = this.#waiters;
    this.#waiters = [];
    for (const resolve of w) resolve();
  }

  /** Terminate the stream, write everything, fsync and close. Throws the first write error. */
  async finish(): Promise<number> {
    if (this.#closed) throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'spool file already closed');
    if (this.#error === undefined) {
      if (this.#chunkFill > 0) {
        this.#endChunk();
      }
      const last = this.#newCipher(true);
      last.final();
      this.#push(last.getAuthTag());
      while (this.#error === undefined && (this.#writing !== undefined || this.#pending.length > 0)) {
        if (this.#writing === undefined) this.#flush();
        await this.#writing;
      }
    }
    try {
      if (this.#error !== undefined) throw this.#error;
      await this.#fh.sync();
      return this.#plainBytes;
    } catch (err) {
      throw spoolWriteError(err);
    } finally {
      this.#closed = true;
      this.#release(true);
      await this.#fh.close().catch(() => undefined);
    }
  }

  /** Close without finishing (the caller unlinks the file). */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#error ??= new EdgeError('EDGE_SHUTDOWN', 'spool write abandoned');
    this.#release(true);
    await this.#writing?.catch(() => undefined);
    await this.#fh.close().catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = bufs;
  // writev may write less than asked (signals, quotas); continue where it stopped.
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
    pos += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    if (bytesWritten === 0 && next.length > 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    rest = next;
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
