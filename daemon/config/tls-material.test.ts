import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateFileProblem, dataKeyFileProblem, keyCertificateMismatch, privateKeyFileProblem } from './tls-material.ts';
import { tlsFiles } from '../../test/support/test-pki.ts';

test('certificates: a real PEM passes; no block, a garbage block or a key instead are refused', (t) => {
  const { certificate, key } = tlsFiles();
  t.is(certificateFileProblem(certificate), undefined);
  t.is(certificateFileProblem(Buffer.concat([Buffer.from('subject=CN=x\n'), certificate, certificate])), undefined);
  t.regex(certificateFileProblem(Buffer.from('garbage')) ?? '', /holds no PEM certificate/);
  t.regex(certificateFileProblem(key) ?? '', /holds no PEM certificate/);
  t.regex(
    certificateFileProblem(Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')) ?? '',
    /not an X\.509 certificate/,
  );
  // One bad certificate in a bundle is enough to refuse it.
  t.regex(
    certificateFileProblem(Buffer.concat([certificate, Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')])) ??
      '',
    /not an X\.509/,
  );
});

test('private keys: a real PEM passes; a certificate, garbage or an encrypted key are refused', (t) => {
  const { certificate, key } = tlsFiles();
  t.is(privateKeyFileProblem(key), undefined);
  t.regex(privateKeyFileProblem(certificate) ?? '', /holds no PEM private key/);
  t.regex(
    privateKeyFileProblem(Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')) ?? '',
    /is not a usable private key/,
  );
  const encrypted = Buffer.from(
    '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhzz0l5dFq0CgICCAAw\n-----END ENCRYPTED PRIVATE KEY-----\n',
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
