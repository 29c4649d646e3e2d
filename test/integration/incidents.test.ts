// Incident support against a live daemon and real peers: a modality sweeping the worklist (DCMTK findscu,
// 100 queries on one association) raises the mass-access alert with the queries as evidence, and it
// reaches rsyslogd over TLS; a query outside the configured working hours raises an after-hours alert; a
// client with a certificate from another CA knocking 50 times raises one grouped alert; the breach-scope
// report of the window lists exactly the patients the test touched and verifies with `openssl cms`;
// a quarantined modality's open association is aborted and its next one refused, until released.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { controlSocketPath } from '../../daemon/admin/control-socket.ts';
import { controlRequest } from '../../provisioning/control-client.ts';
import { findscu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { run } from '../support/processes.ts';
import { openAssociation } from '../support/raw-association.ts';
import { Rsyslog } from '../support/rsyslog.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { eventually } from '../support/wait.ts';

const edgectl = join(repoRoot, 'bin/edgectl');
const PATIENTS = 30;

interface AlertView {
  id: string;
  rule: string;
  subject: { kind: string; id: string };
  observed: string;
  evidence: number[];
  count: number;
  state: string;
}

/** A one-hour span of working hours twelve hours away from now (UTC): the test runs after hours. */
function hoursAwayFromNow(): string {
  const h = (new Date().getUTCHours() + 12) % 24;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `Sun-Sat ${pad(h)}:00-${pad(h + 1)}:00`;
}

test('alerts, breach-scope report and quarantine on a live box', async (t) => {
  const site = await createSite((c) => {
    c['incidents'] = {
      massAccess: { distinctPatients: 20, windowMinutes: 10 },
      afterHours: { workingHours: hoursAwayFromNow(), timeZone: 'UTC' },
      learningDays: 0,
      groupMinutes: 1,
    };
    // Refusal summaries every second, so the knocking count is known quickly.
    c['audit'] = { ...(c['audit'] ?? {}), coalesceIntervalMs: 1000 };
  });
  const siteInfo = JSON.parse(await readFile(join(site.dir, 'site.json'), 'utf8')) as {
    pki: { caCert: string; serverCert: string; serverKey: string };
  };
  const rsyslog = await Rsyslog.start({
    dir: join(site.dir, 'rsyslog'),
    caFile: siteInfo.pki.caCert,
    certFile: siteInfo.pki.serverCert,
    keyFile: siteInfo.pki.serverKey,
  });
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['audit'] = {
    ...config['audit'],
    collectors: [{ name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' }],
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await rsyslog.stop();
    await site.cleanup();
  });
  const socket = controlSocketPath(join(site.dir, 'data'));
  const alerts = async (): Promise<AlertView[]> =>
    ((await controlRequest(socket, 'GET', '/v1/alerts')).body as { alerts: AlertView[] }).alerts;
  const from = new Date(Date.now() - 1000).toISOString();

  // The RIS sends 30 MR orders.
  const ris = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  for (let n = 1; n <= PATIENTS; n++) t.is(msa(await ris.send(ormNew(n, { modality: 'MR' }))), 'AA');
  ris.close();

  // MR01 sweeps the worklist: 100 wildcard queries on one association.
  const sweep = await findscu({
    port: daemon.ports.dicomPlain,
    callingAe: 'MR01',
    keys: ['PatientName', 'PatientID', 'AccessionNumber'],
    extra: ['--repeat', '100'],
  });
  t.is(sweep.responses.length, 100 * PATIENTS, sweep.stderr.slice(-500));
  const mass = await eventually(
    async () => (await alerts()).find((a) => a.rule === 'mass-access' && a.subject.id === 'MR01'),
    60_000,
    'the mass-access alert',
  );
  t.regex(mass.observed, /^30 distinct patients in 10 min$/);
  t.true(mass.evidence.length >= 1, 'the queries are its evidence');
  t.true(mass.count >= 90, `repeats grouped into one alert (count ${mass.count})`);
  t.is((await alerts()).filter((a) => a.rule === 'mass-access').length, 1, 'one alert, not a hundred');
  const afterHours = (await alerts()).find((a) => a.rule === 'after-hours' && a.subject.id === 'MR01');
  t.truthy(afterHours, 'the sweep ran outside the working hours');

  // The alert is a Security Alert in the live stream.
  await eventually(
    async () => (await readFile(rsyslog.outFile, 'utf8').catch(() => '')).includes('type="alert.raised"'),
    30_000,
    'alert.raised at rsyslogd',
  );
  const streamed = (await readFile(rsyslog.outFile, 'utf8'))
    .split('\n')
    .find((l) => l.includes('type="alert.raised"') && l.includes('mass-access'));
  t.truthy(streamed, 'the mass-access alert went out on the syslog stream');
  t.notRegex(streamed ?? '', /PID\d/, 'no patient identifiers in the alert');

  // A stranger from another CA knocks 50 times on the DICOM TLS port: one alert, grouped.
  const [cert, key, ca] = await Promise.all([readFile(site.rogue.certFile), readFile(site.rogue.keyFile), readFile(site.pki.caCert)]);
  for (let i = 0; i < 50; i++) {
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: daemon.ports.dicomTls, cert, key, ca, servername: 'localhost' });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.on('secureConnect', () => s.end());
    });
  }
  const knock = await eventually(
    async () => (await alerts()).find((a) => a.rule === 'unknown-peer-knocking' && /^(4\d|5\d) refusals/.test(a.observed)),
    60_000,
    'the knocking alert counting the coalesced refusals',
  );
  t.is(knock.subject.kind, 'address');
  t.is((await alerts()).filter((a) => a.rule === 'unknown-peer-knocking').length, 1);

  // An auditor acknowledges the sweep's alert.
  const ack = await run(edgectl, ['alert', 'ack', mass.id, '--note', 'MR01 was misconfigured; fixed', '--config', site.configFile], {
    timeoutMs: 30_000,
  });
  t.is(ack.code, 0, ack.stderr);
  t.is((await alerts()).find((a) => a.id === mass.id)?.state, 'acknowledged');

  // Breach scope of the window: exactly the 30 patients, signed by the box.
  const out = join(site.dir, 'report');
  const to = new Date(Date.now() + 1000).toISOString();
  const report = await run(
    edgectl,
    ['report', 'breach-scope', '--from', from, '--to', to, '--peer', 'MR01', '--out', out, '--config', site.configFile],
    {
      timeoutMs: 120_000,
    },
  );
  t.is(report.code, 0, report.stderr + report.stdout);
  const json = JSON.parse(await readFile(join(out, 'breach-scope.json'), 'utf8')) as {
    patients: Array<{ id: string; how: Record<string, number> }>;
    chain: { linksVerified: boolean };
    parties: Array<{ id: string; inTransit: string }>;
  };
  t.true(json.chain.linksVerified);
  t.deepEqual(json.patients.map((p) => p.id).sort(), Array.from({ length: PATIENTS }, (_, i) => `PID${i + 1}`).sort());
  t.true(
    json.patients.every((p) => p.how['queried'] === 100),
    'each patient disclosed by every one of the 100 queries',
  );
  t.deepEqual(
    json.parties.map((p) => `${p.id} ${p.inTransit}`),
    ['MR01 plain'],
  );
  const verify = await run(
    'openssl',
    [
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      join(out, 'breach-scope.json.p7s'),
      '-content',
      join(out, 'breach-scope.json'),
      '-CAfile',
      site.pki.caCert,
      '-purpose',
      'any',
      '-out',
      '/dev/null',
    ],
    { timeoutMs: 30_000 },
  );
  t.is(verify.code, 0, verify.stderr);
  t.regex(await readFile(join(out, 'breach-scope.html'), 'utf8'), /<td>PID1<\/td>/);

  // Quarantine MR01 while it holds an association: aborted at once, refused after, accepted again once released.
  const held = await openAssociation(daemon.ports.dicomPlain, 'MR01');
  t.is(held.firstPduType, 0x02);
  const q = await run(edgectl, ['peer', 'quarantine', 'mr1', '--reason', 'sweeping the worklist', '--config', site.configFile], {
    timeoutMs: 30_000,
  });
  t.is(q.code, 0, q.stderr);
  t.regex(q.stdout, /modality MR01 quarantined; 1 connection\(s\) closed/);
  await held.closed;
  t.is(held.pdus.at(-1)?.[0], 0x07, 'the open association got an A-ABORT');
  t.true((await findscu({ port: daemon.ports.dicomPlain, callingAe: 'MR01', keys: ['PatientName'] })).associationRejected);
  const listed = await run(edgectl, ['peer', 'quarantined', '--config', site.configFile], { timeoutMs: 30_000 });
  t.regex(listed.stdout, /modality MR01 {2}since .* sweeping the worklist/);
  const r = await run(edgectl, ['peer', 'release', 'MR01', '--reason', 'reconfigured', '--config', site.configFile], { timeoutMs: 30_000 });
  t.is(r.code, 0, r.stderr);
  const after = await findscu({ port: daemon.ports.dicomPlain, callingAe: 'MR01', keys: ['PatientName'] });
  t.is(after.finalStatus, 'Success', after.stderr.slice(-300));
  const unknown = await run(edgectl, ['peer', 'quarantine', 'nobody', '--reason', 'x', '--config', site.configFile], { timeoutMs: 30_000 });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /EDGE_PEER_NOT_FOUND: name: no HL7 peer or modality is called "nobody"/);
});
