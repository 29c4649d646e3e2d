// Reconciliation of downtime orders when the RIS returns, against real peers: python's MLLP ACK server
// behind socat mutual TLS as the RIS's order receiver (it gets each downtime order as ORM^O01 NW with
// the box's placer number), the RIS's own orders naming those placer numbers sent back over the box's
// HL7 listener, DCMTK findscu as CT01. One order links cleanly, one names another patient (a conflict),
// one is never answered (no-answer after the deadline), one the RIS refuses (AE); a person resolves.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findscu } from '../support/dicom-peers.ts';
import { siteAuditEvents } from '../support/audit-store.ts';
import { MllpTlsClient, msa } from '../support/hl7-peers.ts';
import { RisReceiver } from '../support/mpps-peers.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { eventually } from '../support/wait.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let ris: RisReceiver;

const DEADLINE_MS = 8000;

test.before(async () => {
  site = await createSite((c) => {
    c['upstream'] = {
      ris: {
        host: '127.0.0.1',
        port: 1,
        tls: true,
        receivingApplication: 'RIS',
        receivingFacility: 'GENHOSP',
        ackTimeoutMs: 3000,
        connectTimeoutMs: 2000,
      },
    };
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 1000 };
    c['downtime'] = { answerDeadlineMs: DEADLINE_MS };
  });
  ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
  const config = JSON.parse(await readFile(site.configFile, 'utf8'));
  config.upstream.ris.port = ris.port;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await ris?.stop();
  await site?.cleanup();
});

const edgectl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), [...args, '--config', site.configFile], { timeoutMs: 60_000 });
const today = new Date().toISOString().slice(0, 10);
const today8 = today.replaceAll('-', '');

async function addOrder(
  name: string,
  id: string | undefined,
): Promise<{ accessionNumber: string; placerOrderNumber: string; placerIssuer: string }> {
  const r = await edgectl(
    'order',
    'add',
    '--patient-name',
    name,
    ...(id === undefined ? ['--temporary-id'] : ['--patient-id', id]),
    '--birth-date',
    '19650505',
    '--sex',
    'M',
    '--procedure',
    'CT ABDOMEN',
    '--modality',
    'CT',
    '--station',
    'CT01',
    '--at',
    `${today}T11:00`,
    '--reason',
    'RIS interface down',
    '--json',
  );
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** The RIS's own order for a placer number the box sent: its accession, its patient. */
function risOrder(n: number, placer: string, issuer: string, patientId: string, patientName: string, birthDate = '19650505'): string {
  return (
    [
      `MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|${today8}120000||ORM^O01|RISCTRL${n}|P|2.3.1`,
      `PID|1||${patientId}^^^GENHOSP^MR||${patientName}||${birthDate}|M`,
      'PV1|1|O|CT^^^GENHOSP',
      `ORC|NW|${placer}^${issuer}|RISFIL${n}||SC||^^^${today8}110000^^R||${today8}120000`,
      `OBR|1|${placer}^${issuer}|RISFIL${n}|PCT^CT ABDOMEN^L|||${today8}120000|||||||||||RISACC${n}|RISRP${n}|RISSPS${n}||||CT|||^^^${today8}110000^^R`,
    ].join('\r') + '\r'
  );
}

async function worklist(): Promise<Array<Record<string, string>>> {
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
      'ScheduledProcedureStepSequence[0].CommentsOnTheScheduledProcedureStep',
    ],
  });
  return r.responses;
}

test.serial('downtime orders go to the RIS as ORM^O01 NW once it is back; its answers link them; conflicts land on the list', async (t) => {
  // Entered while the RIS receiver is down: queued, not lost.
  const clean = await addOrder('TEMP^PATIENT', undefined);
  const differs = await addOrder('KNOWN^PATIENT', 'PID-ENTERED');
  const silent = await addOrder('SILENT^PATIENT', undefined);
  const studyOfClean = (await worklist()).find((x) => x['AccessionNumber'] === clean.accessionNumber)?.['StudyInstanceUID'];
  t.truthy(studyOfClean);
  await ris.start();
  const sent = await eventually(
    async () => {
      const m = (await ris.messages()).filter((x) => x.type === 'ORM^O01');
      return m.length >= 3 ? m : undefined;
    },
    30_000,
    'the three orders at the RIS',
  );
  // Each order has its own ordering key: the three may leave in any order.
  t.deepEqual(sent?.map((m) => m.placer).sort(), [clean.placerOrderNumber, differs.placerOrderNumber, silent.placerOrderNumber]);
  for (const m of sent ?? []) {
    t.regex(m.text, /ORC\|NW\|DT\d{6}\^EDGE\|/);
    t.regex(m.text, /NTE\|1\|L\|DOWNTIME ORDER/);
  }
  t.is(sent?.find((m) => m.placer === clean.placerOrderNumber)?.accession, clean.accessionNumber, 'OBR-18 carries the local accession');

  // The RIS answers two of them with its own accession and patient.
  const client = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  t.is(msa(await client.send(risOrder(1, clean.placerOrderNumber, clean.placerIssuer, 'RISPID1', 'REAL^NAME'))), 'AA');
  t.is(msa(await client.send(risOrder(2, differs.placerOrderNumber, differs.placerIssuer, 'RISPID2', 'KNOWN^PATIENT'))), 'AA');
  client.close();

  const wl = await worklist();
  const linked = wl.find((x) => x['AccessionNumber'] === 'RISACC1');
  t.truthy(linked, 'the worklist item carries the RIS accession');
  t.is(linked?.['PatientID'], 'RISPID1');
  t.is(linked?.['PatientName'], 'REAL^NAME');
  t.is(linked?.['StudyInstanceUID'], studyOfClean, "the box's Study Instance UID stays (images were taken under it)");
  t.regex(
    linked?.['CommentsOnTheScheduledProcedureStep'] ?? '',
    new RegExp(`DOWNTIME ORDER ${clean.accessionNumber}, reconciled with the RIS as accession RISACC1`),
  );
  t.falsy(
    wl.find((x) => x['AccessionNumber'] === clean.accessionNumber),
    'no second item under the local accession',
  );

  // Before the deadline: the conflict only. After it: the unanswered one too.
  const early = JSON.parse((await edgectl('order', 'reconciliation', '--json')).stdout);
  t.deepEqual(
    early.orders.map((o: { placerOrderNumber: string; state: string }) => `${o.placerOrderNumber} ${o.state}`),
    [`${differs.placerOrderNumber} conflict`],
  );
  t.regex(early.orders[0].why, /another patient ID/);
  await new Promise((r) => setTimeout(r, DEADLINE_MS));
  const late = JSON.parse((await edgectl('order', 'reconciliation', '--json')).stdout);
  t.deepEqual(
    late.orders.map((o: { placerOrderNumber: string; state: string }) => `${o.placerOrderNumber} ${o.state}`),
    [`${differs.placerOrderNumber} conflict`, `${silent.placerOrderNumber} no-answer`],
  );

  const resolved = await edgectl(
    'order',
    'resolve',
    '--placer',
    differs.placerOrderNumber,
    '--note',
    'checked with ward: same patient, RIS ID correct',
  );
  t.is(resolved.code, 0, resolved.stderr);
  const after = JSON.parse((await edgectl('order', 'reconciliation', '--json')).stdout);
  t.deepEqual(
    after.orders.map((o: { placerOrderNumber: string }) => o.placerOrderNumber),
    [silent.placerOrderNumber],
  );
});

test.serial('an order the RIS refuses (AE) is on the reconciliation list with its reason', async (t) => {
  await ris.stop();
  await ris.start(['--ack-code', 'AE']);
  const refused = await addOrder('REFUSED^PATIENT', undefined);
  const state = await eventually(
    async () => {
      const list = JSON.parse((await edgectl('order', 'reconciliation', '--json')).stdout) as {
        orders: Array<{ placerOrderNumber: string; state: string; why: string }>;
      };
      return list.orders.find((o) => o.placerOrderNumber === refused.placerOrderNumber && o.state === 'refused');
    },
    30_000,
    'the refused order on the list',
  );
  t.truthy(state, 'listed as refused');
  t.regex(state?.why ?? '', /the RIS refused the order \(AE\)/);
});

test.serial('every step is audited: entered, placed, linked, conflict, resolved', async (t) => {
  await daemon.stop();
  const types = (await siteAuditEvents(site.dir)).map((e) => e.type).filter((x) => x.startsWith('order.'));
  const count = (x: string) => types.filter((y) => y === x).length;
  t.is(count('order.downtime-entered'), 4);
  t.is(count('order.downtime-placed'), 3);
  t.is(count('order.downtime-linked'), 2);
  t.is(count('order.downtime-conflict'), 1);
  t.is(count('order.downtime-resolved'), 1);
  daemon = await Daemon.start(site.configFile);
});
