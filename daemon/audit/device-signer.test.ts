// Who may sign a bundle: a device certificate, pinned, and a key change only when the old key signed it.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeyChangeFormat, type KeyChangeProof } from './bundle.ts';
import { signDetached } from './cms.ts';
import { deviceCertificateProblem, deviceContinuity, fingerprintOf } from './device-signer.ts';
import { keyFileSigner } from './signer.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';

const pki = makeAuditTestPki();
test.after.always(() => pki.cleanup());
const cert = (path: string) => new X509Certificate(readFileSync(path));
const device = cert(pki.device.cert);
const modality = cert(pki.modality.cert);
const collector = cert(pki.collector.cert);
const ca = [cert(pki.siteCa)];

async function proof(by: { cert: string; key: string }, from: X509Certificate, to: X509Certificate): Promise<KeyChangeProof> {
  const statement = JSON.stringify({
    format: KeyChangeFormat,
    site: 'edge-test',
    fromCertificateSha256: fingerprintOf(from),
    toCertificateSha256: fingerprintOf(to),
    at: new Date().toISOString(),
  });
  return { statement, cms: (await signDetached(keyFileSigner(by.cert, by.key), Buffer.from(statement))).toString('base64') };
}

test('a device certificate has serverAuth and clientAuth; a modality or a server-only certificate is not one', (t) => {
  t.is(deviceCertificateProblem(device), undefined);
  t.regex(deviceCertificateProblem(modality) ?? '', /CN=CT01 is not a device certificate \(its extended key usage lacks serverAuth/);
  t.regex(deviceCertificateProblem(collector) ?? '', /lacks clientAuth/);
});

test('the pinned certificate is the device; another key is refused unless the pinned key signed the change', async (t) => {
  t.true(deviceContinuity(device, 'device-cert', device, undefined, ca).ok);
  const refused = deviceContinuity(device, 'after', collector, undefined, ca);
  t.false(refused.ok);
  t.regex(
    refused.ok ? '' : refused.problem,
    /changed since the previous bundle .* without a key-change statement signed by the previous device key/,
  );
  const signed = deviceContinuity(device, 'after', collector, [await proof(pki.device, device, collector)], ca);
  t.true(signed.ok, signed.ok ? '' : signed.problem);
  t.regex(signed.ok ? signed.how : '', /key change\(s\) signed by the previous device key/);
  // The same statement signed by the new key itself (or anyone else) proves nothing.
  t.false(deviceContinuity(device, 'after', collector, [await proof(pki.collector, device, collector)], ca).ok);
  t.false(deviceContinuity(device, 'device-cert', collector, [await proof(pki.modality, device, collector)], ca).ok);
});
