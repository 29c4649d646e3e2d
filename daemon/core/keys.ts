// The key-source port: where the store's data keys come from. `keys.backend: file` (development) and the
// TPM backend implement it; nothing else in the box knows which one is in use.
//
// Rotation holds several data keys at once: values name the key id they were sealed with, so a ring
// that holds both the old and the new key reads everything while the store is re-encrypted, and the
// old key is dropped only when no value names it any more. The index key never rotates: index keys of
// the database are HMACs under it, and changing it would mean rewriting every index.

export interface DataKeyRing {
  /** Key id written into every new value. */
  readonly activeKeyId: number;
  /** Every data key id held, ascending. */
  readonly keyIds: readonly number[];
  /** 32-byte AES-256-GCM key for a key id found in a stored value, or undefined when not held. */
  dataKey(keyId: number): Uint8Array | undefined;
  /** 32-byte HMAC key for index keys (keyed hashes of patient ids, accession numbers, control ids). */
  readonly indexKey: Uint8Array;
  /** Overwrite key material in memory (best effort: JavaScript may hold copies). */
  destroy(): void;
}

/** A ring whose data keys can change while the store is open (rotation). */
export class KeyRing implements DataKeyRing {
  readonly #keys = new Map<number, Uint8Array>();
  readonly #indexKey: Uint8Array;
  #active: number;

  constructor(indexKey: Uint8Array, keys: ReadonlyArray<readonly [number, Uint8Array]>, activeKeyId: number) {
    this.#indexKey = indexKey;
    for (const [id, key] of keys) this.add(id, key);
    if (!this.#keys.has(activeKeyId)) throw new TypeError(`active key id ${activeKeyId} is not among the keys`);
    this.#active = activeKeyId;
  }

  get activeKeyId(): number {
    return this.#active;
  }

  get keyIds(): readonly number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  get indexKey(): Uint8Array {
    return this.#indexKey;
  }

  dataKey(keyId: number): Uint8Array | undefined {
    return this.#keys.get(keyId);
  }

  add(keyId: number, key: Uint8Array): void {
    if (!Number.isInteger(keyId) || keyId < 1 || keyId > 0xffff_ffff) throw new TypeError(`bad key id ${keyId}`);
    if (key.length !== 32) throw new TypeError('a data key is 32 bytes');
    if (this.#keys.has(keyId)) throw new TypeError(`key id ${keyId} is already held`);
    this.#keys.set(keyId, key);
  }

  activate(keyId: number): void {
    if (!this.#keys.has(keyId)) throw new TypeError(`key id ${keyId} is not held`);
    this.#active = keyId;
  }

  /** Forget a key and overwrite it; the active key cannot be removed. */
  remove(keyId: number): void {
    if (keyId === this.#active) throw new TypeError('the active key cannot be removed');
    this.#keys.get(keyId)?.fill(0);
    this.#keys.delete(keyId);
  }

  destroy(): void {
    for (const key of this.#keys.values()) key.fill(0);
    this.#indexKey.fill(0);
  }
}

/** What a backend offers to rotate data keys online (the TPM backend does; `file` does not). */
export interface DataKeyRotation {
  /** Make a new random data key, persist it (sealed) and add it to the ring, not active yet; its id. */
  addDataKey(ring: KeyRing): Promise<number>;
  /** Persist that `keyId` is the active key, then make it active in the ring. */
  activate(ring: KeyRing, keyId: number): Promise<void>;
  /** Destroy the persisted key (evict it from the TPM) and overwrite it in the ring. */
  retire(ring: KeyRing, keyId: number): Promise<void>;
}

export interface KeySource {
  /** A short name for logs and the admin page, e.g. `file` or `tpm`. */
  readonly backend: string;
  load(): Promise<DataKeyRing>;
  /** Present when the backend can rotate data keys; `load()` then returns a KeyRing. */
  readonly rotation?: DataKeyRotation;
  /** Present when the backend holds the box's TLS private key: PKCS#8 PEM, unsealed into memory. */
  tlsPrivateKey?(): Promise<Buffer>;
}
