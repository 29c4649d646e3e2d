// The device's TLS identity: an ECDSA P-256 key pair made with WebCrypto, a PKCS#10 CSR (pkijs) for the
// site CA to sign, and a short-lived self-signed certificate so the box can self-test and serve until
// `edgectl cert install` puts the CA-signed one in place. The private key leaves this module only as its
// 32-byte scalar, to be sealed in the TPM.
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { EcPublicJwk } from '../daemon/security/tpm-key-source.ts';

pkijs.setEngine(
  'node-webcrypto',
  new pkijs.CryptoEngine({
    name: 'node-webcrypto',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);

export interface Subject {
  readonly CN: string;
  readonly O?: string;
  readonly OU?: string;
  readonly L?: string;
  readonly C?: string;
}

export interface DeviceIdentity {
  /** PEM */
  readonly csr: string;
  /** PEM, self-signed, valid `selfSignedDays` */
  readonly selfSigned: string;
  /** The private scalar; the caller seals it and zeroes it. */
  readonly d: Buffer;
  readonly publicJwk: EcPublicJwk;
}

const oid = {
  CN: '2.5.4.3',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  L: '2.5.4.7',
  C: '2.5.4.6',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

function name(subject: Subject): pkijs.RelativeDistinguishedNames {
  const rdn = new pkijs.RelativeDistinguishedNames();
  for (const k of ['C', 'O', 'OU', 'L', 'CN'] as const) {
    const v = subject[k];
    if (v === undefined) continue;
    const value = k === 'C' ? new asn1js.PrintableString({ value: v }) : new asn1js.Utf8String({ value: v });
    rdn.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: oid[k], value }));
  }
  return rdn;
}

function ipBytes(ip: string): ArrayBuffer {
  if (isIP(ip) === 4) return new Uint8Array(ip.split('.').map(Number)).buffer;
  // IPv6: expand '::' and write 8 groups.
  const [head = '', tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out.buffer;
}

function extensions(hostnames: readonly string[], addresses: readonly string[], withBasic: boolean): pkijs.Extension[] {
  const san = new pkijs.GeneralNames({
    names: [
      ...hostnames.map((h) => new pkijs.GeneralName({ type: 2, value: h })),
      ...addresses.map((a) => new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ipBytes(a) }) })),
    ],
  });
  // digitalSignature only: ECDHE key exchange needs no keyEncipherment.
  const keyUsage = new asn1js.BitString({ valueHex: new Uint8Array([0x80]).buffer, unusedBits: 7 });
  const out = [
    new pkijs.Extension({ extnID: oid.keyUsage, critical: true, extnValue: keyUsage.toBER(false), parsedValue: keyUsage }),
    new pkijs.Extension({
      extnID: oid.extKeyUsage,
      critical: false,
      extnValue: new pkijs.ExtKeyUsage({ keyPurposes: [oid.serverAuth, oid.clientAuth] }).toSchema().toBER(false),
    }),
    new pkijs.Extension({ extnID: oid.subjectAltName, critical: false, extnValue: san.toSchema().toBER(false) }),
  ];
  if (withBasic)
    out.unshift(
      new pkijs.Extension({
        extnID: oid.basicConstraints,
        critical: true,
        extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER(false),
      }),
    );
  return out;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export async function makeDeviceIdentity(o: {
  subject: Subject;
  hostnames: readonly string[];
  addresses: readonly string[];
  selfSignedDays?: number;
}): Promise<DeviceIdentity> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);

  const csr = new pkijs.CertificationRequest();
  csr.version = 0;
  csr.subject = name(o.subject);
  await csr.subjectPublicKeyInfo.importKey(keys.publicKey);
  csr.attributes = [
    new pkijs.Attribute({
      type: oid.extensionRequest,
      values: [new pkijs.Extensions({ extensions: extensions(o.hostnames, o.addresses, false) }).toSchema()],
    }),
  ];
  await csr.sign(keys.privateKey, 'SHA-256');

  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = new asn1js.Integer({ valueHex: serial.buffer.slice(serial.byteOffset, serial.byteOffset + 16) });
  cert.issuer = name(o.subject);
  cert.subject = name(o.subject);
  const now = Date.now();
  cert.notBefore.value = new Date(now - 60_000);
  cert.notAfter.value = new Date(now + (o.selfSignedDays ?? 30) * 86_400_000);
  cert.extensions = extensions(o.hostnames, o.addresses, true);
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey);
  await cert.sign(keys.privateKey, 'SHA-256');

  const jwk = await webcrypto.subtle.exportKey('jwk', keys.privateKey);
  const d = Buffer.from(jwk.d ?? '', 'base64url');
  jwk.d = '';
  return {
    csr: pem('CERTIFICATE REQUEST', csr.toSchema().toBER(false)),
    selfSigned: pem('CERTIFICATE', cert.toSchema().toBER(false)),
    d,
    publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' },
  };
}
