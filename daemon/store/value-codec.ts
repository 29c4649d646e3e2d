// Every value at rest is AES-256-GCM sealed: [version 1][key id u32][nonce 12][ciphertext][tag 16],
// with the record's own key as associated data, so a value copied under another key fails to open.
import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, randomFillSync } from 'node:crypto';
import { EdgeError } from '../core/errors.ts';
import type { DataKeyRing } from '../core/keys.ts';

const VERSION = 1;
const HEADER = 1 + 4 + 12;
const TAG = 16;

// Building a cipher from raw key bytes makes a new KeyObject every call, which dominated the per-value
// cost; one KeyObject per key (dropped with the key's bytes when a rotation retires it) avoids that.
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

// Random 96-bit nonces drawn from a pool that one CSPRNG call refills: the same randomness as a call per
// value, without a call per value (a visible share of every seal's cost).
const NONCE_POOL = Buffer.alloc(12 * 1024);
let noncePos = NONCE_POOL.length;
function nextNonce(): Buffer {
  if (noncePos === NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePos = 0;
  }
  const nonce = NONCE_POOL.subarray(noncePos, noncePos + 12);
  noncePos += 12;
  return nonce;
}
function keyObjectOf(key: Uint8Array): KeyObject {
  let k = keyObjects.get(key);
  if (k === undefined) {
    k = createSecretKey(key);
    keyObjects.set(key, k);
  }
  return k;
}

export class ValueCodec {
  readonly #keys: DataKeyRing;

  constructor(keys: DataKeyRing) {
    this.#keys = keys;
  }

  seal(recordKey: string, plaintext: Uint8Array): Buffer {
    const keyId = this.#keys.activeKeyId;
    const key = this.#keys.dataKey(keyId);
    if (key === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `active key id ${keyId} is not loaded`);
    const out = Buffer.allocUnsafe(HEADER + plaintext.length + TAG);
    out[0] = VERSION;
    out.writeUInt32BE(keyId, 1);
    const nonce = nextNonce();
    nonce.copy(out, 5);
    const cipher = createCipheriv('aes-256-gcm', keyObjectOf(key), nonce);
    cipher.setAAD(Buffer.from(recordKey, 'utf8'));
    const n1 = cipher.update(plaintext).copy(out, HEADER);
    const n2 = cipher.final().copy(out, HEADER + n1);
    cipher.getAuthTag().copy(out, HEADER + n1 + n2);
    return out;
  }

  open(recordKey: string, sealed: Uint8Array): Buffer {
    const buf = Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.length < HEADER + TAG || buf[0] !== VERSION) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'stored value has an unknown format');
    }
    const keyId = buf.readUInt32BE(1);
    const key = this.#keys.dataKey(keyId);
    if (key === undefined) throw new EdgeError('EDGE_STORE_UNKNOWN_KEY_ID', `stored value uses key id ${keyId}`);
    const decipher = createDecipheriv('aes-256-gcm', keyObjectOf(key), buf.subarray(5, HEADER));
    decipher.setAAD(Buffer.from(recordKey, 'utf8'));
    decipher.setAuthTag(buf.subarray(buf.length - TAG));
    try {
      const a = decipher.update(buf.subarray(HEADER, buf.length - TAG));
      const b = decipher.final();
      return b.length === 0 ? a : Buffer.concat([a, b]);
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', undefined, { cause });
    }
  }

  /** Key id a sealed value was written with (for rotation). */
  static keyIdOf(sealed: Uint8Array): number {
    return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).readUInt32BE(1);
  }
}
