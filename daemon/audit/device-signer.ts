// Who may sign a bundle: the box itself. A CA chain alone is not enough (the site CA also issues the
// modalities' and the RIS's certificates), so the verifier knows the box by two rules:
//   1. the signer's certificate is a device certificate: extended key usage serverAuth AND clientAuth,
//      which `edgectl cert install` demands of every device certificate (a modality's has clientAuth only);
//   2. it is the device the verifier already knows: the certificate pinned with --device-cert, or the
//      signer of the previous bundle (--after). A different certificate for the same public key is a
//      renewal and is accepted; a different key is accepted only with a key-change statement signed by
//      the previous device key (manifest `keyChanges`), never on the site name alone.
import { X509Certificate } from 'node:crypto';
import { type KeyChangeProof, KeyChangeFormat } from './bundle.ts';
import { verifyDetached } from './cms.ts';

const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';

export const fingerprintOf = (cert: X509Certificate): string => cert.fingerprint256.replace(/:/g, '').toLowerCase();

const subjectOf = (cert: X509Certificate): string => cert.subject.replace(/\n/g, ', ');

/** Rule 1: why `cert` cannot be a device certificate, or undefined. */
export function deviceCertificateProblem(cert: X509Certificate): string | undefined {
  const eku = cert.keyUsage ?? [];
  if (eku.includes(serverAuth) && eku.includes(clientAuth)) return undefined;
  return `${subjectOf(cert)} is not a device certificate (its extended key usage lacks ${eku.includes(serverAuth) ? 'clientAuth' : 'serverAuth'}; a device certificate has serverAuth and clientAuth)`;
}

const samePublicKey = (a: X509Certificate, b: X509Certificate): boolean =>
  a.publicKey.export({ type: 'spki', format: 'der' }).equals(b.publicKey.export({ type: 'spki', format: 'der' }));

export type Continuity = { readonly ok: true; readonly how: string } | { readonly ok: false; readonly problem: string };

/**
 * Rule 2: is `signer` the device known as `pinned`? `pinnedBy` says where the pin came from
 * ('device-cert' or 'after') for the message.
 */
export function deviceContinuity(
  pinned: X509Certificate,
  pinnedBy: 'device-cert' | 'after',
  signer: X509Certificate,
  proofs: readonly KeyChangeProof[] | undefined,
  trustAnchors: readonly X509Certificate[] | undefined,
): Continuity {
  if (fingerprintOf(signer) === fingerprintOf(pinned)) return { ok: true, how: 'the pinned device certificate' };
  if (samePublicKey(signer, pinned)) return { ok: true, how: 'a renewed certificate for the pinned device key' };
  // Follow the key-change statements from the pinned certificate to the signer.
  let current = fingerprintOf(pinned);
  const steps: string[] = [];
  for (let hops = 0; hops < (proofs?.length ?? 0) && current !== fingerprintOf(signer); hops++) {
    const next = proofs!.map((p) => keyChangeStep(p, current, trustAnchors)).find((s) => s !== undefined);
    if (next === undefined) break;
    steps.push(`${current.slice(0, 16)}… → ${next.slice(0, 16)}…`);
    current = next;
  }
  if (current === fingerprintOf(signer)) return { ok: true, how: `key change(s) signed by the previous device key: ${steps.join(', ')}` };
  const change = `${fingerprintOf(pinned).slice(0, 16)}… → ${fingerprintOf(signer).slice(0, 16)}… (${subjectOf(signer)})`;
  return {
    ok: false,
    problem:
      pinnedBy === 'after'
        ? `the signing certificate changed since the previous bundle (${change}) without a key-change statement signed by the previous device key`
        : `${subjectOf(signer)} is not the pinned device certificate (${change}) and no key-change statement signed by the pinned key leads to it`,
  };
}

/** The certificate fingerprint a proof changes `from` to, if it is valid and signed by `from`. */
function keyChangeStep(proof: KeyChangeProof, from: string, trustAnchors: readonly X509Certificate[] | undefined): string | undefined {
  let s: { format?: unknown; fromCertificateSha256?: unknown; toCertificateSha256?: unknown };
  try {
    s = JSON.parse(proof.statement) as typeof s;
  } catch {
    return undefined;
  }
  if (s.format !== KeyChangeFormat || s.fromCertificateSha256 !== from || typeof s.toCertificateSha256 !== 'string') return undefined;
  const v = verifyDetached(Buffer.from(proof.cms, 'base64'), Buffer.from(proof.statement, 'utf8'), trustAnchors);
  if (!v.ok || v.signer === undefined || fingerprintOf(v.signer) !== from) return undefined;
  return s.toCertificateSha256;
}
