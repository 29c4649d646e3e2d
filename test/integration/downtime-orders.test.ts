// Downtime order entry against the real daemon: `edgectl order add` through the control socket, the
// order on the worklist at once for DCMTK findscu (marked downtime in the step's comments), every
// problem named by field, the local accession range, who and why in the audit trail, and an order
// acknowledged before a kill -9 still there after it.
import test from 'ava';
import { join } from 'node:path';
import { findscu } from '../support/dicom-peers.ts';
import { siteAuditEvents } from '../support/audit-store.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;

test.before(async () => {
  site = await createSite((c) => {
    c['downtime'] = { accessionNumbers: { prefix: 'DT', first: 41, last: 43, digits: 6 } };
  });
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

const edgectl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), [...args, '--config', site.configFile], { timeoutMs: 60_000 });
const today = new Date().toISOString().slice(0, 10);
const order = (over: Record<string, string> = {}): string[] => {
  const o: Record<string, string> = {
    'patient-name': 'DOWN^TIME',
    'birth-date': '19700101',
    sex: 'F',
    procedure: 'CT HEAD',
    modality: 'CT',
    station: 'CT01',
    at: `${today}T10:30`,
    reason: 'RIS down since 08:00, ticket 4711',
    ...over,
  };
  return Object.entries(o).flatMap(([k, v]) => [`--${k}`, v]);
};

async function ctWorklist(): Promise<Array<Record<string, string>>> {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  const r = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    tls: { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert },
    keys: [
      'PatientName',
      'PatientID',
      'AccessionNumber',
      'StudyInstanceUID',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime',
      'ScheduledProcedureStepSequence[0].CommentsOnTheScheduledProcedureStep',
    ],
  });
  if (r.finalStatus !== 'Success') throw new Error(r.stdout + r.stderr);
  return r.responses;
}

test.serial('an order entered with a temporary ID is on the worklist at once, marked downtime, accession from the range', async (t) => {
  const r = await edgectl('order', 'add', ...order(), '--temporary-id', '--json');
  t.is(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  t.is(o.accessionNumber, 'DT000041');
  t.is(o.patient.id, 'TMP000041');
  t.true(o.temporaryPatientId);
  const item = (await ctWorklist()).find((x) => x['AccessionNumber'] === 'DT000041');
  t.truthy(item);
  t.is(item?.['PatientName'], 'DOWN^TIME');
  t.is(item?.['PatientID'], 'TMP000041');
  t.is(item?.['ScheduledProcedureStepStartTime'], '103000');
  t.is(item?.['ScheduledProcedureStepID'], 'DT000041-1');
  t.regex(
    item?.['CommentsOnTheScheduledProcedureStep'] ?? '',
    /^DOWNTIME ORDER entered .* by \S+; to be reconciled with the RIS; TEMPORARY PATIENT ID/,
  );
  t.regex(item?.['StudyInstanceUID'] ?? '', /^2\.25\.\d+$/);
});

test.serial('a bad order is refused naming each field, and nothing is stored', async (t) => {
  const r = await edgectl('order', 'add', ...order({ 'birth-date': '1970-13-01', sex: 'X', at: 'tomorrow' }), '--patient-id', 'P1');
  t.is(r.code, 1);
  t.regex(r.stderr, /EDGE_DOWNTIME_ORDER_INVALID/);
  t.regex(r.stderr, /birthDate must be a date YYYYMMDD/);
  t.regex(r.stderr, /sex must be M, F or O/);
  t.regex(r.stderr, /scheduledAt must be a local date and time/);
  const list = JSON.parse((await edgectl('order', 'list', '--json')).stdout);
  t.is(list.orders.length, 1);
});

test.serial('the local range is used up after its last number; an acknowledged order survives kill -9', async (t) => {
  const second = await edgectl('order', 'add', ...order({ 'patient-name': 'KNOWN^PATIENT' }), '--patient-id', 'PID4242', '--json');
  t.is(second.code, 0, second.stderr);
  t.is(JSON.parse(second.stdout).accessionNumber, 'DT000042');
  t.is(JSON.parse(second.stdout).patient.id, 'PID4242');
  const third = await edgectl('order', 'add', ...order(), '--temporary-id', '--json');
  t.is(JSON.parse(third.stdout).accessionNumber, 'DT000043');
  await daemon.kill9();
  daemon = await Daemon.start(site.configFile);
  const fourth = await edgectl('order', 'add', ...order(), '--temporary-id');
  t.is(fourth.code, 1);
  t.regex(fourth.stderr, /EDGE_DOWNTIME_RANGE_EXHAUSTED.*downtime\.accessionNumbers\.last/);
  const list = JSON.parse((await edgectl('order', 'list', '--json')).stdout);
  t.deepEqual(
    list.orders.map((o: { accessionNumber: string }) => o.accessionNumber),
    ['DT000041', 'DT000042', 'DT000043'],
  );
  const accessions = (await ctWorklist()).map((x) => x['AccessionNumber']).filter((a) => a?.startsWith('DT'));
  t.deepEqual(accessions.sort(), ['DT000041', 'DT000042', 'DT000043']);
});

test.serial('who entered each order and why is in the audit trail', async (t) => {
  await daemon.stop();
  const events = (await siteAuditEvents(site.dir)).filter((e) => e.type === 'order.downtime-entered');
  t.is(events.length, 3);
  const first = events[0]!;
  t.is(first.accessionNumber, 'DT000041');
  t.deepEqual(first.patient, { id: 'TMP000041', issuer: '' });
  t.true(first.participants.some((p) => p.kind === 'user' && p.requestor));
  t.regex(first.detail ?? '', /temporary patient ID\); reason: RIS down since 08:00, ticket 4711/);
  daemon = await Daemon.start(site.configFile);
});
