// The key-source port: where the store's data keys come from. `keys.backend: file` (development) and the
// TPM backend implement it; nothing else in the box knows which one is in use.

export interface DataKeyRing {
  /** Key id written into every new value. */
  readonly activeKeyId: number;
  /** 32-byte AES-256-GCM key for a key id found in a stored value, or undefined when not held. */
  dataKey(keyId: number): Uint8Array | undefined;
  /** 32-byte HMAC key for index keys (keyed hashes of patient ids, accession numbers, control ids). */
  readonly indexKey: Uint8Array;
  /** Overwrite key material in memory (best effort: JavaScript may hold copies). */
  destroy(): void;
}

export interface KeySource {
  /** A short name for logs and the admin page, e.g. `file` or `tpm`. */
  readonly backend: string;
  load(): Promise<DataKeyRing>;
}
