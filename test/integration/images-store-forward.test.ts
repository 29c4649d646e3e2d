// Images in and forward, against real peers: storescu (DCMTK) as the modality over TLS into the daemon,
// Orthanc as the PACS. Outage: the PACS is down while 500 instances arrive; once it is back every one of
// them is in Orthanc (by SOP Instance UID, through its REST API). Crash: kill -9 during store-and-forward
// cycles loses no acknowledged instance.
import test from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storescu } from '../support/dicom-peers.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { PEERS } from '../support/paths.ts';
import { type Orthanc, startOrthanc } from '../support/orthanc.ts';
import { waitFor } from '../support/wait.ts';

let work = '';
let files: string[] = [];
const uidOf = new Map<string, string>();

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-images-'));
  const r = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '500', '32x32'], { timeoutMs: 110_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  files = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f)).sort();
  for (const f of files) {
    const b = await readFile(f);
    const m = /\x08\x00\x18\x00UI(..)/s.exec(b.toString('latin1'));
    const len = m === null ? 0 : b.readUInt16LE(m.index + 6);
    uidOf.set(f, b.toString('latin1', m!.index + 8, m!.index + 8 + len).replace(/\0+$/, ''));
  }
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** storescu over TLS as CT01; returns the files the daemon acknowledged with Success. */
async function sendTls(
  site: Awaited<ReturnType<typeof createSite>>,
  port: number,
  paths: string[],
  timeoutMs = 100_000,
): Promise<Set<string>> {
  return (await storescu(site, port, paths, { timeoutMs })).stored;
}

async function siteWithPacs(pacsPort: number) {
  return createSite((c) => {
    c['upstream'] = {
      pacs: {
        host: '127.0.0.1',
        port: pacsPort,
        aeTitle: 'ORTHANC',
        tls: false,
        connectTimeoutMs: 1000,
        batchSize: 50,
        maxAssociations: 4,
      },
    };
    c['outbox'] = { initialDelayMs: 200, maxDelayMs: 1000, jitterPercent: 20 };
  });
}

test.serial('outage: 500 instances arrive while Orthanc is down; after it is back every one is in Orthanc', async (t) => {
  t.timeout(115_000);
  const http = await freePort();
  const dicom = await freePort();
  const site = await siteWithPacs(dicom);
  const daemon = await Daemon.start(site.configFile);
  let orthanc: Orthanc | undefined;
  try {
    const acked = await sendTls(site, daemon.ports.dicomTls, files);
    t.is(acked.size, files.length, 'every instance acknowledged while the PACS is down');
    orthanc = await startOrthanc(join(work, 'orthanc-outage'), http, dicom);
    const want = [...acked].map((f) => uidOf.get(f)!);
    const all = await waitFor(async () => {
      const have = await orthanc!.sopInstanceUids();
      return want.every((u) => have.has(u));
    }, 60_000);
    const have = await orthanc.sopInstanceUids();
    t.true(all, `${want.filter((u) => !have.has(u)).length} instance(s) missing in Orthanc`);
    // Deleted from the spool only after the PACS confirmed each one.
    t.true(await waitFor(async () => (await readdir(join(site.dir, 'data', 'spool')).catch(() => ['?'])).length === 0, 10_000));
  } finally {
    await daemon.stop();
    await orthanc?.stop();
    await site.cleanup();
  }
});

test.serial('crash: kill -9 during store-and-forward cycles loses no acknowledged instance', async (t) => {
  t.timeout(115_000);
  const http = await freePort();
  const dicom = await freePort();
  const site = await siteWithPacs(dicom);
  const orthanc = await startOrthanc(join(work, 'orthanc-crash'), http, dicom);
  const acked = new Set<string>();
  let delivered = 0;
  try {
    const cycles = 20;
    const per = Math.floor(files.length / cycles);
    for (let cycle = 0; cycle < cycles; cycle++) {
      const daemon = await Daemon.start(site.configFile);
      const sending = sendTls(site, daemon.ports.dicomTls, files.slice(cycle * per, (cycle + 1) * per), 30_000);
      await new Promise((r) => setTimeout(r, 100 + ((cycle * 137) % 300)));
      await daemon.kill9();
      for (const f of await sending) acked.add(f);
      for (const e of daemon.process.events('outbox.batch')) delivered += Number(e['delivered'] ?? 0);
    }
    t.true(acked.size > 0, 'some instances were acknowledged before the kills');
    const daemon = await Daemon.start(site.configFile);
    try {
      const want = [...acked].map((f) => uidOf.get(f)!);
      const all = await waitFor(async () => {
        const have = await orthanc.sopInstanceUids();
        return want.every((u) => have.has(u));
      }, 60_000);
      const have = await orthanc.sopInstanceUids();
      t.true(all, `${want.filter((u) => !have.has(u)).length} acknowledged instance(s) missing in Orthanc`);
      await waitFor(async () => (await readdir(join(site.dir, 'data', 'spool')).catch(() => [])).length === 0, 10_000);
      for (const e of daemon.process.events('outbox.batch')) delivered += Number(e['delivered'] ?? 0);
      t.log(
        `${acked.size} acknowledged over ${cycles} kill -9 cycles; ${have.size} in Orthanc; ${Math.max(0, delivered - have.size)} re-sent (duplicates seen upstream)`,
      );
    } finally {
      await daemon.stop();
    }
  } finally {
    await orthanc.stop();
    await site.cleanup();
  }
});
