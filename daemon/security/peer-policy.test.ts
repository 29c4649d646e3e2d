import test from 'ava';
import { Hl7PeerPolicy, ModalityPolicy, type RefusalReason, isRefusal } from './peer-policy.ts';

const hl7 = new Hl7PeerPolicy([{ name: 'ris', certificateCn: 'RIS.GENHOSP', sendingApplication: 'RIS', sendingFacility: 'GENHOSP', addresses: ['127.0.0.0/8'] }]);

test('HL7 peer: certificate and address must both match', (t) => {
  const ok = hl7.identify('RIS.GENHOSP', '::ffff:127.0.0.5');
  t.false(isRefusal(ok));
  const r1 = hl7.identify('OTHER', '127.0.0.1');
  t.true(isRefusal(r1) && r1.reason === 'unknown-certificate');
  const r2 = hl7.identify('RIS.GENHOSP', '10.1.2.3');
  t.true(isRefusal(r2) && r2.reason === 'address-not-allowed');
  const r3 = hl7.identify(undefined, '127.0.0.1');
  t.true(isRefusal(r3) && r3.reason === 'no-certificate');
});

const mod = new ModalityPolicy([
  { name: 'ct', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP' },
  { name: 'mr', aeTitle: 'MR01', transport: 'plain', addresses: ['127.0.0.1/32', '::1'] },
]);

const table: Array<[string, Parameters<ModalityPolicy['admit']>[0], RefusalReason | null]> = [
  ['tls modality with its certificate', { callingAeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP', remoteAddress: '10.0.0.1' }, null],
  ['tls modality with another certificate', { callingAeTitle: 'CT01', transport: 'tls', certificateCn: 'MR01', remoteAddress: '127.0.0.1' }, 'unknown-certificate'],
  ['tls modality on the plain port', { callingAeTitle: 'CT01', transport: 'plain', remoteAddress: '127.0.0.1' }, 'transport-not-allowed'],
  ['plain modality from its address', { callingAeTitle: 'MR01', transport: 'plain', remoteAddress: '127.0.0.1' }, null],
  ['plain modality from IPv6 loopback', { callingAeTitle: 'MR01', transport: 'plain', remoteAddress: '::1' }, null],
  ['plain modality from elsewhere', { callingAeTitle: 'MR01', transport: 'plain', remoteAddress: '127.0.0.2' }, 'address-not-allowed'],
  ['unknown AE', { callingAeTitle: 'XX', transport: 'plain', remoteAddress: '127.0.0.1' }, 'calling-ae-unknown'],
  ['AE title padded with spaces', { callingAeTitle: 'MR01  ', transport: 'plain', remoteAddress: '127.0.0.1' }, null],
];
for (const [name, req, expected] of table) {
  test(`modality policy: ${name}`, (t) => {
    const r = mod.admit(req);
    t.is(isRefusal(r) ? r.reason : null, expected);
  });
}
