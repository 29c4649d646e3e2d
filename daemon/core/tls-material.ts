// The TLS material every listener and client of the box uses: the site CA, the device certificate and
// its key (unsealed into memory), and the BCP 195 profile (security/tls-profile.ts). Built once at start
// (security/tls-material.ts) and handed whole to each adapter.
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  readonly ecdhCurve: string;
  /** OpenSSL options of the box's listeners (no renegotiation); clients leave them out. */
  readonly secureOptions?: number;
}

/** A client's TLS: the box's material, or (in tests of one adapter) just the PEMs, taking Node's defaults. */
export type ClientTlsMaterial = Pick<TlsMaterial, 'ca' | 'cert' | 'key'> &
  Partial<Pick<TlsMaterial, 'minVersion' | 'ciphers' | 'ecdhCurve'>>;
