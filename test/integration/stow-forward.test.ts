// STOW-RS forward against a real DICOMweb server: Orthanc with Debian's orthanc-dicomweb plugin as the
// PACS. Debian's Orthanc 1.10 cannot serve HTTPS here (its civetweb worker crashes on every TLS handshake
// with OpenSSL 3), so mutual TLS is terminated in front of it by socat with client-certificate
// verification against the site CA — the same way the peers' scripts front wlmscpfs. Orthanc does not
// check bearer tokens; a small node:https test double (stowTestDouble) checks the Authorization header,
// the client certificate and the multipart/related body, and answers a Failed SOP Sequence.
import test from 'ava';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import { stowTransport } from '../../daemon/dicom/stow-client.ts';
import { splitPart10 } from '../../daemon/dicom/testing/part10.ts';
import { storescu } from '../support/dicom-peers.ts';
import { freePort, run, Supervised } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { PEERS } from '../support/paths.ts';
import { eventually, waitFor, waitForPort } from '../support/wait.ts';

const TOKEN = 'stow-test-token-0123456789';
let work = '';
let files: string[] = [];

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'edge-stow-'));
  const r = await run('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(work, 'ct'), '6', '64x64'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  files = (await readdir(join(work, 'ct'))).map((f) => join(work, 'ct', f)).sort();
});

test.after.always(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

interface DicomWebPacs {
  readonly http: number;
  readonly tlsPort: number;
  uids(): Promise<Set<string>>;
  stop(): Promise<void>;
}

/** Orthanc (HTTP on loopback, DICOMweb plugin) behind socat requiring a client certificate from `caFile`. */
async function startDicomWebPacs(dir: string, tls: { certFile: string; keyFile: string; caFile: string }): Promise<DicomWebPacs> {
  const http = await freePort();
  const tlsPort = await freePort();
  const shim = await run('bash', ['-c', `. ${PEERS}/lib/common.sh; ensure_bind_shim`], { timeoutMs: 60_000 });
  if (shim.code !== 0) throw new Error(shim.stderr);
  const config = {
    Name: 'StowPACS',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'storage'),
    HttpServerEnabled: true,
    HttpPort: http,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    SslEnabled: false,
    DicomServerEnabled: false,
    Plugins: ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
    OrthancExplorerEnabled: false,
    SaveJobs: false,
  };
  await writeFile(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
  const orthanc = new Supervised('Orthanc', [join(dir, 'orthanc.json')], {
    env: { ...process.env, LD_PRELOAD: shim.stdout.trim(), TCP_NODELAY: '1' },
  });
  await eventually(
    async () => {
      if (orthanc.exited) throw new Error(`Orthanc exited: ${orthanc.stderr.slice(-2000)}`);
      return fetch(`http://127.0.0.1:${http}/system`).then(
        (r) => r.ok,
        () => false,
      );
    },
    30_000,
    'Orthanc to start',
  );
  const proxy = new Supervised('socat', [
    `OPENSSL-LISTEN:${tlsPort},bind=127.0.0.1,reuseaddr,fork,cert=${tls.certFile},key=${tls.keyFile},cafile=${tls.caFile},verify=1,openssl-min-proto-version=TLS1.2`,
    `TCP:127.0.0.1:${http}`,
  ]);
  await waitForPort(tlsPort, { timeoutMs: 5000, exited: () => (proxy.exited ? `socat exited: ${proxy.stderr.slice(-500)}` : undefined) });
  return {
    http,
    tlsPort,
    async uids() {
      const list = (await (await fetch(`http://127.0.0.1:${http}/instances?expand`)).json()) as Array<{
        MainDicomTags: { SOPInstanceUID: string };
      }>;
      return new Set(list.map((i) => i.MainDicomTags.SOPInstanceUID));
    },
    async stop() {
      await proxy.stop('SIGTERM', 3000);
      await orthanc.stop('SIGTERM', 10_000);
    },
  };
}

test.serial('storescu → box → STOW-RS over mutual TLS → Orthanc DICOMweb: every instance arrives, the spool drains', async (t) => {
  t.timeout(110_000);
  const site = await createSite();
  const pacsDir = await mkdtemp(join(work, 'orthanc-'));
  const pacs = await startDicomWebPacs(pacsDir, { certFile: site.pki.serverCert, keyFile: site.pki.serverKey, caFile: site.pki.caCert });
  t.teardown(() => pacs.stop());
  const tokenFile = join(site.dir, 'stow.token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  await chmod(tokenFile, 0o600);
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['upstream'] = {
    pacs: {
      protocol: 'stow',
      stowUrl: `https://127.0.0.1:${pacs.tlsPort}/dicom-web/studies`,
      bearerTokenFile: tokenFile,
      connectTimeoutMs: 2000,
      batchSize: 4,
      maxAssociations: 2,
    },
  };
  config['outbox'] = { initialDelayMs: 200, maxDelayMs: 1000, jitterPercent: 20 };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(site.configFile);
  try {
    const r = await storescu(site, daemon.ports.dicomTls, files);
    t.is(r.code, 0, r.stderr);
    const want = await Promise.all(files.map(async (f) => splitPart10(await readFile(f)).sopInstanceUid));
    const all = await waitFor(async () => {
      const have = await pacs.uids();
      return want.every((u) => have.has(u));
    }, 45_000);
    const have = await pacs.uids();
    t.true(
      all,
      `missing in Orthanc: ${want.filter((u) => !have.has(u)).length}; log: ${daemon.process.lines
        .filter((l) => l.includes('stow'))
        .slice(-5)
        .join('\n')}`,
    );
    t.true(
      await waitFor(async () => (await readdir(join(site.dir, 'data', 'spool')).catch(() => ['?'])).length === 0, 10_000),
      'spool drained',
    );
    const responses = daemon.process.events('stow.response');
    t.true(responses.length >= 2, 'several STOW-RS requests (batches)');
    t.true(responses.every((e) => e['statusCode'] === 200));
    // The pixel data arrived as sent.
    const id = (
      (await (await fetch(`http://127.0.0.1:${pacs.http}/tools/lookup`, { method: 'POST', body: want[0]! })).json()) as Array<{
        ID: string;
      }>
    )[0]!.ID;
    const stored = Buffer.from(await (await fetch(`http://127.0.0.1:${pacs.http}/instances/${id}/file`)).arrayBuffer());
    t.deepEqual(splitPart10(stored).dataSet.subarray(-4096), splitPart10(await readFile(files[0]!)).dataSet.subarray(-4096));
  } finally {
    await daemon.stop();
    await site.cleanup();
  }
});

test.serial('a client certificate from another CA is refused by the TLS front; nothing is stored, the error is transient', async (t) => {
  const site = await createSite();
  t.teardown(() => site.cleanup());
  const pacs = await startDicomWebPacs(await mkdtemp(join(work, 'orthanc-')), {
    certFile: site.pki.serverCert,
    keyFile: site.pki.serverKey,
    caFile: site.pki.caCert,
  });
  t.teardown(() => pacs.stop());
  const part10 = splitPart10(await readFile(files[0]!));
  const send = stowTransport({
    url: `https://127.0.0.1:${pacs.tlsPort}/dicom-web/studies`,
    tls: { ca: await readFile(site.pki.caCert), cert: await readFile(site.rogue.certFile), key: await readFile(site.rogue.keyFile) },
    bearerToken: () => TOKEN,
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
    logger: silentLogger,
  });
  const [outcome] = await send(
    [
      {
        ...part10,
        data: async function* () {
          yield part10.dataSet;
        },
      },
    ],
    new AbortController().signal,
  );
  t.true(outcome !== undefined && 'error' in outcome && outcome.error.code === 'EDGE_STOW_FAILED', JSON.stringify(outcome));
  t.is((await pacs.uids()).size, 0);
});

/** A STOW-RS test double on node:https: requires a client certificate and the bearer token, parses the multipart body. */
async function stowTestDouble(tls: { certFile: string; keyFile: string; caFile: string }, failSop: string) {
  const seen: Array<{ authorization: string | undefined; clientCn: string | undefined; parts: Buffer[] }> = [];
  const server = https.createServer(
    {
      cert: await readFile(tls.certFile),
      key: await readFile(tls.keyFile),
      ca: await readFile(tls.caFile),
      requestCert: true,
      rejectUnauthorized: true,
      headersTimeout: 5000,
      requestTimeout: 10_000,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 * 1024 * 1024) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => {
        const boundary = /boundary=("?)([^";]+)\1/.exec(req.headers['content-type'] ?? '')?.[2];
        const body = Buffer.concat(chunks);
        const parts: Buffer[] = [];
        if (boundary !== undefined) {
          for (const raw of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
            const at = raw.indexOf('\r\n\r\n');
            parts.push(Buffer.from(raw.slice(at + 4, raw.length - 2), 'latin1'));
          }
        }
        seen.push({
          authorization: req.headers.authorization,
          clientCn: (req.socket as TLSSocket).getPeerCertificate().subject?.CN,
          parts,
        });
        if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401).end();
          return;
        }
        const ref = (uid: string) => ({ '00081155': { vr: 'UI', Value: [uid] } });
        const uids = parts.map((p) => splitPart10(p).sopInstanceUid);
        const answer = {
          '00081199': { vr: 'SQ', Value: uids.filter((u) => u !== failSop).map(ref) },
          ...(uids.includes(failSop)
            ? { '00081198': { vr: 'SQ', Value: [{ ...ref(failSop), '00081197': { vr: 'US', Value: [0xa900] } }] } }
            : {}),
        };
        res.writeHead(uids.includes(failSop) ? 202 : 200, { 'content-type': 'application/dicom+json' }).end(JSON.stringify(answer));
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test.serial(
  'stowTestDouble: bearer token and Part 10 parts arrive; a Failed SOP Sequence entry is rejected, the others delivered; no token → 401 retried later',
  async (t) => {
    const site = await createSite();
    t.teardown(() => site.cleanup());
    const items = await Promise.all(
      files.slice(0, 3).map(async (f) => {
        const p = splitPart10(await readFile(f));
        return {
          ...p,
          data: async function* () {
            yield p.dataSet.subarray(0, 100);
            yield p.dataSet.subarray(100);
          },
        };
      }),
    );
    const double = await stowTestDouble(
      { certFile: site.pki.serverCert, keyFile: site.pki.serverKey, caFile: site.pki.caCert },
      items[1]!.sopInstanceUid,
    );
    t.teardown(() => double.close());
    const tls = { ca: await readFile(site.pki.caCert), cert: await readFile(site.pki.serverCert), key: await readFile(site.pki.serverKey) };
    const options = {
      url: `https://127.0.0.1:${double.port}/dicom-web/studies`,
      tls,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
      logger: silentLogger,
    };
    const outcomes = await stowTransport({ ...options, bearerToken: () => TOKEN })(items, new AbortController().signal);
    t.deepEqual(
      outcomes.map((o) => ('status' in o ? o.status : o.error.code)),
      [0, 0xa900, 0],
    );
    const req = double.seen[0]!;
    t.is(req.authorization, `Bearer ${TOKEN}`);
    t.is(req.clientCn, 'localhost');
    t.is(req.parts.length, 3);
    for (const [i, part] of req.parts.entries()) {
      const p = splitPart10(part);
      t.is(p.sopInstanceUid, items[i]!.sopInstanceUid);
      t.deepEqual(p.dataSet, splitPart10(await readFile(files[i]!)).dataSet);
    }
    const unauthorized = await stowTransport({ ...options, bearerToken: undefined })(items.slice(0, 1), new AbortController().signal);
    // A missing or rotated token is fixed by the operator without touching the images: retry, not dead-letter.
    t.true('error' in unauthorized[0]! && unauthorized[0].error.code === 'EDGE_STOW_FAILED' && unauthorized[0].reachedPeer);
  },
);
