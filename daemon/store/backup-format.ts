// The backup file: a clear header, then the plaintext record stream sealed in AES-256-GCM chunks.
//
//   "EDGEBACKUP1\n" | u32 header length | header JSON | chunk* (u32 length | ciphertext | tag 16)
//
// A random content key (CEK) seals the chunks; the header carries it wrapped (a) under a key derived
// from the box's index key (HKDF), so the box that made the backup (or any box holding the same keys)
// opens it, and (b) with keys.backend "tpm", escrowed to the recovery public key, so the recovery secret
// opens it on a replacement box. Every chunk's associated data binds the SHA-256 of magic+header, the
// chunk's index and whether it is the last: reordering, truncation, extension and header edits fail.
// The record stream ends with a manifest (counts, SHA-256 of the stream before it, key ids, config hash).
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { EdgeError } from '../core/errors.ts';

export const BACKUP_MAGIC = Buffer.from('EDGEBACKUP1\n', 'latin1');
const CHUNK_BYTES = 1_048_576;
const MAX_HEADER_BYTES = 65_536;
const TAG = 16;

export interface KeyWrap {
  readonly salt: string;
  readonly nonce: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** The escrow envelope and recovery public key, as daemon/security/tpm-recovery.ts makes them. */
export interface RecoveryWrap {
  readonly recovery: {
    readonly publicKey: string;
    readonly salt: string;
    readonly scrypt: { readonly N: number; readonly r: number; readonly p: number };
  };
  readonly envelope: { readonly epk: string; readonly nonce: string; readonly ciphertext: string; readonly tag: string };
}

export interface BackupHeader {
  readonly version: 1;
  readonly createdAt: number;
  readonly site: string;
  readonly keysBackend: string;
  /** Data key ids the box held; values in the backup name some of them. */
  readonly keyIds: readonly number[];
  readonly wraps: { readonly box: KeyWrap; readonly recovery?: RecoveryWrap };
}

export const RecordType = { DbEntry: 1, File: 2, Manifest: 3 } as const;

export interface BackupManifest {
  readonly records: number;
  readonly files: number;
  readonly plaintextBytes: number;
  /** SHA-256 of the record stream before the manifest record. */
  readonly sha256: string;
  readonly keyIds: readonly number[];
  readonly configSha256: string | undefined;
  readonly auditLastSeq: number;
}

export type BackupRecord =
  | { readonly type: 'db'; readonly key: string; readonly value: Buffer }
  | { readonly type: 'file'; readonly name: string; readonly content: Buffer };

function boxWrapKey(indexKey: Uint8Array, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', indexKey, salt, 'imaging-edge backup key wrap v1', 32));
}

export function wrapForBox(indexKey: Uint8Array, cek: Buffer): KeyWrap {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const key = boxWrapKey(indexKey, salt);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from('imaging-edge backup', 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(cek), cipher.final()]);
  key.fill(0);
  return {
    salt: salt.toString('base64'),
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/** The CEK, or EDGE_BACKUP_KEY_MISMATCH when this index key did not make the wrap. */
export function unwrapForBox(indexKey: Uint8Array, wrap: KeyWrap): Buffer {
  const key = boxWrapKey(indexKey, Buffer.from(wrap.salt, 'base64'));
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(wrap.nonce, 'base64'));
  decipher.setAAD(Buffer.from('imaging-edge backup', 'utf8'));
  decipher.setAuthTag(Buffer.from(wrap.tag, 'base64'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(wrap.ciphertext, 'base64')), decipher.final()]);
  } catch (cause) {
    throw new EdgeError(
      'EDGE_BACKUP_KEY_MISMATCH',
      "this box's keys do not open the backup (another box, or keys changed since); use the recovery secret",
      { cause },
    );
  } finally {
    key.fill(0);
  }
}

function chunkAad(headerHash: Buffer, index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(32 + 8 + 1);
  headerHash.copy(aad, 0);
  aad.writeBigUInt64BE(BigInt(index), 32);
  aad[40] = last ? 1 : 0;
  return aad;
}

function chunkNonce(index: number): Buffer {
  // The CEK is fresh per backup, so a counter nonce never repeats under one key.
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(index), 4);
  return nonce;
}

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Writes records into an open file handle; `finish` appends the manifest and the final chunk. */
export class BackupWriter {
  readonly #fh: FileHandle;
  readonly #cek: Buffer;
  readonly #headerHash: Buffer;
  readonly #hash = createHash('sha256');
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #index = 0;
  #records = 0;
  #files = 0;
  #bytes = 0;

  private constructor(fh: FileHandle, cek: Buffer, headerHash: Buffer) {
    this.#fh = fh;
    this.#cek = cek;
    this.#headerHash = headerHash;
  }

  static async start(fh: FileHandle, header: BackupHeader, cek: Buffer): Promise<BackupWriter> {
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    const prefix = Buffer.concat([BACKUP_MAGIC, len, json]);
    await fh.write(prefix);
    return new BackupWriter(fh, cek, createHash('sha256').update(prefix).digest());
  }

  async dbEntry(key: string, value: Buffer): Promise<void> {
    const k = Buffer.from(key, 'utf8');
    const kl = Buffer.alloc(4);
    kl.writeUInt32BE(k.length);
    this.#records++;
    await this.#push(frame(RecordType.DbEntry, Buffer.concat([kl, k, value])), true);
  }

  async file(name: string, content: Buffer): Promise<void> {
    const n = Buffer.from(name, 'utf8');
    const nl = Buffer.alloc(2);
    nl.writeUInt16BE(n.length);
    this.#files++;
    await this.#push(frame(RecordType.File, Buffer.concat([nl, n, content])), true);
  }

  async finish(extra: Omit<BackupManifest, 'records' | 'files' | 'plaintextBytes' | 'sha256'>): Promise<BackupManifest> {
    const manifest: BackupManifest = {
      records: this.#records,
      files: this.#files,
      plaintextBytes: this.#bytes,
      sha256: this.#hash.digest('hex'),
      ...extra,
    };
    await this.#push(frame(RecordType.Manifest, Buffer.from(JSON.stringify(manifest), 'utf8')), false);
    await this.#seal(true);
    this.#cek.fill(0);
    return manifest;
  }

  async #push(data: Buffer, hashed: boolean): Promise<void> {
    if (hashed) {
      this.#hash.update(data);
      this.#bytes += data.length;
    }
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    while (this.#pendingBytes >= CHUNK_BYTES) await this.#seal(false);
  }

  async #seal(last: boolean): Promise<void> {
    const all = Buffer.concat(this.#pending);
    const take = last ? all.length : Math.min(all.length, CHUNK_BYTES);
    const plain = all.subarray(0, take);
    const rest = all.subarray(take);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    const cipher = createCipheriv('aes-256-gcm', this.#cek, chunkNonce(this.#index));
    cipher.setAAD(chunkAad(this.#headerHash, this.#index, last));
    const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(ct.length);
    await this.#fh.write(Buffer.concat([len, ct]));
    this.#index++;
  }
}

function invalid(message: string, cause?: unknown): EdgeError {
  return new EdgeError('EDGE_BACKUP_INVALID', message, cause === undefined ? undefined : { cause });
}

/** Reads the clear header (nothing in it is trusted until the first chunk authenticates it). */
export async function readBackupHeader(fh: FileHandle): Promise<{ header: BackupHeader; headerHash: Buffer; offset: number }> {
  const head = Buffer.alloc(BACKUP_MAGIC.length + 4);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  if (bytesRead < head.length || !head.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC))
    throw invalid('not an Imaging Edge backup file');
  const len = head.readUInt32BE(BACKUP_MAGIC.length);
  if (len > MAX_HEADER_BYTES) throw invalid('backup header too large');
  const json = Buffer.alloc(len);
  const r = await fh.read(json, 0, len, head.length);
  if (r.bytesRead < len) throw invalid('backup header truncated');
  let header: BackupHeader;
  try {
    header = JSON.parse(json.toString('utf8')) as BackupHeader;
  } catch (cause) {
    throw invalid('backup header is not JSON', cause);
  }
  if (header.version !== 1 || typeof header.wraps?.box?.salt !== 'string') throw invalid('backup header has an unknown version or shape');
  return { header, headerHash: createHash('sha256').update(head).update(json).digest(), offset: head.length + len };
}

/**
 * Decrypts and parses the record stream, yielding each record; checks the manifest (counts and SHA-256)
 * at the end and returns it. Any alteration throws EDGE_BACKUP_INVALID.
 */
export async function* readBackupRecords(
  fh: FileHandle,
  cek: Buffer,
  headerHash: Buffer,
  offset: number,
): AsyncGenerator<BackupRecord, BackupManifest> {
  const size = (await fh.stat()).size;
  let pos = offset;
  let index = 0;
  let buffered: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  const hash = createHash('sha256');
  let records = 0;
  let files = 0;
  let sawLast = false;
  let manifest: BackupManifest | undefined;
  while (!sawLast) {
    const lenBuf = Buffer.alloc(4);
    if ((await fh.read(lenBuf, 0, 4, pos)).bytesRead < 4) throw invalid('backup truncated (no final chunk)');
    const len = lenBuf.readUInt32BE();
    if (len < TAG || len > CHUNK_BYTES * 2 + TAG) throw invalid('backup chunk has an impossible length');
    const ct = Buffer.alloc(len);
    if ((await fh.read(ct, 0, len, pos + 4)).bytesRead < len) throw invalid('backup truncated inside a chunk');
    pos += 4 + len;
    const last = pos === size;
    const decipher = createDecipheriv('aes-256-gcm', cek, chunkNonce(index));
    decipher.setAAD(chunkAad(headerHash, index, last));
    decipher.setAuthTag(ct.subarray(len - TAG));
    let plain: Buffer<ArrayBufferLike>;
    try {
      plain = Buffer.concat([decipher.update(ct.subarray(0, len - TAG)), decipher.final()]);
    } catch (cause) {
      throw invalid(`backup chunk ${index} failed authentication (altered, reordered or truncated)`, cause);
    }
    index++;
    sawLast = last;
    buffered = buffered.length === 0 ? plain : Buffer.concat([buffered, plain]);
    // Parse whole records out of the buffer.
    let at = 0;
    while (buffered.length - at >= 5) {
      const type = buffered[at]!;
      const plen = buffered.readUInt32BE(at + 1);
      if (buffered.length - at - 5 < plen) break;
      const whole = buffered.subarray(at, at + 5 + plen);
      const payload = whole.subarray(5);
      at += 5 + plen;
      if (manifest !== undefined) throw invalid('records after the manifest');
      if (type === RecordType.Manifest) {
        manifest = JSON.parse(payload.toString('utf8')) as BackupManifest;
        continue;
      }
      hash.update(whole);
      if (type === RecordType.DbEntry) {
        const kl = payload.readUInt32BE(0);
        records++;
        yield { type: 'db', key: payload.subarray(4, 4 + kl).toString('utf8'), value: Buffer.from(payload.subarray(4 + kl)) };
      } else if (type === RecordType.File) {
        const nl = payload.readUInt16BE(0);
        files++;
        yield { type: 'file', name: payload.subarray(2, 2 + nl).toString('utf8'), content: Buffer.from(payload.subarray(2 + nl)) };
      } else {
        throw invalid(`unknown record type ${type}`);
      }
    }
    buffered = buffered.subarray(at);
  }
  if (buffered.length > 0) throw invalid('trailing bytes after the last record');
  if (manifest === undefined) throw invalid('backup has no manifest');
  if (manifest.records !== records || manifest.files !== files || manifest.sha256 !== hash.digest('hex')) {
    throw invalid('backup manifest does not match its content');
  }
  return manifest;
}
