// One accession followed through the audit chain, against real peers: the RIS (MllpTlsClient) sends the
// order, findscu (DCMTK) queries the worklist by accession, dcmjs-dimse sends MPPS IN PROGRESS then
// COMPLETED, python's MLLP server behind socat TLS takes the status messages, storescu (DCMTK) stores an
// image of the study and Orthanc (the PACS) receives it. The chain, read from the store after the daemon
// stopped, holds order → query → MPPS → status → image → forward for that accession and patient, with
// the RIS's MSH-10 and the status messages' MSH-10 as control ids; the log names none of it.
import test from 'ava';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditMessageXml } from '../../daemon/audit/audit-message-xml.ts';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { loadConfig } from '../../daemon/config/index.ts';
import { decodeDataSet } from '../../daemon/dicom/dataset-codec.ts';
import { textOf } from '../../daemon/core/dataset.ts';
import { Tag } from '../../daemon/core/data-dictionary.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { findscu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { RisReceiver, createAttributes, finalAttributes, risUpstreamConfig, sendMpps, uid } from '../support/mpps-peers.ts';
import { eventually } from '../support/wait.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { type Orthanc, startOrthanc } from '../support/orthanc.ts';

const N = 7301;
const ACCESSION = `ACC${N}`;
const PATIENT = { id: `PID${N}`, issuer: 'GENHOSP' };
const ORDER_CONTROL_ID = 'TRACE-ORM-0001';

async function hasInstance(orthanc: Orthanc, sopInstanceUid: string): Promise<boolean> {
  return (await orthanc.rest<unknown[]>('/tools/find', { Level: 'Instance', Query: { SOPInstanceUID: sopInstanceUid } })).length === 1;
}

/** One CT image of the ordered study, written by dump2dcm. */
async function ctImage(dir: string, studyInstanceUid: string, sopInstanceUid: string): Promise<string> {
  const dump = join(dir, 'image.dump');
  const file = join(dir, 'image.dcm');
  await writeFile(join(dir, 'pixels.raw'), Buffer.alloc(16 * 16 * 2));
  await writeFile(
    dump,
    [
      '(0008,0016) UI =CTImageStorage',
      `(0008,0018) UI [${sopInstanceUid}]`,
      `(0008,0050) SH [${ACCESSION}]`,
      '(0008,0060) CS [CT]',
      `(0010,0010) PN [TEST^PATIENT${N}]`,
      `(0010,0020) LO [${PATIENT.id}]`,
      `(0010,0021) LO [${PATIENT.issuer}]`,
      `(0020,000d) UI [${studyInstanceUid}]`,
      `(0020,000e) UI [${uid()}]`,
      '(0028,0002) US 1',
      '(0028,0004) CS [MONOCHROME2]',
      '(0028,0010) US 16',
      '(0028,0011) US 16',
      '(0028,0100) US 16',
      '(0028,0101) US 16',
      '(0028,0102) US 15',
      '(0028,0103) US 0',
      `(7fe0,0010) OW =${join(dir, 'pixels.raw')}`,
    ].join('\n'),
  );
  const r = await run('dump2dcm', ['+te', dump, file], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`dump2dcm: ${r.stderr}`);
  return file;
}

test('one accession traced through the audit chain: order → query → MPPS → status → image → forward', async (t) => {
  const site = await createSite((c) => {
    c['upstream'] = {
      ris: risUpstreamConfig(),
    };
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 1000 };
  });
  const work = join(site.dir, 'trace');
  await mkdir(work, { recursive: true });
  const ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
  const orthanc = await startOrthanc(join(work, 'orthanc'), await freePort(), await freePort());
  let daemon: Daemon | undefined;
  t.teardown(async () => {
    await daemon?.stop();
    await ris.stop();
    await orthanc.stop();
    await site.cleanup();
  });
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['upstream'].ris.port = ris.port;
  config['upstream'].pacs = {
    host: '127.0.0.1',
    port: orthanc.dicom,
    aeTitle: 'ORTHANC',
    tls: false,
    connectTimeoutMs: 2000,
    batchSize: 10,
    maxAssociations: 1,
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
  daemon = await Daemon.start(site.configFile);
  const boxAe = (daemon.process.events('edged.ready')[0]?.['aeTitle'] as string | undefined) ?? 'EDGE';
  const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
  const ct01Tls = { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert };

  // Order (RIS → box).
  const hl7 = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  t.is(msa(await hl7.send(ormNew(N, { controlId: ORDER_CONTROL_ID }))), 'AA');
  hl7.close();

  // Worklist query by the scanned accession (modality → box).
  const wl = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    calledAe: boxAe,
    tls: ct01Tls,
    keys: [`AccessionNumber=${ACCESSION}`, 'PatientID', 'IssuerOfPatientID', 'StudyInstanceUID'],
  });
  t.is(wl.finalStatus, 'Success', wl.stdout + wl.stderr);
  t.is(wl.responses.length, 1);
  const studyInstanceUid = wl.responses[0]!['StudyInstanceUID']!;
  t.regex(studyInstanceUid, /^2\.25\.\d+$/);

  // MPPS IN PROGRESS then COMPLETED; the RIS gets IP and CM.
  const pps = uid();
  const mpps = await sendMpps({ port: daemon.ports.dicomTls, callingAeTitle: 'CT01', calledAeTitle: boxAe, tls: ct01Tls }, [
    { op: 'create', sopInstanceUid: pps, attributes: createAttributes(N) },
    { op: 'set', sopInstanceUid: pps, attributes: finalAttributes('COMPLETED', 1) },
  ]);
  t.deepEqual(
    mpps.results.map((r) => r.status),
    [0, 0],
    mpps.error,
  );

  // The image of the study (modality → box → PACS).
  const sop = uid();
  const image = await ctImage(work, studyInstanceUid, sop);
  const stored = await run(
    'storescu',
    [
      '-aet',
      'CT01',
      '-aec',
      boxAe,
      '+tls',
      ct01Tls.keyFile,
      ct01Tls.certFile,
      '+cf',
      ct01Tls.caFile,
      '127.0.0.1',
      String(daemon.ports.dicomTls),
      image,
    ],
    {
      timeoutMs: 30_000,
      env: { ...process.env, TCP_NODELAY: '1' },
    },
  );
  t.is(stored.code, 0, stored.stderr);

  const statusMessages = await eventually(
    async () => {
      const m = (await ris.messages()).filter((x) => x.accession === ACCESSION);
      return m.length >= 2 ? m : undefined;
    },
    20_000,
    'IP and CM at the RIS',
  );
  t.deepEqual(
    statusMessages.map((m) => m.status),
    ['IP', 'CM'],
  );
  await eventually(async () => ((await hasInstance(orthanc, sop)) ? true : undefined), 20_000, 'the image at the PACS');
  // The forward's audit record follows the PACS's confirmation: wait for the spool to empty.
  await daemon.process.waitForLine(
    (l) => l.includes('"event":"outbox.batch"') && l.includes('"destination":"pacs"') && l.includes('"delivered":1'),
    20_000,
  );

  await daemon.stop();
  const logs = daemon.process.lines.join('\n');
  daemon = undefined;
  t.false(
    logs.includes(ACCESSION) || logs.includes(PATIENT.id) || logs.includes(studyInstanceUid),
    'no accession, patient id or study UID in the log',
  );

  // Read the chain with the box's own key.
  const { config: edge } = loadConfig(site.configFile);
  if (edge.keys.backend !== 'file') throw new Error('the dev site uses the file key backend');
  const store = await openStore({
    dataDir: edge.dataDir,
    keySource: new FileKeySource(edge.keys.file.path),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const records: AuditRecord[] = [];
  try {
    for await (const r of store.audit.read(1)) records.push(JSON.parse(r.line) as AuditRecord);
  } finally {
    await store.close();
  }
  const trail = records.map((r) => r.event).filter((e) => e.accessionNumber === ACCESSION);
  const ofType = (type: string): AuditEvent[] => trail.filter((e) => e.type === type);
  t.log(trail.map((e) => `${e.type} ${e.eventId} ${e.action} ${e.controlId ?? ''}`).join('\n'));

  // Order → query → MPPS → status → image → forward, in that order.
  const firstSeen = [
    'hl7.order-committed',
    'worklist.query',
    'mpps.created',
    'mpps.updated',
    'hl7.status-sent',
    'dicom.instance-stored',
    'pacs.instance-forwarded',
  ].map((type) => ({ type, at: trail.findIndex((e) => e.type === type) }));
  for (const { type, at } of firstSeen) t.true(at >= 0, `${type} names the accession`);
  const orderOf = (type: string): number => firstSeen.find((x) => x.type === type)!.at;
  t.true(orderOf('hl7.order-committed') < orderOf('worklist.query'));
  t.true(orderOf('worklist.query') < orderOf('mpps.created'));
  t.true(orderOf('mpps.created') < orderOf('mpps.updated'));
  t.true(orderOf('mpps.created') < orderOf('hl7.status-sent'));
  t.true(orderOf('dicom.instance-stored') < orderOf('pacs.instance-forwarded'));

  // The same patient and study everywhere.
  for (const e of trail) {
    t.deepEqual(e.patient, PATIENT, `${e.type}: patient`);
    t.is(e.studyInstanceUid, studyInstanceUid, `${e.type}: study`);
  }

  // The order: a Procedure Record created by the RIS's message, with its MSH-10 and source address.
  const [order] = ofType('hl7.order-committed');
  t.is(order?.eventId, 'ProcedureRecord');
  t.is(order?.action, 'C');
  t.is(order?.controlId, ORDER_CONTROL_ID);
  t.is(order?.participants[0]?.kind, 'hl7');
  t.is(order?.participants[0]?.address?.replace(/^::ffff:/, ''), '127.0.0.1');
  t.regex(order?.detail ?? '', /ORC-1 NW placer PLC7301/);

  // The query: the identifier as the modality sent it, decodable, with the accession key.
  const [query] = ofType('worklist.query');
  t.is(query?.eventId, 'Query');
  t.is(query?.query?.sopClassUid, '1.2.840.10008.5.1.4.31');
  const identifier = decodeDataSet(Buffer.from(query!.query!.dataSet, 'base64'), query!.query!.transferSyntaxUid);
  t.is(textOf(identifier, Tag.AccessionNumber)?.trim(), ACCESSION);
  const queryRecord = records.find((r) => r.event === query)!;
  const xml = auditMessageXml(queryRecord, 'edge-test');
  t.true(xml.includes(`<ParticipantObjectQuery>${query!.query!.dataSet}</ParticipantObjectQuery>`));
  t.regex(xml, /ParticipantObjectID="1\.2\.840\.10008\.5\.1\.4\.31"[^>]*><ParticipantObjectIDTypeCode csd-code="110181"/);
  t.is(query?.participants[0]?.id, 'CT01');

  // MPPS and status: the DICOM association, then the HL7 control ids of the messages the RIS received.
  t.true(ofType('mpps.created').every((e) => e.participants[0]?.id === 'CT01' && e.controlId !== undefined));
  t.deepEqual(
    ofType('hl7.status-sent').map((e) => e.controlId),
    statusMessages.map((m) => m.controlId),
  );
  t.deepEqual(
    ofType('hl7.status-sent').map((e) => /ORC-5 (\w+)/.exec(e.detail ?? '')?.[1]),
    ['IP', 'CM'],
  );

  // Image in and out.
  t.is(ofType('dicom.instance-stored')[0]?.participants[0]?.id, 'CT01');
  t.is(ofType('pacs.instance-forwarded')[0]?.participants[1]?.id, 'ORTHANC');
  await rm(work, { recursive: true, force: true });
});
