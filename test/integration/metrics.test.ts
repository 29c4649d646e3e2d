// /metrics on the admin listener against a live daemon that has processed orders (python-hl7's role, an
// MLLP/TLS client), worklist queries (DCMTK findscu), MPPS (dcmjs-dimse) and images (DCMTK storescu):
// Prometheus's own `promtool check metrics` passes on the output, the counters say what happened, and
// only the scraper's credentials open it (the configured CA's client certificate or the token file).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import { hashPassword } from '../../daemon/core/password-hash.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { AdminClient } from '../support/admin-client.ts';
import { findscu, storescu } from '../support/dicom-peers.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { RisReceiver, createAttributes, finalAttributes, sendMpps, uid } from '../support/mpps-peers.ts';
import { PEERS } from '../support/paths.ts';
import { needsCommand, whenMet } from '../support/preconditions.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { PkiBuilder } from '../support/test-pki.ts';
import { eventually } from '../support/wait.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let ris: RisReceiver;
let work: string;
let pki: PkiBuilder;
const TOKEN = 'scrape-token-3f9a7c1e0b2d4a6f8e';
const ready = needsCommand('promtool', 'findscu', 'storescu', 'socat', 'python3');

test.before(async () => {
  if (ready !== undefined) return;
  work = await mkdtemp(join(tmpdir(), 'edge-metrics-'));
  pki = new PkiBuilder(work);
  pki.ca('metrics-ca');
  pki.leaf('scraper', 'metrics-ca', 'prometheus.central', 'clientAuth', '');
  await writeFile(join(work, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  site = await createSite((c) => {
    c['admin'].metrics = { clientCa: pki.cert('metrics-ca'), tokenFile: join(work, 'token') };
    c['upstream'] = {
      ris: { host: '127.0.0.1', port: 1, tls: true, receivingApplication: 'RIS', receivingFacility: 'GENHOSP', ackTimeoutMs: 3000 },
    };
    c['outbox'] = { initialDelayMs: 100, maxDelayMs: 1000 };
  });
  ris = await RisReceiver.create(site.dir, { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });
  const config = JSON.parse(await readFile(site.configFile, 'utf8'));
  config.upstream.ris.port = ris.port;
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  await ris.start();
  const store = await openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  await store.users.create({
    username: 'admin',
    role: 'admin',
    state: 'active',
    password: await hashPassword('a long development password 42'),
    mustChange: false,
    createdAt: Date.now(),
    sessionEpoch: 0,
  });
  await store.close();
  daemon = await Daemon.start(site.configFile);

  const hl7 = await MllpTlsClient.connect(daemon.ports.hl7, {
    certFile: site.ris.certFile,
    keyFile: site.ris.keyFile,
    caFile: site.pki.caCert,
  });
  for (let n = 1; n <= 2; n++) if (msa(await hl7.send(ormNew(n))) !== 'AA') throw new Error('order not accepted');
  if (msa(await hl7.send(ormNew(1))) !== 'AR') throw new Error('a replayed control id must be refused');
  hl7.close();
  const ct = site.modalities.find((x) => x.aeTitle === 'CT01')!;
  const tls = { certFile: ct.certFile!, keyFile: ct.keyFile!, caFile: site.pki.caCert };
  const q = await findscu({
    port: daemon.ports.dicomTls,
    callingAe: 'CT01',
    keys: ['AccessionNumber', 'ScheduledProcedureStepSequence[0].Modality=CT'],
    tls,
  });
  if (q.responses.length !== 2) throw new Error(`findscu: ${q.stderr}`);
  const pps = uid();
  const mpps = await sendMpps({ port: daemon.ports.dicomTls, callingAeTitle: 'CT01', calledAeTitle: 'EDGE', tls }, [
    { op: 'create', sopInstanceUid: pps, attributes: createAttributes(1) },
    { op: 'set', sopInstanceUid: pps, attributes: finalAttributes('COMPLETED') },
  ]);
  if (mpps.results.some((r) => r.status !== 0)) throw new Error(JSON.stringify(mpps));
  const gen = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '3', '32x32'], { timeoutMs: 60_000 });
  if (gen.code !== 0) throw new Error(gen.stderr);
  const files = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f));
  if ((await storescu(site, daemon.ports.dicomTls, files)).stored.size !== 3) throw new Error('images not stored');
});

test.after.always(async () => {
  await daemon?.stop();
  await ris?.stop();
  await site?.cleanup();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface Scrape {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

async function scrape(o: { token?: string; cert?: { cert: string; key: string }; cookie?: string } = {}): Promise<Scrape> {
  const ca = await readFile(site.pki.caCert);
  const cert = o.cert === undefined ? {} : { cert: await readFile(o.cert.cert), key: await readFile(o.cert.key) };
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: daemon.ports.admin,
        path: '/metrics',
        servername: 'localhost',
        ca,
        ...cert,
        agent: false,
        timeout: 20_000,
        headers: {
          host: `127.0.0.1:${daemon.ports.admin}`,
          ...(o.token === undefined ? {} : { authorization: `Bearer ${o.token}` }),
          ...(o.cookie === undefined ? {} : { cookie: `__Host-edge-session=${o.cookie}` }),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The control socket (the console may read the audit trail). */
function control(path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: join(site.dir, 'data', 'control.sock'), path, method: 'GET', timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject);
    req.end();
  });
}

function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

whenMet(ready).serial('promtool check metrics passes on a live scrape, and the counters tell what the box did', async (t) => {
  // The procedure status reaches the RIS (AA) before its queue reads empty.
  const m = await eventually(
    async () => {
      const s = await scrape({ token: TOKEN });
      return value(s.body, 'edge_outbox_queue_depth{destination="ris"}') === 0 ? s : undefined;
    },
    20_000,
    'the RIS queue to drain',
  );
  t.is(m.status, 200);
  t.regex(m.contentType, /^text\/plain; version=0\.0\.4/);
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: m.body, encoding: 'utf8', timeout: 30_000 }).trim(), '');
  t.is(value(m.body, 'edge_hl7_messages_total{peer="ris",message_type="ORM^O01",ack_code="AA"}'), 2);
  t.is(value(m.body, 'edge_hl7_messages_total{peer="ris",message_type="ORM^O01",ack_code="AR"}'), 1);
  t.is(value(m.body, 'edge_mwl_queries_total{peer="CT01"}'), 1);
  t.is(value(m.body, 'edge_mwl_query_duration_seconds_count{peer="CT01"}'), 1);
  t.is(value(m.body, 'edge_mpps_requests_total{peer="CT01",operation="n-create",status_class="success"}'), 1);
  t.is(value(m.body, 'edge_mpps_requests_total{peer="CT01",operation="n-set",status_class="success"}'), 1);
  t.is(value(m.body, 'edge_cstore_instances_total{peer="CT01",status_class="success"}'), 3);
  t.true((value(m.body, 'edge_cstore_bytes_total{peer="CT01"}') ?? 0) > 3 * 2048);
  t.is(value(m.body, 'edge_outbox_circuit_state{destination="ris",state="up"}'), 1);
  t.true((value(m.body, 'edge_audit_records_total') ?? 0) > 10);
  t.true((value(m.body, 'edge_certificate_expiry_timestamp_seconds{certificate="device"}') ?? 0) > Date.now() / 1000);
  t.is(value(m.body, 'edge_safe_mode'), 0);
  t.regex(m.body, /edge_build_info\{version="[^"]+",node_version="24\.[\d.]+"\} 1/);
  // Bounded labels only: no patient name, ID or accession appears anywhere.
  t.notRegex(m.body, /PATIENT|PID\d|ACC\d/);
});

whenMet(ready).serial("the metrics CA's client certificate opens /metrics; nothing else does, and each refusal is audited", async (t) => {
  t.is((await scrape({ cert: { cert: pki.cert('scraper'), key: pki.path('scraper.key') } })).status, 200);
  const none = await scrape();
  t.is(none.status, 401, 'no credentials');
  t.is((await scrape({ token: 'not-the-token' })).status, 403, 'a wrong token');
  t.is(
    (await scrape({ cert: { cert: site.ris.certFile, key: site.ris.keyFile } })).status,
    403,
    "a site-CA certificate is not the scraper's",
  );
  const admin = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  t.is((await admin.signIn('admin', 'a long development password 42')).status, 200);
  t.is((await scrape({ cookie: admin.cookie! })).status, 401, "a signed-in user's session does not open /metrics");
  const found = await eventually(
    async () => {
      const r = await control('/v1/audit/search?type=metrics.scrape-refused');
      return r.records.length > 0 ? r.records : undefined;
    },
    10_000,
    'the refusal audit record',
  );
  t.regex(found[0].detail, /no-credentials|bad-token|untrusted-certificate/);
});
