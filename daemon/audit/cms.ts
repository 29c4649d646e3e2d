// Detached CMS SignedData (RFC 5652) over a bundle manifest or checkpoint statement. pkijs builds and
// parses the ASN.1; the signature itself comes from the Signer (so a TPM key works the same) and is
// checked with node:crypto, so verification needs no key store and no TPM. `openssl cms -verify` reads
// the same structure.
import { X509Certificate, createHash, verify as cryptoVerify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Signer } from './signer.ts';

const Oid = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaSha256: '1.2.840.113549.1.1.11',
} as const;

const toArrayBuffer = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** Sign `content` (detached: the content is not inside the result). Returns DER. */
export async function signDetached(signer: Signer, content: Uint8Array, signingTime = new Date()): Promise<Buffer> {
  const certs = signer.certificates.map((der) => pkijs.Certificate.fromBER(toArrayBuffer(der)));
  const leaf = certs[0];
  if (leaf === undefined) throw new TypeError('the signer has no certificate');
  const digest = createHash('sha256').update(content).digest();
  const attributes = [
    new pkijs.Attribute({ type: Oid.contentType, values: [new asn1js.ObjectIdentifier({ value: Oid.data })] }),
    new pkijs.Attribute({ type: Oid.signingTime, values: [new asn1js.UTCTime({ valueDate: signingTime })] }),
    new pkijs.Attribute({ type: Oid.messageDigest, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(digest) })] }),
  ];
  // The signature covers the attributes DER-encoded as a SET (RFC 5652 5.4), not as the [0] field.
  const signedAttrsDer = Buffer.from(new asn1js.Set({ value: attributes.map((a) => a.toSchema()) }).toBER(false));
  const signature = await signer.sign(signedAttrsDer);
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes });
  signedAttrs.encodedValue = toArrayBuffer(signedAttrsDer);
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: leaf.issuer, serialNumber: leaf.serialNumber }),
    digestAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: Oid.sha256 }),
    signedAttrs,
    signatureAlgorithm: new pkijs.AlgorithmIdentifier(
      signer.signatureAlgorithm === Oid.rsaSha256
        ? { algorithmId: signer.signatureAlgorithm, algorithmParams: new asn1js.Null() }
        : { algorithmId: signer.signatureAlgorithm },
    ),
    signature: new asn1js.OctetString({ valueHex: toArrayBuffer(signature) }),
  });
  const signedData = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [new pkijs.AlgorithmIdentifier({ algorithmId: Oid.sha256 })],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: Oid.data }),
    certificates: certs,
    signerInfos: [signerInfo],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: Oid.signedData, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}

export interface CmsVerification {
  readonly ok: boolean;
  /** Why it failed (first reason found). */
  readonly problem?: string;
  /** The signer's certificate (present when the structure could be read). */
  readonly signer?: X509Certificate;
  readonly signingTime?: Date;
  /** True when a trust anchor was given and the signer chains to it. */
  readonly trusted: boolean;
}

/**
 * Check a detached SignedData over `content`: digest, signature, and (when `trustAnchors` is given) that
 * the signer's certificate chains to one of them through the certificates in the structure and was valid
 * at the signing time.
 */
export function verifyDetached(cms: Uint8Array, content: Uint8Array, trustAnchors?: readonly X509Certificate[]): CmsVerification {
  let signedData: pkijs.SignedData;
  try {
    const contentInfo = pkijs.ContentInfo.fromBER(toArrayBuffer(cms));
    if (contentInfo.contentType !== Oid.signedData) return { ok: false, trusted: false, problem: 'not a CMS SignedData' };
    signedData = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (err) {
    return {
      ok: false,
      trusted: false,
      problem: `the signature file is not valid CMS (${err instanceof Error ? err.message : String(err)})`,
    };
  }
  const si = signedData.signerInfos[0];
  if (si === undefined || signedData.signerInfos.length !== 1) return { ok: false, trusted: false, problem: 'expected exactly one signer' };
  const certs = (signedData.certificates ?? [])
    .filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate)
    .map((c) => ({ pkijs: c, x509: new X509Certificate(Buffer.from(c.toSchema().toBER(false))) }));
  if (!(si.sid instanceof pkijs.IssuerAndSerialNumber))
    return { ok: false, trusted: false, problem: 'signer identified by key id: not supported' };
  const sid = si.sid;
  const signerCert = certs.find((c) => c.pkijs.issuer.isEqual(sid.issuer) && c.pkijs.serialNumber.isEqual(sid.serialNumber))?.x509;
  if (signerCert === undefined) return { ok: false, trusted: false, problem: "the signer's certificate is not in the signature" };
  if (si.digestAlgorithm.algorithmId !== Oid.sha256)
    return { ok: false, trusted: false, signer: signerCert, problem: 'digest algorithm is not SHA-256' };
  const attrs = si.signedAttrs;
  if (attrs === undefined) return { ok: false, trusted: false, signer: signerCert, problem: 'no signed attributes' };
  const attr = (oid: string) => attrs.attributes.find((a) => a.type === oid)?.values[0] as unknown;
  const md = attr(Oid.messageDigest);
  const st = attr(Oid.signingTime);
  const signingTime = st instanceof asn1js.UTCTime || st instanceof asn1js.GeneralizedTime ? st.toDate() : undefined;
  const base = { signer: signerCert, ...(signingTime === undefined ? {} : { signingTime }) };
  const digest = createHash('sha256').update(content).digest();
  if (!(md instanceof asn1js.OctetString) || !Buffer.from(md.valueBlock.valueHexView).equals(digest)) {
    return { ok: false, trusted: false, ...base, problem: 'the signed digest does not match the content' };
  }
  const der = Buffer.from(attrs.encodedValue);
  der[0] = 0x31;
  let signatureOk = false;
  try {
    signatureOk = cryptoVerify('sha256', der, signerCert.publicKey, Buffer.from(si.signature.valueBlock.valueHexView));
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) return { ok: false, trusted: false, ...base, problem: 'the signature does not verify with the signer certificate' };
  if (trustAnchors === undefined) return { ok: true, trusted: false, ...base };
  const at = signingTime ?? new Date();
  const problem = chainProblem(
    signerCert,
    certs.map((c) => c.x509),
    trustAnchors,
    at,
  );
  return problem === undefined ? { ok: true, trusted: true, ...base } : { ok: false, trusted: false, ...base, problem };
}

function validAt(cert: X509Certificate, at: Date): boolean {
  return new Date(cert.validFrom) <= at && at <= new Date(cert.validTo);
}

function chainProblem(
  leaf: X509Certificate,
  pool: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  at: Date,
): string | undefined {
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (!validAt(current, at)) return `certificate ${current.subject.replace(/\n/g, ', ')} was not valid at the signing time`;
    const anchor = anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
    if (anchor !== undefined) return validAt(anchor, at) ? undefined : 'the CA certificate was not valid at the signing time';
    const next = pool.find((c) => c !== current && c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (next === undefined) return 'the signer does not chain to the given CA';
    current = next;
  }
  return 'certificate chain too long';
}
