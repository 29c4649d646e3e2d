// What the config check knows about TLS files and the data key: parsed as the TLS stack will parse them,
// so a garbage PEM or a key of another certificate is found by `edgectl config check`, not by the first
// peer's failed handshake. Each problem completes the sentence "<file> ...".
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file, first (the leaf of a chain) first; throws on an unparsable block. */
export function parseCertificates(data: Buffer): X509Certificate[] {
  return (data.toString('latin1').match(certificateBlock) ?? []).map((pem) => new X509Certificate(pem));
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:/i, '') : String(err);
}

export function certificateFileProblem(data: Buffer): string | undefined {
  let certificates: X509Certificate[];
  try {
    certificates = parseCertificates(data);
  } catch (err) {
    return `holds a CERTIFICATE block that is not an X.509 certificate (${reason(err)}); replace it with the PEM file the CA issued`;
  }
  if (certificates.length === 0) {
    return 'holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block); point this at the PEM certificate file, not a key, DER or CSR file';
  }
  return undefined;
}

/** Parses the key as TLS will; throws with the library's reason. */
export function parsePrivateKey(data: Buffer): KeyObject {
  return createPrivateKey({ key: data, format: 'pem' });
}

export function privateKeyFileProblem(data: Buffer): string | undefined {
  if (!data.toString('latin1').includes('PRIVATE KEY-----')) {
    return 'holds no PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block); point this at the box\'s private key file';
  }
  try {
    parsePrivateKey(data);
  } catch (err) {
    const why = reason(err);
    if (/passphrase/i.test(why))
      return 'is an encrypted private key; the box needs it unencrypted (mode 0600) or sealed with keys.backend "tpm"';
    return `is not a usable private key (${why}); replace it with the key the certificate request was made from`;
  }
  return undefined;
}

/** Why the key does not belong to the first certificate of the chain, or undefined when it does. */
export function keyCertificateMismatch(certificateFile: string, keyFile: string): string | undefined {
  let leaf: X509Certificate | undefined;
  let key: KeyObject;
  try {
    leaf = parseCertificates(readFileSync(certificateFile))[0];
    key = parsePrivateKey(readFileSync(keyFile));
  } catch {
    return undefined; // missing, unreadable or unparsable: already reported at the file itself
  }
  if (leaf === undefined || leaf.checkPrivateKey(key)) return undefined;
  return (
    `is not the private key of the certificate in tls.certFile (subject ${leaf.subject.replaceAll('\n', ', ')}); ` +
    'configure the key the certificate was issued for, or install the certificate issued for this key'
  );
}

/** FileKeySource needs 32 bytes; a shorter secret would make a weak data key. */
export const minDataKeyBytes = 32;

export function dataKeyFileProblem(data: Buffer): string | undefined {
  if (data.length >= minDataKeyBytes) return undefined;
  return (
    `holds ${data.length} bytes; the data key needs at least ${minDataKeyBytes} random bytes. If this box already has ` +
    'data, restore its original key file (another key cannot open it); on a new box create one with ' +
    '`head -c 32 /dev/urandom > FILE && chmod 600 FILE`'
  );
}
