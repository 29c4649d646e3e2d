// The admin page's certificates and keys view (`GET /v1/certificates`): each certificate the box holds
// with its subject, issuer, fingerprint and expiry (flagged 30 days ahead), the keys backend (a `file`
// backend is development only), the TPM's PCR policy, and the last data-key rotation the chain recorded.
import { X509Certificate } from 'node:crypto';
import type { ControlRoute } from '../core/control-route.ts';
import type { FlowContext } from './flow-context.ts';
import { CERTIFICATE_WARNING_MS } from './overview.ts';

interface CertificateView {
  readonly certificate: string;
  readonly subject: string;
  readonly issuer: string;
  readonly fingerprintSha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly state: 'ok' | 'expiring' | 'expired';
}

function describe(name: string, pem: string, now: number): CertificateView | undefined {
  try {
    const c = new X509Certificate(pem);
    const notAfter = Date.parse(c.validTo);
    return {
      certificate: name,
      subject: c.subject.replaceAll('\n', ', '),
      issuer: c.issuer.replaceAll('\n', ', '),
      fingerprintSha256: c.fingerprint256,
      notBefore: new Date(Date.parse(c.validFrom)).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      state: notAfter < now ? 'expired' : notAfter - now < CERTIFICATE_WARNING_MS ? 'expiring' : 'ok',
    };
  } catch {
    // Refused when the TLS material loaded; an unparsable block is not shown.
    return undefined;
  }
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function certificatesRoute(ctx: FlowContext, lastRotation: () => string | null): ControlRoute {
  const { tls, config, keySource } = ctx;
  return {
    method: 'GET',
    path: '/v1/certificates',
    permission: 'viewer',
    handle: () => {
      const now = Date.now();
      const device = tls.cert.toString('utf8').match(PEM_BLOCK) ?? [];
      const cas = tls.ca.toString('utf8').match(PEM_BLOCK) ?? [];
      const certificates = [
        ...device.slice(0, 1).map((pem) => describe('device', pem, now)),
        ...cas.map((pem, i) => describe(i === 0 ? 'site-ca' : `site-ca-${i + 1}`, pem, now)),
      ].filter((c): c is CertificateView => c !== undefined);
      const keys = config.keys;
      return {
        status: 200,
        body: {
          certificates,
          keys: {
            backend: keySource.backend,
            developmentOnly: keySource.backend === 'file',
            canRotate: keySource.rotation !== undefined,
            ...(keys.backend === 'tpm' ? { tpm: { tcti: keys.tpm.tcti, pcrPolicy: keys.tpm.pcrs } } : {}),
            lastRotation: lastRotation(),
          },
        },
      };
    },
  };
}
