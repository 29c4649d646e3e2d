// Demographic reconciliation on forward, against real peers: the RIS (python-hl7's mllp_send over TLS)
// orders an exam, the modality (DCMTK storescu) sends images that still carry the old name (made with
// dump2dcm, Explicit and Implicit VR LE), the RIS corrects the patient (ADT A08) and merges it into
// another record (A40), then Orthanc comes up
// and must hold the corrected values, read back through its REST API. The audit chain keeps the old and
// new values (encrypted); the daemon's log names neither.
import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { mllpSend, msa, ormNew } from '../support/hl7-peers.ts';
import { storescu } from '../support/dicom-peers.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { type Orthanc, startOrthanc } from '../support/orthanc.ts';
import { waitFor } from '../support/wait.ts';

const OLD_NAME = 'TEST^PATIENT1';
const NEW_NAME = 'CORRECTED^NAME^Q';
let work = '';

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-reconcile-'));
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** A small CT object as a modality would make it, written by dcmtk's dump2dcm. */
async function makeCt(
  name: string,
  o: { sop: string; study: string; accession: string; patientName: string; patientId: string; implicit: boolean },
): Promise<string> {
  const dir = join(work, 'dcm');
  await mkdir(dir, { recursive: true });
  const pixels = join(dir, `${name}.raw`);
  await writeFile(pixels, Buffer.alloc(64 * 64 * 2, 0x11));
  const dump = [
    '(0008,0005) CS [ISO_IR 100]',
    '(0008,0016) UI =CTImageStorage',
    `(0008,0018) UI [${o.sop}]`,
    '(0008,0020) DA [20261125]',
    `(0008,0050) SH [${o.accession}]`,
    '(0008,0060) CS [CT]',
    `(0010,0010) PN [${o.patientName}]`,
    `(0010,0020) LO [${o.patientId}]`,
    '(0010,0030) DA [19700101]',
    '(0010,0040) CS [F]',
    `(0020,000d) UI [${o.study}]`,
    `(0020,000e) UI [${o.study}.1]`,
    '(0020,0013) IS [1]',
    '(0028,0002) US 1',
    '(0028,0004) CS [MONOCHROME2]',
    '(0028,0010) US 64',
    '(0028,0011) US 64',
    '(0028,0100) US 16',
    '(0028,0101) US 16',
    '(0028,0102) US 15',
    '(0028,0103) US 0',
    `(7fe0,0010) OW =${pixels}`,
  ].join('\n');
  await writeFile(join(dir, `${name}.dump`), `${dump}\n`);
  const file = join(dir, `${name}.dcm`);
  const r = await run('dump2dcm', [o.implicit ? '+ti' : '+te', join(dir, `${name}.dump`), file], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`dump2dcm: ${r.stderr}`);
  return file;
}

/** SOP Instance UID → simplified tags of every instance Orthanc holds. */
async function instancesOf(orthanc: Orthanc): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (const id of await orthanc.rest<string[]>('/instances')) {
    const tags = await orthanc.rest<Record<string, string>>(`/instances/${id}/simplified-tags`);
    out.set(tags['SOPInstanceUID'] ?? '', tags);
  }
  return out;
}

test('A08 and A40 after the images were taken: Orthanc receives the corrected patient; the change is audited, not logged', async (t) => {
  t.timeout(110_000);
  const http = await freePort();
  const dicom = await freePort();
  const site = await createSite((c) => {
    c['upstream'] = {
      pacs: {
        host: '127.0.0.1',
        port: dicom,
        aeTitle: 'ORTHANC',
        tls: false,
        connectTimeoutMs: 1000,
        batchSize: 10,
        maxAssociations: 2,
        reconcileDemographics: true,
      },
    };
    c['outbox'] = { initialDelayMs: 200, maxDelayMs: 1000, jitterPercent: 20 };
  });
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
  const study = '1.2.826.0.1.3680043.9.7433.77.1';
  const explicitCt = await makeCt('explicit', {
    sop: `${study}.1.1`,
    study,
    accession: 'ACC1',
    patientName: OLD_NAME,
    patientId: 'PID1',
    implicit: false,
  });
  const implicitCt = await makeCt('implicit', {
    sop: `${study}.1.2`,
    study,
    accession: 'ACC1',
    patientName: OLD_NAME,
    patientId: 'PID1',
    implicit: true,
  });
  // An instance no order knows (unscheduled): forwarded as it is.
  const otherStudy = '1.2.826.0.1.3680043.9.7433.77.2';
  const unscheduled = await makeCt('unscheduled', {
    sop: `${otherStudy}.1.1`,
    study: otherStudy,
    accession: 'NOORDER',
    patientName: 'WALKIN^PAT',
    patientId: 'PID77',
    implicit: false,
  });

  const daemon = await Daemon.start(site.configFile);
  let orthanc: Orthanc | undefined;
  try {
    // The order: ACC1 for PID1^^^GENHOSP, TEST^PATIENT1, born 19700101.
    t.deepEqual((await mllpSend(daemon.ports.hl7, ris, [ormNew(1)])).map(msa), ['AA']);
    // The modality stores the images while the PACS is down (they wait in the spool).
    const store = await storescu(site, daemon.ports.dicomTls, [explicitCt, implicitCt, unscheduled]);
    t.is(store.code, 0, store.stderr);
    // The RIS corrects name and birth date (A08) after the images were taken.
    const a08 =
      [
        'MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125100000||ADT^A08|A08CTRL1|P|2.3.1',
        'EVN|A08|20261125100000',
        `PID|1||PID1^^^GENHOSP^MR||${NEW_NAME}||19700102|F`,
        'PV1|1|O|CT^^^GENHOSP',
      ].join('\r') + '\r';
    // Then merges the patient into another record (A40): the order now belongs to PID500.
    const a40 =
      [
        'MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125100500||ADT^A40|A40CTRL1|P|2.3.1',
        'EVN|A40|20261125100500',
        `PID|1||PID500^^^GENHOSP^MR||${NEW_NAME}||19700102|F`,
        'MRG|PID1^^^GENHOSP^MR',
      ].join('\r') + '\r';
    t.deepEqual((await mllpSend(daemon.ports.hl7, ris, [a08, a40])).map(msa), ['AA', 'AA']);

    orthanc = await startOrthanc(join(work, 'orthanc'), http, dicom);
    const sops = [`${study}.1.1`, `${study}.1.2`, `${otherStudy}.1.1`];
    t.true(
      await waitFor(async () => {
        const have = await instancesOf(orthanc!);
        return sops.every((s) => have.has(s));
      }, 60_000),
      'every instance reached Orthanc',
    );
    const have = await instancesOf(orthanc);
    for (const sop of sops.slice(0, 2)) {
      const tags = have.get(sop)!;
      t.is(tags['PatientName'], NEW_NAME, sop);
      t.is(tags['PatientBirthDate'], '19700102');
      t.is(tags['PatientID'], 'PID500');
      t.is(tags['IssuerOfPatientID'], 'GENHOSP');
      t.is(tags['AccessionNumber'], 'ACC1');
      t.is(tags['SOPInstanceUID'], sop);
      t.is(tags['StudyInstanceUID'], study);
    }
    t.is(have.get(`${otherStudy}.1.1`)?.['PatientName'], 'WALKIN^PAT', 'an instance without a linked order is not touched');
    t.true(
      await waitFor(async () => (await readdir(join(site.dir, 'data', 'spool')).catch(() => ['?'])).length === 0, 10_000),
      'spool drained',
    );

    const outcomes = daemon.process.events('reconcile.outcome');
    t.is(outcomes.filter((e) => e['outcome'] === 'rewritten').length, 2, JSON.stringify(outcomes));
    t.is(outcomes[0]?.['attributes'], 'PatientName,PatientID,IssuerOfPatientID,PatientBirthDate');
    const log = daemon.process.lines.join('\n') + daemon.process.stderr;
    for (const secret of ['CORRECTED', 'PATIENT1', 'WALKIN', '19700102', 'PID1', 'PID500', 'ACC1'])
      t.false(log.includes(secret), `log names ${secret}`);
  } finally {
    await daemon.stop();
    await orthanc?.stop();
  }

  // The audit chain (encrypted at rest) holds one reconciliation record per instance, with the values.
  const config = JSON.parse(await (await import('node:fs/promises')).readFile(site.configFile, 'utf8')) as {
    keys: { file: { path: string } };
    dataDir: string;
  };
  const keyPath = config.keys.file.path.startsWith('/') ? config.keys.file.path : join(site.dir, config.keys.file.path);
  const dataDir = config.dataDir.startsWith('/') ? config.dataDir : join(site.dir, config.dataDir);
  const storeDb = await openStore({ dataDir, keySource: new FileKeySource(keyPath), replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    const reconciled: AuditRecord[] = [];
    for await (const r of storeDb.audit.records() as AsyncIterable<AuditRecord>)
      if (r.event.type === 'pacs.demographics-reconciled') reconciled.push(r);
    t.is(reconciled.length, 2);
    const e = reconciled[0]!.event;
    t.regex(e.detail ?? '', new RegExp(`SOP Instance UID ${study.replaceAll('.', '\\.')}\\.1\\.[12]`));
    t.notRegex(e.detail ?? '', /CORRECTED|PATIENT1/);
    t.deepEqual(e.changes, [
      { attribute: 'PatientName', old: OLD_NAME, new: NEW_NAME },
      { attribute: 'PatientID', old: 'PID1', new: 'PID500' },
      { attribute: 'IssuerOfPatientID', old: '', new: 'GENHOSP' },
      { attribute: 'PatientBirthDate', old: '19700101', new: '19700102' },
    ]);
    t.deepEqual(e.patient, { id: 'PID500', issuer: 'GENHOSP' });
  } finally {
    await storeDb.close();
    await site.cleanup();
  }
});
