import test from 'ava';
import { Hl7PeerPolicy, ModalityPolicy, type RefusalReason, isRefusal } from './peer-policy.ts';

const hl7 = new Hl7PeerPolicy([
  { name: 'ris', certificateCn: 'RIS.GENHOSP', sendingApplication: 'RIS', sendingFacility: 'GENHOSP', addresses: ['127.0.0.0/8'] },
]);

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
  [
    'tls modality with its certificate',
    { callingAeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP', remoteAddress: '10.0.0.1' },
    null,
  ],
  [
    'tls modality with another certificate',
    { callingAeTitle: 'CT01', transport: 'tls', certificateCn: 'MR01', remoteAddress: '127.0.0.1' },
    'unknown-certificate',
  ],
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

test('source pre-filter: only when every peer of the listener declares its addresses', (t) => {
  t.true(hl7.admitsSource('127.0.0.9'));
  t.false(hl7.admitsSource('10.1.2.3'), 'no HL7 peer may connect from 10.1.2.3');
  const open = new Hl7PeerPolicy([
    { name: 'ris', certificateCn: 'RIS.GENHOSP', sendingApplication: 'RIS', sendingFacility: 'GENHOSP', addresses: ['127.0.0.1/32'] },
    { name: 'engine', certificateCn: 'ENGINE', sendingApplication: 'ENG', sendingFacility: 'GENHOSP' },
  ]);
  t.true(open.admitsSource('10.1.2.3'), 'a peer without addresses may come from anywhere: no pre-filter');
  t.true(new Hl7PeerPolicy([]).admitsSource('127.0.0.1'), 'no peers: no pre-filter (the handshake and the peer check refuse)');

  t.true(mod.admitsSource('tls', '10.0.0.1'), 'CT01 (TLS) declares no addresses: no pre-filter on the TLS port');
  t.true(mod.admitsSource('plain', '::ffff:127.0.0.1'));
  t.false(mod.admitsSource('plain', '127.0.0.2'), "the plain port only admits MR01's addresses");
  const declared = new ModalityPolicy([
    { name: 'ct', aeTitle: 'CT01', transport: 'tls', certificateCn: 'CT01.GENHOSP', addresses: ['10.20.1.0/24'] },
    { name: 'mr', aeTitle: 'MR01', transport: 'plain', addresses: ['127.0.0.1/32'] },
  ]);
  t.true(declared.admitsSource('tls', '10.20.1.7'));
  t.false(declared.admitsSource('tls', '127.0.0.1'), "a plain modality's address does not open the TLS port");
});
