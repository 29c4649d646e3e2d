// Builds the box's one TlsMaterial from the files the config names; the private key comes from the
// key backend (sealed by the TPM) when no key file is set.
import { readFileSync } from 'node:fs';
import { EdgeError } from '../core/errors.ts';
import type { KeySource } from '../core/keys.ts';
import type { TlsMaterial } from '../core/tls-material.ts';
import { TLS_CIPHERS, TLS_ECDH_CURVES, TLS_SERVER_SECURE_OPTIONS } from './tls-profile.ts';

export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile?: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export async function loadTlsMaterial(files: TlsFiles, keySource: KeySource): Promise<TlsMaterial> {
  return {
    ca: readTlsFile(files.caFile, 'tls.caFile'),
    cert: readTlsFile(files.certFile, 'tls.certFile'),
    key: files.keyFile === undefined ? await sealedTlsKey(keySource) : readTlsFile(files.keyFile, 'tls.keyFile'),
    minVersion: files.minVersion,
    ciphers: TLS_CIPHERS,
    ecdhCurve: TLS_ECDH_CURVES,
    secureOptions: TLS_SERVER_SECURE_OPTIONS,
  };
}

/** The same material for a client connection: the listeners' OpenSSL options stay with the listeners. */
export function clientTls(material: TlsMaterial): TlsMaterial {
  const { secureOptions: _server, ...client } = material;
  return client;
}

/** A PEM file the config names (a CA, a certificate, a key), read at start. */
export function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new EdgeError('EDGE_TLS_MATERIAL', `${what} ${path} cannot be read`, { cause });
  }
}

/** The TLS private key sealed in the TPM, unsealed into memory for the TLS contexts only. */
async function sealedTlsKey(keySource: KeySource): Promise<Buffer> {
  if (keySource.tlsPrivateKey === undefined)
    throw new EdgeError('EDGE_TLS_MATERIAL', 'tls.keyFile is not set and the key backend holds no TLS key');
  return keySource.tlsPrivateKey();
}
