// `keys.backend: file` — development only. The data key lives in a 0600 file; the daemon says loudly
// that it runs without a TPM. Subkeys are derived with HKDF so that one file secret never serves two
// purposes (value encryption and index hashing).
import { hkdfSync } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { EdgeError } from '../core/errors.ts';
import { type DataKeyRing, KeyRing, type KeySource } from '../core/keys.ts';

const FILE_KEY_ID = 1;

export function deriveKeyRing(secret: Uint8Array, keyId = FILE_KEY_ID): DataKeyRing {
  const dataKey = new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), `imaging-edge data key ${keyId}`, 32));
  const indexKey = new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'imaging-edge index key', 32));
  return new KeyRing(indexKey, [[keyId, dataKey]], keyId);
}

export class FileKeySource implements KeySource {
  readonly backend = 'file';
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  async load(): Promise<DataKeyRing> {
    let info;
    try {
      info = await stat(this.#path);
    } catch (cause) {
      throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `cannot read the key file ${this.#path}`, { cause });
    }
    if ((info.mode & 0o077) !== 0) {
      throw new EdgeError('EDGE_KEYS_FILE_MODE', `the key file ${this.#path} must be mode 0600 (it is ${(info.mode & 0o777).toString(8)})`);
    }
    const secret = await readFile(this.#path);
    if (secret.length < 32) {
      throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `the key file ${this.#path} holds ${secret.length} bytes; 32 are needed`);
    }
    const ring = deriveKeyRing(secret);
    secret.fill(0);
    return ring;
  }
}
