import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateFileProblem, dataKeyFileProblem, keyCertificateMismatch, privateKeyFileProblem } from './tls-material.ts';
import { tlsFiles } from '../../test/support/test-pki.ts';

/** A PEM block with this label around a body that is no DER at all. */
const garbagePem = (label: string): Buffer => Buffer.from(`-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`);

test('certificates: a real PEM passes; no block, a garbage block or a key instead are refused', (t) => {
  const { certificate, key } = tlsFiles();
  t.is(certificateFileProblem(certificate), undefined);
  t.is(certificateFileProblem(Buffer.concat([Buffer.from('subject=CN=x\n'), certificate, certificate])), undefined);
  t.regex(certificateFileProblem(Buffer.from('garbage')) ?? '', /holds no PEM certificate/);
  t.regex(certificateFileProblem(key) ?? '', /holds no PEM certificate/);
  t.regex(certificateFileProblem(garbagePem('CERTIFICATE')) ?? '', /not an X\.509 certificate/);
  // One bad certificate in a bundle is enough to refuse it.
  t.regex(certificateFileProblem(Buffer.concat([certificate, garbagePem('CERTIFICATE')])) ?? '', /not an X\.509/);
});

test('private keys: a real PEM passes; a certificate, garbage or an encrypted key are refused', (t) => {
  const { certificate, key } = tlsFiles();
  t.is(privateKeyFileProblem(key), undefined);
  t.regex(privateKeyFileProblem(certificate) ?? '', /holds no PEM private key/);
  t.regex(privateKeyFileProblem(garbagePem('PRIVATE KEY')) ?? '', /is not a usable private key/);
  // A real passphrase-protected key, made now: the box cannot use one (no passphrase is ever configured).
  const encrypted = Buffer.from(
    generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'not-configured' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }).privateKey,
  );
  t.regex(privateKeyFileProblem(encrypted) ?? '', /encrypted|not a usable/);
});

test('the key must belong to the first certificate of tls.certFile', (t) => {
  const { certificate, key, otherKey } = tlsFiles();
  const dir = mkdtempSync(join(tmpdir(), 'edge-match-'));
  const write = (name: string, data: Buffer) => {
    writeFileSync(join(dir, name), data);
    return join(dir, name);
  };
  const cert = write('c.pem', certificate);
  t.is(keyCertificateMismatch(cert, write('k.pem', key)), undefined);
  t.regex(
    keyCertificateMismatch(cert, write('o.pem', otherKey)) ?? '',
    /is not the private key of the certificate in tls\.certFile \(subject CN=edge-test\)/,
  );
  // Unreadable or unparsable files are reported at the file, not as a mismatch.
  t.is(keyCertificateMismatch(join(dir, 'missing.pem'), join(dir, 'k.pem')), undefined);
  t.is(keyCertificateMismatch(cert, write('g.pem', Buffer.from('garbage'))), undefined);
});

test('the data key file holds at least 32 bytes', (t) => {
  t.is(dataKeyFileProblem(Buffer.alloc(32)), undefined);
  t.is(dataKeyFileProblem(Buffer.alloc(64)), undefined);
  t.regex(dataKeyFileProblem(Buffer.alloc(10)) ?? '', /^holds 10 bytes; the data key needs at least 32 random bytes/);
  t.regex(dataKeyFileProblem(Buffer.alloc(0)) ?? '', /^holds 0 bytes/);
});
