// Orders in, worklist out, against real peers: python-hl7's mllp_send (through a socat TLS client) as the
// RIS, DCMTK findscu as the modalities (TLS with a client certificate, and plain from an allowlisted AE).
import test from 'ava';
import { findscu } from '../support/dicom-peers.ts';
import { fixture, mllpSend, msa, MllpTlsClient } from '../support/hl7-peers.ts';
import { Daemon, createSite } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;

test.before(async () => {
  site = await createSite((c) => {
    // A third modality: the US room, plain, scoped to its own station AE title.
    c['dicom'].modalities.push({
      name: 'us1',
      aeTitle: 'US01',
      transport: 'plain',
      addresses: ['127.0.0.1/32'],
      worklistScope: { stationAeTitles: ['US01'] },
    });
  });
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

const ris = () => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
const ct01 = () => {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  return { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert };
};
const CT_KEYS = [
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'AccessionNumber',
  'StudyInstanceUID',
  'RequestedProcedureID',
  'RequestedProcedureDescription',
  'ScheduledProcedureStepSequence[0].Modality',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
  'ScheduledProcedureStepSequence[0].ScheduledStationAETitle',
];

test.serial('the RIS orders arrive with AA (AE for an invalid one) and each modality gets exactly its items', async (t) => {
  const names = ['orm-o01-new-ct.hl7', 'orm-o01-new-mr-escapes.hl7', 'omi-o23-new-us.hl7', 'bad-missing-obr.hl7'];
  const acks = await mllpSend(daemon.ports.hl7, ris(), await Promise.all(names.map(fixture)));
  t.deepEqual(acks.map(msa), ['AA', 'AA', 'AA', 'AE']);
  t.regex(acks[3]!, /ERR\|OBR/, 'the NAK names the missing segment');

  // CT01 over TLS with its certificate: the CT order only.
  const ct = await findscu({ port: daemon.ports.dicomTls, callingAe: 'CT01', tls: ct01(), keys: CT_KEYS });
  t.is(ct.finalStatus, 'Success', ct.stdout + ct.stderr);
  t.is(ct.responses.length, 1);
  const item = ct.responses[0]!;
  t.is(item['PatientName'], 'MÜLLER^JÜRGEN^K');
  t.is(item['PatientID'], 'PAT10001');
  t.is(item['PatientBirthDate'], '19580214');
  t.is(item['AccessionNumber'], 'ACC0001');
  t.is(item['RequestedProcedureID'], 'RP0001');
  t.is(item['StudyInstanceUID'], '1.2.826.0.1.3680043.9.7433.1.1001');
  t.is(item['Modality'], 'CT');
  t.is(item['ScheduledProcedureStepStartDate'], '20261125');
  t.is(item['ScheduledProcedureStepStartTime'], '090000');
  t.is(item['ScheduledProcedureStepID'], 'SPS0001');

  // MR01 on the plain port from its allowlisted address: the MR order, escapes decoded, UID generated.
  const mr = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'MR01', keys: [...CT_KEYS, 'SpecificCharacterSet'] });
  t.is(mr.responses.length, 1, mr.stdout);
  t.is(mr.responses[0]!['RequestedProcedureDescription'], 'MR BRAIN & IAC W/WO');
  t.regex(mr.responses[0]!['StudyInstanceUID'] ?? '', /^2\.25\.\d+$/);

  // US01 scoped to its station: the OMI order with ideographic and phonetic name groups.
  const us = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'US01', keys: [...CT_KEYS, 'SpecificCharacterSet'] });
  t.is(us.responses.length, 1, us.stdout);
  // No alphabetic repetition in PID-5: the first (alphabetic) component group stays empty.
  t.is(us.responses[0]!['PatientName'], '=山田^太郎=ヤマダ^タロウ');
  t.is(us.responses[0]!['ScheduledStationAETitle'], 'US01');
  t.is(us.responses[0]!['ScheduledProcedureStepStartTime'], '113000');
  t.is(us.responses[0]!['SpecificCharacterSet'], 'ISO_IR 192');
});

test.serial('a modality sees nothing outside its scope even when it asks for it', async (t) => {
  const r = await findscu({
    port: daemon.ports.dicomPlain,
    callingAe: 'MR01',
    keys: ['PatientName', 'ScheduledProcedureStepSequence[0].Modality=CT'],
  });
  t.is(r.finalStatus, 'Success');
  t.is(r.responses.length, 0);
});

test.serial('matching narrows by date range and wildcard name', async (t) => {
  const hit = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: ct01(),
    keys: ['PatientName=MÜL*', 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261125-20261126'],
    extra: ['-k', 'SpecificCharacterSet=ISO_IR 192'],
  });
  t.is(hit.responses.length, 1, hit.stdout);
  const miss = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: ct01(),
    keys: ['PatientName', 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261126-'],
  });
  t.is(miss.responses.length, 0);
});

test.serial('ADT A08 updates the name on the worklist; a cancel removes the CT item', async (t) => {
  const acks = await mllpSend(daemon.ports.hl7, ris(), [await fixture('adt-a08-update.hl7'), await fixture('orm-o01-cancel.hl7')]);
  t.deepEqual(acks.map(msa), ['AA', 'AA']);
  const mr = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'MR01', keys: ['PatientName'] });
  t.is(mr.responses[0]?.['PatientName'], "O'BRIEN-SMITH^MARY ANN");
  const ct = await findscu({ port: daemon.ports.dicomTls, callingAe: 'CT01', tls: ct01(), keys: ['PatientName'] });
  t.is(ct.responses.length, 0);
});

test.serial("ADT A40 moves the prior patient's items to the surviving patient", async (t) => {
  const client = await MllpTlsClient.connect(daemon.ports.hl7, ris());
  // Re-order the CT exam under a new placer number for PAT10001, then merge PAT10001 into PAT10004.
  const reorder = (await fixture('orm-o01-new-ct.hl7')).toString('latin1').replaceAll('PLC0001', 'PLC0101').replace('MSG00001', 'MSG00101');
  t.is(msa(await client.send(Buffer.from(reorder, 'latin1'))), 'AA');
  t.is(msa(await client.send(await fixture('adt-a40-merge.hl7'))), 'AA');
  client.close();
  const ct = await findscu({ port: daemon.ports.dicomTls, callingAe: 'CT01', tls: ct01(), keys: ['PatientID', 'PatientName'] });
  t.deepEqual(
    ct.responses.map((r) => r['PatientID']),
    ['PAT10004'],
  );
});

test.serial('a replayed control id is refused with AR and changes nothing', async (t) => {
  const acks = await mllpSend(daemon.ports.hl7, ris(), [await fixture('orm-o01-new-mr-escapes.hl7')]);
  t.is(msa(acks[0]), 'AR');
});

test.serial('refused: a modality AE not on the allowlist, a TLS modality without a certificate, an unknown HL7 sender', async (t) => {
  const stranger = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'XR99', keys: ['PatientName'] });
  t.true(stranger.associationRejected, stranger.stdout + stranger.stderr);

  const anonymous = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: { anonymous: true, caFile: site.pki.caCert },
    keys: ['PatientName'],
  });
  t.is(anonymous.responses.length, 0);
  t.not(anonymous.finalStatus, 'Success');

  const wrongPort = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'CT01', keys: ['PatientName'] });
  t.true(wrongPort.associationRejected, 'a TLS modality is refused on the plain port');

  // A certificate from the site CA that names no configured HL7 peer: the connection is closed unanswered.
  const acks = await mllpSend(
    daemon.ports.hl7,
    { certFile: site.stranger.certFile, keyFile: site.stranger.keyFile, caFile: site.pki.caCert },
    [ormFixtureWithId('STRANGER1')],
  );
  t.is(msa(acks[0]), undefined);
  // A certificate from another CA that carries the RIS's CN: the TLS handshake fails.
  const rogue = await mllpSend(daemon.ports.hl7, { certFile: site.rogue.certFile, keyFile: site.rogue.keyFile, caFile: site.pki.caCert }, [
    ormFixtureWithId('ROGUE1'),
  ]);
  t.is(msa(rogue[0]), undefined);

  await daemon.process.waitForLine((l) => l.includes('"event":"hl7.peer.refused"'));
  t.true(daemon.process.lines.some((l) => l.includes('dicom.association-rejected') || l.includes('association-rejected')));
});

test.serial('the daemon logs identifiers only: no patient names, ids, birth dates or accession numbers', (t) => {
  const log = daemon.process.lines.join('\n');
  t.true(log.length > 0);
  for (const phi of ['MÜLLER', 'MULLER', "O'BRIEN", 'PAT10001', 'PAT10002', 'ACC0001', '19580214', '山田', 'WELBY']) {
    t.false(log.includes(phi), `the log contains ${phi}`);
  }
});

function ormFixtureWithId(id: string): string {
  return `MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125083000||ORM^O01|${id}|P|2.3.1\rPID|1||PATX^^^GENHOSP^MR||DOE^JOHN||19800101|M\rORC|NW|PLCX|FILX||SC||^^^20261125090000^^R\rOBR|1|PLCX|FILX|CTX^CT X^L||||||||||||||ACCX|RPX|SPSX||||CT|||^^^20261125090000^^R\r`;
}
