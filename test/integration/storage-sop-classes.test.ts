// The SOP classes CT, X-ray and nuclear medicine consoles send beside their images (dose reports, key
// object selections, PDFs, SR, enhanced and legacy-converted multi-frame, tomosynthesis) are accepted with
// the default configuration, stored by DCMTK's storescu over TLS and forwarded to Orthanc.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storescu } from '../support/dicom-peers.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { startOrthanc } from '../support/orthanc.ts';
import { waitFor } from '../support/wait.ts';

/** Classes the default list refused before it became the whole of PS3.4 Annex B. */
const CLASSES: readonly (readonly [uid: string, modality: string, name: string])[] = [
  ['1.2.840.10008.5.1.4.1.1.88.67', 'SR', 'X-Ray Radiation Dose SR'],
  ['1.2.840.10008.5.1.4.1.1.88.68', 'SR', 'Radiopharmaceutical Radiation Dose SR'],
  ['1.2.840.10008.5.1.4.1.1.88.59', 'KO', 'Key Object Selection Document'],
  ['1.2.840.10008.5.1.4.1.1.104.1', 'DOC', 'Encapsulated PDF'],
  ['1.2.840.10008.5.1.4.1.1.88.33', 'SR', 'Comprehensive SR'],
  ['1.2.840.10008.5.1.4.1.1.12.1.1', 'XA', 'Enhanced XA Image'],
  ['1.2.840.10008.5.1.4.1.1.12.2.1', 'RF', 'Enhanced XRF Image'],
  ['1.2.840.10008.5.1.4.1.1.13.1.3', 'MG', 'Breast Tomosynthesis Image'],
  ['1.2.840.10008.5.1.4.1.1.2.2', 'CT', 'Legacy Converted Enhanced CT Image'],
];

const uid = (): string => `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString(10)}`;

let work = '';
const files: { path: string; sopInstanceUid: string; name: string }[] = [];

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-sop-classes-'));
  const study = uid();
  for (const [i, [sopClass, modality, name]] of CLASSES.entries()) {
    const sopInstanceUid = uid();
    const dump = [
      '(0008,0005) CS [ISO_IR 100]',
      `(0008,0016) UI [${sopClass}]`,
      `(0008,0018) UI [${sopInstanceUid}]`,
      '(0008,0020) DA [20261125]',
      '(0008,0050) SH [ACC0001]',
      `(0008,0060) CS [${modality}]`,
      '(0010,0010) PN [TEST^PATIENT]',
      '(0010,0020) LO [PAT10001]',
      `(0020,000d) UI [${study}]`,
      `(0020,000e) UI [${uid()}]`,
      `(0020,0013) IS [${i + 1}]`,
    ].join('\n');
    const dumpFile = join(work, `${i}.dump`);
    const path = join(work, `${i}.dcm`);
    await writeFile(dumpFile, `${dump}\n`);
    const r = await run('dump2dcm', ['+te', dumpFile, path], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(r.stderr);
    files.push({ path, sopInstanceUid, name });
  }
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

test('with the default SOP class list every one of them is stored and reaches Orthanc', async (t) => {
  t.timeout(90_000);
  const http = await freePort();
  const dicom = await freePort();
  const orthanc = await startOrthanc(join(work, 'orthanc'), http, dicom);
  const site = await createSite((c) => {
    c['upstream'] = { pacs: { host: '127.0.0.1', port: dicom, aeTitle: 'ORTHANC', tls: false, connectTimeoutMs: 1000 } };
    c['outbox'] = { initialDelayMs: 200, maxDelayMs: 1000, jitterPercent: 20 };
  });
  const daemon = await Daemon.start(site.configFile);
  try {
    const r = await storescu(
      site,
      daemon.ports.dicomTls,
      files.map((f) => f.path),
      { requiredContextsOnly: true },
    );
    for (const f of files) t.true(r.stored.has(f.path), `${f.name} stored (storescu: ${r.statuses.join(', ')})`);
    const arrived = await waitFor(async () => {
      const have = await orthanc.sopInstanceUids();
      return files.every((f) => have.has(f.sopInstanceUid));
    }, 45_000);
    const have = await orthanc.sopInstanceUids();
    t.true(
      arrived,
      `missing in Orthanc: ${files
        .filter((f) => !have.has(f.sopInstanceUid))
        .map((f) => f.name)
        .join(', ')}`,
    );
  } finally {
    await daemon.stop();
    await orthanc.stop();
    await site.cleanup();
  }
});
