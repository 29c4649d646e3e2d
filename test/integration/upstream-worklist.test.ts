// The upstream worklist cache against a real upstream Modality Worklist SCP: DCMTK wlmscpfs serving .wl
// files as the RIS's own MWL SCP; the box pulls, merges and serves the items to DCMTK findscu as CT01.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findscu } from '../support/dicom-peers.ts';
import { fixture, mllpSend, msa } from '../support/hl7-peers.ts';
import { PEERS } from '../support/paths.ts';
import { freePort, run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { whenMet, needsCommand } from '../support/preconditions.ts';
import { startOrthanc } from '../support/orthanc.ts';
import { waitFor } from '../support/wait.ts';
import { removeWorklistFile, writeWorklistFile, type WorklistFileItem } from '../support/worklist-files.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let wlPort: number;
let wlPid = '';
let wlDir: string;

const REMOVE_AFTER_MS = 3000;
/** The site of the outage test pulls this often; the others only when the test asks (and once at start). */
const SHORT_INTERVAL_MS = 1500;
const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
const item = (n: number, over: Partial<WorklistFileItem> = {}): WorklistFileItem => ({
  accessionNumber: `UPACC${n}`,
  spsId: `UPSPS${n}`,
  patientName: `UPSTREAM^PATIENT${n}`,
  patientId: `UPPID${n}`,
  startDate: today,
  startTime: `1${n}0000`,
  status: 'SCHEDULED',
  ...over,
});

async function startWlmscpfs(): Promise<void> {
  const r = await run('bash', [`${PEERS}/dicom/scp-start.sh`, 'wlmscpfs', String(wlPort), join(site.dir, 'wl')], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`wlmscpfs: ${r.stderr}`);
  wlPid = r.stdout.trim().split('\n').pop() ?? '';
}

async function stopWlmscpfs(): Promise<void> {
  if (wlPid !== '') await run('bash', [`${PEERS}/lib/stop.sh`, wlPid]);
  wlPid = '';
}

const edgectl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), [...args, '--config', site.configFile], { timeoutMs: 60_000 });

async function importNow(dryRun = false): Promise<{ code: number | null; body: any; stderr: string }> {
  const r = await edgectl('worklist', 'import', '--json', ...(dryRun ? ['--dry-run'] : []));
  return { code: r.code, body: r.code === 0 ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

const ct01 = () => {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  return { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert };
};

async function ctWorklist(): Promise<Map<string, Record<string, string>>> {
  const r = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: ct01(),
    keys: [
      'PatientName',
      'PatientID',
      'AccessionNumber',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus',
    ],
  });
  if (r.finalStatus !== 'Success') throw new Error(`findscu: ${r.stdout}${r.stderr}`);
  return new Map(r.responses.map((x) => [x['AccessionNumber'] ?? '', x]));
}

const mwlConfig = (intervalMs: number) => ({
  host: '127.0.0.1',
  port: wlPort,
  aeTitle: 'RISMWL',
  tls: false,
  intervalMs,
  removeAfterMs: REMOVE_AFTER_MS,
  responseTimeoutMs: 5000,
  connectTimeoutMs: 2000,
});

const ready = whenMet(needsCommand('wlmscpfs', 'dump2dcm', 'findscu'));

test.before(async () => {
  wlPort = await freePort();
  site = await createSite((c) => (c['upstream'].mwl = mwlConfig(3_600_000)));
  wlDir = join(site.dir, 'wl', 'RISMWL');
  for (const n of [1, 2, 3]) await writeWorklistFile(wlDir, `item${n}`, item(n));
  await writeFile(join(wlDir, 'lockfile'), '');
  await startWlmscpfs();
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await stopWlmscpfs();
  await site?.cleanup();
});

ready.serial('pulled items appear on the worklist for findscu, and a second import changes nothing', async (t) => {
  const first = await importNow();
  t.is(first.code, 0, first.stderr);
  // The first pull at start may have merged them already: together they created three.
  const wl = await ctWorklist();
  for (const n of [1, 2, 3]) {
    const got = wl.get(`UPACC${n}`);
    t.truthy(got, `UPACC${n} is on the worklist`);
    t.is(got?.['PatientName'], `UPSTREAM^PATIENT${n}`);
    t.is(got?.['ScheduledProcedureStepID'], `UPSPS${n}`);
    t.is(got?.['ScheduledProcedureStepStatus'], 'SCHEDULED');
  }
  const again = await importNow();
  t.is(again.code, 0);
  t.like(again.body.counts, { created: 0, updated: 0, removed: 0, unchanged: 3 });
  t.true(again.body.complete);
});

ready.serial(
  'dry run reports the change and changes nothing; the import then updates, and a removed item leaves after the delay',
  async (t) => {
    await writeWorklistFile(wlDir, 'item2', item(2, { patientName: 'UPSTREAM^RENAMED2', status: 'ARRIVED' }));
    await removeWorklistFile(wlDir, 'item3');
    const dry = await importNow(true);
    t.is(dry.code, 0, dry.stderr);
    t.true(dry.body.dryRun);
    t.like(dry.body.counts, { created: 0, updated: 1, removed: 0, pendingRemoval: 1, unchanged: 1 });
    const before = await ctWorklist();
    t.is(before.get('UPACC2')?.['PatientName'], 'UPSTREAM^PATIENT2', 'the dry run changed nothing');
    t.truthy(before.get('UPACC3'));

    const text = await edgectl('worklist', 'import');
    t.is(text.code, 0, text.stderr);
    t.regex(text.stdout, /created 0, updated 1, removed 0/);
    const after = await ctWorklist();
    t.is(after.get('UPACC2')?.['PatientName'], 'UPSTREAM^RENAMED2');
    t.is(after.get('UPACC2')?.['ScheduledProcedureStepStatus'], 'ARRIVED');
    t.truthy(after.get('UPACC3'), 'a vanished item stays until the delay has passed');

    await new Promise((r) => setTimeout(r, REMOVE_AFTER_MS + 200));
    const later = await importNow();
    t.is(later.code, 0);
    t.is(later.body.counts.pendingRemoval, 0);
    const gone = await ctWorklist();
    t.falsy(gone.get('UPACC3'), 'removed after the delay');
    t.truthy(gone.get('UPACC1'));
  },
);

ready.serial('a duplicated or unrepresentable answer changes nothing it should not', async (t) => {
  // The same item twice (identical): nothing changes. The same key with other content: both refused,
  // the held item kept. A bad date and an unknown step status: skipped and reported, never half-stored.
  await writeWorklistFile(wlDir, 'item1-copy', item(1));
  await writeWorklistFile(wlDir, 'item2-other', item(2, { patientName: 'SOMEONE^ELSE' }));
  await writeWorklistFile(wlDir, 'bad-date', item(7, { birthDate: '1980-01-01' }));
  await writeWorklistFile(wlDir, 'bad-status', item(8, { status: 'PAUSED' }));
  const r = await importNow();
  t.is(r.code, 0, r.stderr);
  t.like(r.body.counts, { created: 0, updated: 0, removed: 0, skipped: 3 });
  const problems = (r.body.skipped as Array<{ problem: string; attribute: string; accessionNumber: string }>).map(
    (s) => `${s.accessionNumber} ${s.attribute} ${s.problem}`,
  );
  t.true(problems.includes('UPACC2 AccessionNumber+ScheduledProcedureStepID conflicting-duplicates'), problems.join('; '));
  t.true(problems.includes('UPACC7 PatientBirthDate bad-date'), problems.join('; '));
  t.true(problems.includes('UPACC8 ScheduledProcedureStepStatus unknown-status'), problems.join('; '));
  const wl = await ctWorklist();
  t.is(wl.get('UPACC2')?.['PatientName'], 'UPSTREAM^RENAMED2', 'the held item is kept as it was');
  t.falsy(wl.get('UPACC7'));
  t.falsy(wl.get('UPACC8'));
  for (const f of ['item1-copy', 'item2-other', 'bad-date', 'bad-status']) await removeWorklistFile(wlDir, f);
});

ready.serial('an order from HL7 takes precedence over a pulled item with the same accession and step', async (t) => {
  // orm-o01-new-ct.hl7 is accession ACC0001, step SPS0001 for patient PAT10001.
  await writeWorklistFile(wlDir, 'shadow', item(9, { accessionNumber: 'ACC0001', spsId: 'SPS0001', patientName: 'PULLED^VERSION' }));
  const pulled = await importNow();
  t.is(pulled.body.counts.created, 1);
  t.is((await ctWorklist()).get('ACC0001')?.['PatientName'], 'PULLED^VERSION');
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
  const acks = await mllpSend(daemon.ports.hl7, ris, [await fixture('orm-o01-new-ct.hl7')]);
  t.deepEqual(acks.map(msa), ['AA']);
  const r = await findscu({ port: daemon.ports.dicomTls, callingAe: 'CT01', tls: ct01(), keys: ['PatientName', 'AccessionNumber'] });
  const acc1 = r.responses.filter((x) => x['AccessionNumber'] === 'ACC0001');
  t.is(acc1.length, 1, 'one item for the key');
  t.is(acc1[0]?.['PatientName'], 'MÜLLER^JÜRGEN^K');
  const again = await importNow();
  t.like(again.body.counts, { created: 0, shadowed: 1 });
  t.is((await ctWorklist()).get('ACC0001')?.['PatientName'], 'MÜLLER^JÜRGEN^K');
  await removeWorklistFile(wlDir, 'shadow');
});

ready.serial(
  'upstream down: the cache is served, the import fails with the reason, the age alarm fires; back up: fresh again',
  async (t) => {
    // A second box on the same provider, pulling every SHORT_INTERVAL_MS.
    const other = await createSite((c) => {
      c['upstream'].mwl = mwlConfig(SHORT_INTERVAL_MS);
      c['dicom'].aeTitle = 'EDGE';
    });
    const box = await Daemon.start(other.configFile);
    const ctl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), [...args, '--config', other.configFile], { timeoutMs: 60_000 });
    const worklist = async () => {
      const m = other.modalities.find((x) => x.aeTitle === 'CT01')!;
      const r = await findscu({
        port: box.ports.dicomTls,
        callingAe: 'CT01',
        tls: { certFile: m.certFile!, keyFile: m.keyFile!, caFile: other.pki.caCert },
        keys: ['PatientName', 'AccessionNumber'],
      });
      return new Set(r.responses.map((x) => x['AccessionNumber']));
    };
    try {
      t.true(await waitFor(async () => (await worklist()).has('UPACC1'), 15_000), 'pulled at start');
      await stopWlmscpfs();
      const failed = await ctl('worklist', 'import');
      t.is(failed.code, 1);
      t.regex(failed.stderr, /EDGE_MWL_SCU_FAILED|EDGE_DICOM_TIMEOUT/);
      t.true((await worklist()).has('UPACC1'), 'nothing lost');
      t.true(
        await waitFor(() => box.process.events('worklist.upstream-stale').length > 0, 4 * SHORT_INTERVAL_MS + 15_000),
        'the age alarm fired',
      );
      const status = await ctl('worklist', 'status', '--json');
      t.true(JSON.parse(status.stdout).stale);
      const health = await ctl('status', '--json');
      t.regex(health.stdout, /upstream worklist cache \d+ s old \(alarm above/);
      const served = await worklist();
      t.true(served.has('UPACC1') && served.has('UPACC2'), 'still served while stale');

      await startWlmscpfs();
      t.true(await waitFor(() => box.process.events('worklist.upstream-fresh').length > 0, 4 * SHORT_INTERVAL_MS + 15_000), 'fresh again');
      t.false(JSON.parse((await ctl('worklist', 'status', '--json')).stdout).stale);
    } finally {
      await box.stop();
      await other.cleanup();
    }
  },
);

whenMet(needsCommand('Orthanc', 'dump2dcm', 'findscu')).serial(
  "Orthanc's worklist plugin as the provider: its items reach findscu through the box, a removed one leaves",
  async (t) => {
    const [http, dicom] = [await freePort(), await freePort()];
    const orthancDir = join(site.dir, 'orthanc');
    const worklists = join(orthancDir, 'worklists');
    await writeWorklistFile(worklists, 'o1', item(31, { accessionNumber: 'ORTACC1', spsId: 'ORTSPS1', startTime: '100000' }));
    await writeWorklistFile(
      worklists,
      'o2',
      item(32, { accessionNumber: 'ORTACC2', spsId: 'ORTSPS2', startTime: '103000', status: 'READY' }),
    );
    const orthanc = await startOrthanc(orthancDir, http, dicom, { worklists: true });
    const other = await createSite((c) => {
      c['upstream'].mwl = { ...mwlConfig(3_600_000), port: dicom, aeTitle: 'ORTHANC', removeAfterMs: 0 };
    });
    const box = await Daemon.start(other.configFile);
    const ctl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), [...args, '--config', other.configFile], { timeoutMs: 60_000 });
    const worklist = async () => {
      const m = other.modalities.find((x) => x.aeTitle === 'CT01')!;
      const r = await findscu({
        port: box.ports.dicomTls,
        callingAe: 'CT01',
        tls: { certFile: m.certFile!, keyFile: m.keyFile!, caFile: other.pki.caCert },
        keys: ['AccessionNumber', 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus'],
      });
      return new Map(r.responses.map((x) => [x['AccessionNumber'], x['ScheduledProcedureStepStatus']]));
    };
    try {
      const first = await ctl('worklist', 'import', '--json');
      t.is(first.code, 0, first.stderr);
      t.true(JSON.parse(first.stdout).complete);
      const wl = await worklist();
      t.is(wl.get('ORTACC1'), 'SCHEDULED');
      t.is(wl.get('ORTACC2'), 'READY');
      await removeWorklistFile(worklists, 'o2');
      const second = await ctl('worklist', 'import', '--json');
      t.like(JSON.parse(second.stdout).counts, { removed: 1, unchanged: 1 });
      const after = await worklist();
      t.true(after.has('ORTACC1'));
      t.false(after.has('ORTACC2'));
    } finally {
      await box.stop();
      await other.cleanup();
      await orthanc.stop();
    }
  },
);
