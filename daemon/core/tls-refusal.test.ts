import test from 'ava';
import { formatSubject, tlsRefusal } from './tls-refusal.ts';

const socket = (authorized: boolean, authorizationError: unknown, subject?: object) => ({
  authorized,
  authorizationError,
  getPeerCertificate: () => (subject === undefined ? {} : { subject }),
});

test('a verified peer is no refusal', (t) => {
  t.is(tlsRefusal(socket(true, null, { CN: 'RIS.GENHOSP' })), undefined);
});

test('an unverified certificate: OpenSSL\'s code and the presented subject', (t) => {
  t.deepEqual(tlsRefusal(socket(false, 'CERT_HAS_EXPIRED', { O: 'GENHOSP', CN: 'RIS.GENHOSP' })), { reason: 'CERT_HAS_EXPIRED', subject: 'O=GENHOSP,CN=RIS.GENHOSP' });
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
