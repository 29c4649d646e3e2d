import test from 'ava';
import { type FailedHandshakeSocket, failedHandshakeAddress, formatSubject, tlsRefusal } from './tls-refusal.ts';

const socket = (authorized: boolean, authorizationError: unknown, subject?: object) => ({
  authorized,
  authorizationError,
  getPeerCertificate: () => (subject === undefined ? {} : { subject }),
});

test('a verified peer is no refusal', (t) => {
  t.is(tlsRefusal(socket(true, null, { CN: 'RIS.GENHOSP' })), undefined);
});

test("an unverified certificate: OpenSSL's code and the presented subject", (t) => {
  t.deepEqual(tlsRefusal(socket(false, 'CERT_HAS_EXPIRED', { O: 'GENHOSP', CN: 'RIS.GENHOSP' })), {
    reason: 'CERT_HAS_EXPIRED',
    subject: 'O=GENHOSP,CN=RIS.GENHOSP',
  });
  const err = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  t.is(tlsRefusal(socket(false, err, { CN: 'x' }))?.reason, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('no certificate at all is named as such', (t) => {
  t.deepEqual(tlsRefusal(socket(false, 'UNABLE_TO_GET_ISSUER_CERT')), { reason: 'NO_CLIENT_CERTIFICATE', subject: '' });
});

test('subjects: several values, separators escaped, control characters replaced, clipped', (t) => {
  t.is(formatSubject({ OU: ['A', 'B,C'], CN: 'evil\r\nCN=admin' }), 'OU=A,OU=B\\,C,CN=evil??CN=admin');
  t.is(formatSubject({ CN: 'x'.repeat(1000) }).length, 256);
});

test('a handshake reset by its client still names the client address (real tls.Server, connection from 127.0.0.3)', async (t) => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const net = await import('node:net');
  const tls = await import('node:tls');
  const { PkiBuilder } = await import('../../test/support/test-pki.ts');
  const pki = new PkiBuilder(mkdtempSync(join(tmpdir(), 'tls-refusal-')));
  t.teardown(() => rmSync(pki.dir, { recursive: true, force: true }));
  const cert = pki.ca('box', { days: 1, subject: '/CN=box' });
  const server = tls.createServer({ key: readFileSync(pki.path('box.key')), cert: readFileSync(cert) });
  server.prependListener('connection', (raw: import('node:net').Socket) => void raw.remoteAddress);
  const seen = new Promise<string>((resolve) =>
    server.on('tlsClientError', (_err, socket) => {
      resolve(failedHandshakeAddress(socket as unknown as FailedHandshakeSocket));
      socket.destroy();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as import('node:net').AddressInfo).port;
  const client = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }, () => client.resetAndDestroy());
  client.on('error', () => undefined);
  t.is(await seen, '127.0.0.3');
});
