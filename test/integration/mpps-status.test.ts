// MPPS in, procedure status out, against real peers: dcmjs-dimse's client as the modality (TLS with a
// client certificate), python3's MLLP ACK server behind socat mutual TLS as the RIS.
import test from 'ava';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import {
  RisReceiver,
  createAttributes,
  finalAttributes,
  risUpstreamConfig,
  sendMpps,
  uid,
  type MppsTarget,
} from '../support/mpps-peers.ts';
import { eventually } from '../support/wait.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let ris: RisReceiver;

test.before(async () => {
  let risPort = 0;
  site = await createSite((c) => {
    c['upstream'] = {
      ris: risUpstreamConfig(),
    };
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 1000 };
  });
  ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
  risPort = ris.port;
  const { readFile, writeFile } = await import('node:fs/promises');
  const config = JSON.parse(await readFile(site.configFile, 'utf8'));
  config.upstream.ris.port = risPort;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
  daemon = await Daemon.start(site.configFile);
  const client = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  for (let n = 1; n <= 3; n++) if (msa(await client.send(ormNew(n))) !== 'AA') throw new Error('order not accepted');
  client.close();
});

test.after.always(async () => {
  await daemon?.stop();
  await ris?.stop();
  await site?.cleanup();
});

const ct01 = (): MppsTarget => {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  return {
    port: daemon.ports.dicomTls,
    callingAeTitle: 'CT01',
    calledAeTitle: boxAe(),
    tls: { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert },
  };
};
let ae: string | undefined;
function boxAe(): string {
  return (ae ??= (daemon.process.events('edged.ready')[0]?.['aeTitle'] as string) ?? 'EDGE');
}

test.serial('N-CREATE and N-SET succeed and the RIS gets IP then CM / DC with placer, filler and accession', async (t) => {
  const one = uid();
  const two = uid();
  const r = await sendMpps(ct01(), [
    { op: 'create', sopInstanceUid: one, attributes: createAttributes(1) },
    { op: 'set', sopInstanceUid: one, attributes: finalAttributes('COMPLETED') },
    { op: 'create', sopInstanceUid: two, attributes: createAttributes(2) },
    { op: 'set', sopInstanceUid: two, attributes: finalAttributes('DISCONTINUED') },
  ]);
  t.is(r.error, undefined);
  t.deepEqual(
    r.results.map((x) => x.status),
    [0, 0, 0, 0],
  );
  const msgs = await eventually(
    async () => {
      const m = await ris.messages();
      return m.length >= 4 ? m : undefined;
    },
    20_000,
    'four status messages',
  );
  t.deepEqual(
    msgs.map((m) => [m.placer, m.status, m.accession]),
    [
      ['PLC1', 'IP', 'ACC1'],
      ['PLC1', 'CM', 'ACC1'],
      ['PLC2', 'IP', 'ACC2'],
      ['PLC2', 'DC', 'ACC2'],
    ],
  );
  const first = msgs[0]!.text;
  t.regex(first, /^MSH\|\^~\\&\|[^|]*\|[^|]*\|RIS\|GENHOSP\|/);
  t.regex(first, /\nORC\|SC\|PLC1\|FIL1\|\|IP\|/);
  t.regex(first, /\nOBR\|1\|PLC1\|FIL1\|/);
  t.is(new Set(msgs.map((m) => m.controlId)).size, 4, 'each message has its own MSH-10');
});

test.serial(
  'the state machine: duplicate N-CREATE 0x0111, N-SET after COMPLETED 0x0110, unknown 0x0112, bad status 0x0106, N-SET of SSAS 0x0105',
  async (t) => {
    const done = uid();
    const r = await sendMpps(ct01(), [
      { op: 'create', sopInstanceUid: done, attributes: createAttributes(3) },
      { op: 'create', sopInstanceUid: done, attributes: createAttributes(3) },
      { op: 'set', sopInstanceUid: done, attributes: { ScheduledStepAttributesSequence: [{ AccessionNumber: 'X' }] } },
      { op: 'set', sopInstanceUid: done, attributes: { PerformedProcedureStepStatus: 'FINISHED' } },
      { op: 'set', sopInstanceUid: done, attributes: finalAttributes('COMPLETED') },
      { op: 'set', sopInstanceUid: done, attributes: finalAttributes('DISCONTINUED') },
      { op: 'set', sopInstanceUid: uid(), attributes: finalAttributes('COMPLETED') },
      { op: 'create', sopInstanceUid: uid(), attributes: createAttributes(3, { PerformedProcedureStepStatus: 'COMPLETED' }) },
    ]);
    t.is(r.error, undefined);
    t.deepEqual(
      r.results.map((x) => x.status),
      [0x0000, 0x0111, 0x0105, 0x0106, 0x0000, 0x0110, 0x0112, 0x0106],
    );
    t.regex(r.results[5]!.errorComment ?? '', /no longer be updated/);
  },
);

test.serial('an unscheduled MPPS is kept (success) and flagged, and sends nothing to the RIS', async (t) => {
  const before = (await ris.messages()).length;
  const lone = uid();
  const r = await sendMpps(ct01(), [
    { op: 'create', sopInstanceUid: lone, attributes: createAttributes(999) },
    { op: 'set', sopInstanceUid: lone, attributes: finalAttributes('COMPLETED') },
  ]);
  t.deepEqual(
    r.results.map((x) => x.status),
    [0, 0],
  );
  const created = await daemon.process.waitForLine((l) => l.includes('"event":"mpps.created"') && l.includes('"unscheduled":true'));
  t.truthy(created);
  // Order 3's CM (previous test) was queued before this step: once it is at the RIS, the queue is past it.
  await eventually(
    async () => ((await ris.messages()).some((m) => m.placer === 'PLC3' && m.status === 'CM') ? true : undefined),
    20_000,
    'order 3 CM',
  );
  const after = (await ris.messages()).slice(before);
  t.false(after.some((m) => m.accession === 'ACC999'));
});

test.serial('edgectl queue list shows the RIS destination up with nothing queued', async (t) => {
  await eventually(
    async () => ((await ris.messages()).some((m) => m.placer === 'PLC3' && m.status === 'CM') ? true : undefined),
    20_000,
    'order 3 CM',
  );
  const out = await eventually(
    async () => {
      const r = await run(`${repoRoot}/bin/edgectl`, ['queue', 'list', '--config', site.configFile, '--json'], { timeoutMs: 20_000 });
      const body = JSON.parse(r.stdout) as { destinations: Array<{ destination: string; state: string; queued: number }> };
      const d = body.destinations.find((x) => x.destination === 'ris');
      return d !== undefined && d.queued === 0 ? d : undefined;
    },
    20_000,
    'an empty RIS queue',
  );
  t.is(out.state, 'up');
  t.false(
    daemon.process.lines.some((l) => l.includes('TEST^PATIENT') || l.includes('ACC1')),
    'no patient data in logs',
  );
});
