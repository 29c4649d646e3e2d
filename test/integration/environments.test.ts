// Production, test and training kept apart, against real peers: python-hl7's mllp_send (through socat
// TLS) and a node MLLP client as the RIS, DCMTK findscu/storescu as the modalities, dcmjs-dimse as the
// MPPS sender, python's MLLP ACK server as the RIS receiving status, rsyslogd as the central collector.
// A production box refuses MSH-11 T, a test box refuses P (AR, ERR 202 at MSH-11, nothing changes); a
// test box marks its worklist, sends status with MSH-11 T, refuses to forward to a production PACS, and
// names its environment in its status, in every audit record and in its syslog stream.
import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSyslog } from '../../daemon/audit/index.ts';
import { controlSocketPath } from '../../daemon/admin/control-socket.ts';
import { controlRequest } from '../../provisioning/control-client.ts';
import { siteAuditRecords } from '../support/audit-store.ts';
import { findscu, storescu } from '../support/dicom-peers.ts';
import { MllpTlsClient, fixture, mllpSend, msa, ormNew } from '../support/hl7-peers.ts';
import { RisReceiver, createAttributes, finalAttributes, risUpstreamConfig, sendMpps, uid } from '../support/mpps-peers.ts';
import { PEERS } from '../support/paths.ts';
import { run } from '../support/processes.ts';
import { Rsyslog } from '../support/rsyslog.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { eventually } from '../support/wait.ts';

type Site = Awaited<ReturnType<typeof createSite>>;

const risTls = (site: Site) => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
const ct01Tls = (site: Site) => {
  const m = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  return { certFile: m.certFile!, keyFile: m.keyFile!, caFile: site.pki.caCert };
};
const WORKLIST_KEYS = [
  'PatientName',
  'AccessionNumber',
  'ScheduledProcedureStepSequence[0].Modality=CT',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription',
  'ScheduledProcedureStepSequence[0].CommentsOnTheScheduledProcedureStep',
];
const ctWorklist = (site: Site, daemon: Daemon) =>
  findscu({ port: daemon.ports.dicomTls, callingAe: 'CT01', tls: ct01Tls(site), keys: WORKLIST_KEYS });

/** ERR of an AR for MSH-11: v2.3.1 ERR-1 `MSH^1^11^202&Unsupported processing id&HL70357`. */
const ERR_202_AT_MSH_11 = /\nERR\|MSH\^1\^11\^202&Unsupported processing id&HL70357/;
const mshField = (message: string, n: number): string | undefined =>
  message
    .split(/[\r\n]+/)
    .map((s) => s.slice(Math.max(0, s.indexOf('MSH|'))))
    .find((s) => s.startsWith('MSH|'))
    ?.split('|')[n - 1];

test('a production box answers MSH-11 T with AR, ERR 202 at MSH-11, and changes nothing; its P orders go on as before', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  // The fixture is ISO 8859-1: edited byte for byte (latin1 both ways) so that only MSH-11 differs.
  const training = (await fixture('orm-o01-new-ct.hl7')).toString('latin1').replace(/^(MSH(?:\|[^|\r]*){9})\|P\|/, '$1|T|');
  t.regex(training, /^MSH(\|[^|\r]*){9}\|T\|/, 'the fixture was turned into a training message');
  const [refused] = await mllpSend(daemon.ports.hl7, risTls(site), [Buffer.from(training, 'latin1')]);
  t.is(msa(refused), 'AR', refused);
  t.regex(refused!, ERR_202_AT_MSH_11);
  t.is(mshField(refused!, 11), 'P', "the ACK carries the box's own processing id");
  const empty = await ctWorklist(site, daemon);
  t.is(empty.finalStatus, 'Success', empty.stdout + empty.stderr);
  t.is(empty.responses.length, 0, 'the training order did not reach the production worklist');

  // The same order as production traffic (a new MSH-10: the refused one was never stored, so even the
  // same control id would do) is accepted and served unmarked.
  const [accepted] = await mllpSend(daemon.ports.hl7, risTls(site), [await fixture('orm-o01-new-ct.hl7')]);
  t.is(msa(accepted), 'AA', accepted);
  t.is(mshField(accepted!, 11), 'P');
  const served = await ctWorklist(site, daemon);
  t.is(served.responses.length, 1, served.stdout);
  t.false((served.responses[0]!['ScheduledProcedureStepDescription'] ?? '').startsWith('TEST:'));
  t.falsy(served.responses[0]!['CommentsOnTheScheduledProcedureStep']);

  const status = await controlRequest(controlSocketPath(join(site.dir, 'data')), 'GET', '/v1/status', undefined, 10_000);
  t.is((status.body as { environment?: string }).environment, 'production');
  await daemon.stop();
  const records = await siteAuditRecords(site.dir);
  const alert = records.find((r) => r.event.type === 'hl7.processing-id-refused');
  t.truthy(alert, 'the refusal is audited');
  t.regex(alert?.event.detail ?? '', /MSH-11 "T" refused \(ERR 202\): this box accepts P/);
  t.is(records.filter((r) => r.event.type === 'hl7.order-committed').length, 1, 'only the P order was committed');
});

test('a test box: P refused, T served marked, status sent with T, no forwarding to a production PACS, its environment everywhere', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'edge-environments-'));
  const site = await createSite((c) => {
    c['site'].environment = 'test';
    c['upstream'] = {
      ris: risUpstreamConfig(),
      // Never reached: the box refuses to forward to it.
      pacs: { host: '127.0.0.1', port: 1, aeTitle: 'PROD-PACS', tls: false, environment: 'production' },
    };
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 1000 };
  });
  const ris = await RisReceiver.create(site.dir, risTls(site));
  const rsyslog = await Rsyslog.start({
    dir: join(site.dir, 'rsyslog'),
    caFile: site.pki.caCert,
    certFile: site.pki.serverCert,
    keyFile: site.pki.serverKey,
  });
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['upstream'].ris.port = ris.port;
  config['audit'] = {
    collectors: [{ name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' }],
    stream: { confirmAfterMs: 500, retryMaxMs: 1000 },
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await ris.stop();
    await rsyslog.stop();
    await site.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  // A production order (MSH-11 P) is refused; nothing reaches the worklist.
  const client = await MllpTlsClient.connect(daemon.ports.hl7, risTls(site));
  const refused = await client.send(ormNew(1));
  t.is(msa(refused), 'AR', refused);
  t.regex((refused ?? '').replace(/\r/g, '\n'), ERR_202_AT_MSH_11);
  t.is(mshField(refused ?? '', 11), 'T', "the ACK carries the box's own processing id");
  t.is((await ctWorklist(site, daemon)).responses.length, 0, 'the production order did not reach the test worklist');
  // Debugging messages are refused too unless the config asks for them.
  t.is(msa(await client.send(ormNew(3, { processingId: 'D' }))), 'AR');

  // Test traffic (MSH-11 T) is accepted and served marked.
  const accepted = await client.send(ormNew(2, { processingId: 'T' }));
  client.close();
  t.is(msa(accepted), 'AA', accepted);
  t.is(mshField(accepted ?? '', 11), 'T');
  const served = await ctWorklist(site, daemon);
  t.is(served.responses.length, 1, served.stdout);
  t.is(served.responses[0]!['AccessionNumber'], 'ACC2');
  t.regex(served.responses[0]!['ScheduledProcedureStepDescription'] ?? '', /^TEST: \S/, served.stdout);
  t.regex(served.responses[0]!['CommentsOnTheScheduledProcedureStep'] ?? '', /^TEST: not a real order/);

  // Procedure status to the RIS carries MSH-11 T.
  const mpps = uid();
  const sent = await sendMpps({ port: daemon.ports.dicomTls, callingAeTitle: 'CT01', calledAeTitle: 'EDGE', tls: ct01Tls(site) }, [
    { op: 'create', sopInstanceUid: mpps, attributes: createAttributes(2) },
    { op: 'set', sopInstanceUid: mpps, attributes: finalAttributes('COMPLETED') },
  ]);
  t.deepEqual(
    sent.results.map((r) => r.status),
    [0, 0],
    sent.error,
  );
  const statusMessages = await eventually(
    async () => {
      const m = await ris.messages();
      return m.length >= 2 ? m : undefined;
    },
    30_000,
    'two status messages',
  );
  t.deepEqual(
    statusMessages.map((m) => [m.accession, m.status, mshField(m.text, 11)]),
    [
      ['ACC2', 'IP', 'T'],
      ['ACC2', 'CM', 'T'],
    ],
  );

  // An image is accepted (committed to the spool) but never forwarded to the production PACS: it
  // becomes a dead letter with the reason.
  const gen = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '1', '32x32'], { timeoutMs: 60_000 });
  t.is(gen.code, 0, gen.stderr);
  const images = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f));
  const stored = await storescu(site, daemon.ports.dicomTls, images);
  t.deepEqual(stored.statuses, ['Success'], stored.stdout + stored.stderr);
  const socket = controlSocketPath(join(site.dir, 'data'));
  const dead = await eventually(
    async () => {
      const r = await controlRequest(socket, 'GET', '/v1/queues/dead?destination=pacs', undefined, 10_000);
      const letters = (r.body as { deadLetters: Array<{ reason: { code: string; message: string } }> }).deadLetters;
      return letters.length >= 1 ? letters : undefined;
    },
    30_000,
    'a dead letter for the PACS',
  );
  t.is(dead[0]!.reason.code, 'EDGE_PACS_ENVIRONMENT_MISMATCH');
  t.regex(dead[0]!.reason.message, /upstream\.pacs\.environment is "production"/);

  // The environment in the status (edgectl status, as the operator runs it) and in the syslog stream.
  const status = await run(join(repoRoot, 'bin/edgectl'), ['status', '--config', site.configFile], { timeoutMs: 30_000 });
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^\*\*\* TEST BOX: not for patient care \*\*\*$/m);
  t.regex(status.stdout, /^environment\s+test$/m);
  t.regex(
    status.stdout,
    /^service\s+pacs-environment\s+running\s+degraded \(forwarding refused: upstream\.pacs\.environment is "production" on a test box\)$/m,
  );
  const streamed = await eventually(
    async () => {
      const lines = (await readFile(rsyslog.outFile, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      return lines.some((l) => l.includes('hl7.processing-id-refused')) && lines.some((l) => l.includes('pacs.environment-refused'))
        ? lines
        : undefined;
    },
    30_000,
    'the refusals in the syslog stream',
  );
  for (const line of streamed) {
    const m = parseSyslog(line);
    t.truthy(m, line.slice(0, 200));
    t.regex(m?.structuredData ?? '', / environment="test"\]$/, m?.structuredData);
    t.regex(m?.msg ?? '', /<ParticipantObjectDetail type="Environment" value="dGVzdA=="\/>/);
  }

  await daemon.stop();
  const records = await siteAuditRecords(site.dir);
  t.true(records.length > 5);
  t.deepEqual(
    records.filter((r) => r.environment !== 'test').map((r) => `${r.seq} ${r.event.type}`),
    [],
    'every audit record names the environment',
  );
  const types = records.map((r) => r.event.type);
  t.is(types.filter((x) => x === 'hl7.processing-id-refused').length, 2, 'the P and the D order');
  t.true(types.includes('pacs.environment-refused'));
  t.true(types.includes('outbox.dead-lettered'));
});

test('a production box with a test channel: its T orders reach only the test worklist, which only modalities declared for testing query', async (t) => {
  const site = await createSite((c) => {
    // The interface engine's test channel: its own certificate (the site's "stranger" pair), address
    // and MSH-3, distinct from the production RIS.
    c['hl7'].peers.push({
      name: 'ris-test',
      certificateCn: 'STRANGER.GENHOSP',
      sendingApplication: 'RISTEST',
      sendingFacility: 'GENHOSP',
      addresses: ['127.0.0.1/32'],
      testChannel: true,
    });
    // A service AE title declared for testing, on the plain port.
    c['dicom'].modalities.push({ name: 'service', aeTitle: 'SVC01', transport: 'plain', addresses: ['127.0.0.1/32'], testing: true });
  });
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  const testChannel = { certFile: site.stranger.certFile, keyFile: site.stranger.keyFile, caFile: site.pki.caCert };
  const fromTestChannel = (message: string): string => message.replace(/^MSH\|\^~\\&\|RIS\|/, 'MSH|^~\\&|RISTEST|');

  const production = await MllpTlsClient.connect(daemon.ports.hl7, risTls(site));
  t.is(msa(await production.send(ormNew(10))), 'AA');
  t.is(msa(await production.send(ormNew(11, { processingId: 'T' }))), 'AR', 'the production RIS may not send test traffic');
  production.close();

  const test = await MllpTlsClient.connect(daemon.ports.hl7, testChannel);
  const testAck = await test.send(fromTestChannel(ormNew(20, { processingId: 'T' })));
  t.is(msa(testAck), 'AA', testAck);
  t.is(mshField(testAck ?? '', 11), 'T', 'the test channel is answered as a test system');
  const prodFromTest = await test.send(fromTestChannel(ormNew(21)));
  t.is(msa(prodFromTest), 'AR', 'the test channel may not send production orders');
  t.regex((prodFromTest ?? '').replace(/\r/g, '\n'), ERR_202_AT_MSH_11);
  // A patient update on the test channel for a production patient's id touches nothing in production.
  const a08 = [
    'MSH|^~\\&|RISTEST|GENHOSP|EDGE|RAD1|20261125091500||ADT^A08|TESTA08|T|2.3.1',
    'EVN|A08|20261125091500',
    'PID|1||PID10^^^GENHOSP^MR||RENAMED^BY-TEST||19700101|F',
  ].join('\r');
  t.is(msa(await test.send(`${a08}\r`)), 'AA');
  test.close();

  const ct = await ctWorklist(site, daemon);
  t.deepEqual(
    ct.responses.map((r) => [r['AccessionNumber'], r['PatientName']]),
    [['ACC10', 'TEST^PATIENT10']],
    'the production worklist: the production order only, its patient untouched',
  );
  const service = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'SVC01', keys: WORKLIST_KEYS });
  t.is(service.finalStatus, 'Success', service.stdout + service.stderr);
  t.deepEqual(
    service.responses.map((r) => r['AccessionNumber']),
    ['ACC20'],
    'the test worklist: the test channel order only',
  );
  t.regex(service.responses[0]!['ScheduledProcedureStepDescription'] ?? '', /^TEST: /);
  t.regex(service.responses[0]!['CommentsOnTheScheduledProcedureStep'] ?? '', /^TEST: not a real order/);

  // The testing modality may not report procedure steps (they would reach the production RIS).
  const mpps = await sendMpps({ port: daemon.ports.dicomPlain, callingAeTitle: 'SVC01', calledAeTitle: 'EDGE', timeoutMs: 10_000 }, [
    { op: 'create', sopInstanceUid: uid(), attributes: createAttributes(20) },
  ]);
  t.deepEqual(mpps.results, [], 'no MPPS context is accepted');
});
