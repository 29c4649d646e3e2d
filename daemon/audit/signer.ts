// The device key as the audit trail sees it: something that signs bytes and names its certificate chain.
// Today the box's TLS key file backs it; the TPM backend (issue 4) provides the same interface with a
// key that never leaves the chip.
import { X509Certificate, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EdgeError } from '../core/errors.ts';

export const SignatureAlgorithm = {
  /** ecdsa-with-SHA256 (RFC 5758), DER-encoded signature. */
  EcdsaSha256: '1.2.840.10045.4.3.2',
  /** sha256WithRSAEncryption (RFC 4055), PKCS #1 v1.5. */
  RsaSha256: '1.2.840.113549.1.1.11',
} as const;
export type SignatureAlgorithm = (typeof SignatureAlgorithm)[keyof typeof SignatureAlgorithm];

export interface Signer {
  /** DER certificates, the signer's own first, then any intermediates. */
  readonly certificates: readonly Buffer[];
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** Sign `data` with SHA-256 (the hash is taken by the signer). */
  sign(data: Uint8Array): Promise<Buffer>;
}

/** PEM certificates in file order, as DER. */
export function pemCertificates(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'),
  );
}

/** A signer over a PEM key file and its PEM certificate chain (the box's TLS identity). */
export function keyFileSigner(certFile: string, keyFile: string): Signer {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certFile);
    key = readFileSync(keyFile);
  } catch (cause) {
    throw new EdgeError('EDGE_TLS_MATERIAL', 'cannot read the device certificate or key for audit signing', { cause });
  }
  return keyMaterialSigner(cert, key);
}

/** A signer over key and certificate material already in memory (e.g. the TLS key unsealed from the TPM). */
export function keyMaterialSigner(certPem: string | Buffer, keyPem: string | Buffer): Signer {
  const certificates = pemCertificates(certPem.toString());
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    throw new EdgeError('EDGE_TLS_MATERIAL', 'cannot load the device key for audit signing', { cause });
  }
  const leaf = certificates[0];
  if (leaf === undefined) throw new EdgeError('EDGE_TLS_MATERIAL', 'no device certificate for audit signing');
  if (!new X509Certificate(leaf).checkPrivateKey(key))
    throw new EdgeError('EDGE_TLS_MATERIAL', 'the device key does not match its certificate');
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'rsa')
    throw new EdgeError('EDGE_TLS_MATERIAL', `device key type ${type ?? 'unknown'} cannot sign audit bundles`);
  return {
    certificates,
    signatureAlgorithm: type === 'ec' ? SignatureAlgorithm.EcdsaSha256 : SignatureAlgorithm.RsaSha256,
    sign: async (data) => cryptoSign('sha256', data, key),
  };
}
