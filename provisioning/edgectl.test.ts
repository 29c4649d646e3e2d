// Runs the real CLI (bin/edgectl) as a subprocess, as an operator or another test would.
import test from 'ava';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../daemon/config/index.ts';
import type { SiteDescription } from './dev-site.ts';

const edgectl = fileURLToPath(new URL('../bin/edgectl', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'edgectl-test-'));
const mode = (path: string) => statSync(path).mode & 0o777;

/** One site shared by the tests that only read it. */
let sitePromise: Promise<{ dir: string; site: SiteDescription; result: Run }> | undefined;
function sharedSite() {
  sitePromise ??= (async () => {
    const dir = join(tempDir(), 'site');
    const result = await run(edgectl, [
      'dev-site',
      '--dir',
      dir,
      '--base-port',
      '22575',
      '--ris',
      '127.0.0.1:2576',
      '--pacs',
      '127.0.0.1:4242:ORTHANC',
    ]);
    const site = result.code === 0 ? (JSON.parse(readFileSync(join(dir, 'site.json'), 'utf8')) as SiteDescription) : undefined;
    if (site === undefined) throw new Error(`dev-site failed: ${result.stderr}`);
    return { dir, site, result };
  })();
  return sitePromise;
}

test('dev-site writes a site whose config passes the check with zero errors', async (t) => {
  const { dir, site } = await sharedSite();
  const { config, issues } = loadConfig(join(dir, 'edge.json'));
  t.deepEqual(
    issues.filter((i) => i.severity === 'error'),
    [],
  );
  t.deepEqual(config.hl7.listen, { host: '127.0.0.1', port: 22575, allowAllInterfaces: false });
  t.deepEqual(config.dicom.tls, { host: '127.0.0.1', port: 22576, allowAllInterfaces: false });
  t.deepEqual(config.dicom.plain, { host: '127.0.0.1', port: 22577, allowAllInterfaces: false });
  t.is(config.upstream.ris?.port, 2576);
  t.is(config.upstream.pacs?.protocol === 'dimse' ? config.upstream.pacs.aeTitle : undefined, 'ORTHANC');
  t.is(config.hl7.peers[0]?.certificateCn, site.ris.certificateCn);
  t.deepEqual(
    config.dicom.modalities.map((m) => `${m.aeTitle}/${m.transport}`),
    ['CT01/tls', 'MR01/plain'],
  );
  t.deepEqual(site.box, {
    host: '127.0.0.1',
    serverName: 'localhost',
    hl7Port: 22575,
    dicomTlsPort: 22576,
    dicomPlainPort: 22577,
    adminPort: 22578,
    aeTitle: 'EDGE',
    receivingApplication: 'EDGE',
    receivingFacility: 'RAD1',
  });
  const check = await run(edgectl, ['config', 'check', join(dir, 'edge.json')]);
  t.is(check.code, 0, check.stdout);
  t.regex(check.stdout, /0 error\(s\)/);
  const json = await run(edgectl, ['config', 'check', '--json', join(dir, 'edge.json')]);
  t.is(json.code, 0);
  t.true((JSON.parse(json.stdout) as { ok: boolean }).ok);
});

test('dev-site: private keys 0600, key folder 0700, a 32-byte data key', async (t) => {
  const { dir, site } = await sharedSite();
  for (const key of [
    site.pki.caKey,
    site.pki.serverKey,
    site.ris.keyFile,
    site.modalities[0]?.keyFile ?? '',
    site.rogue.keyFile,
    site.rogue.caKey,
    site.stranger.keyFile,
  ]) {
    t.is(mode(key), 0o600, key);
  }
  t.is(mode(join(dir, 'keys')), 0o700);
  t.is(mode(site.dataKeyFile), 0o600);
  t.is(readFileSync(site.dataKeyFile).length, 32);
});

test('dev-site certificates chain to the site CA; the rogue one does not', async (t) => {
  const { site } = await sharedSite();
  const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')?.certFile ?? '';
  const good = await run('openssl', [
    'verify',
    '-CAfile',
    site.pki.caCert,
    site.pki.serverCert,
    site.ris.certFile,
    ct01,
    site.stranger.certFile,
  ]);
  t.is(good.code, 0, good.stderr);
  const rogue = await run('openssl', ['verify', '-CAfile', site.pki.caCert, site.rogue.certFile]);
  t.not(rogue.code, 0);
});

async function handshake(site: SiteDescription, client: { certFile: string; keyFile: string }): Promise<string | Error> {
  const server = createServer({
    cert: readFileSync(site.pki.serverCert),
    key: readFileSync(site.pki.serverKey),
    ca: readFileSync(site.pki.caCert),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  const accepted = new Promise<string>((resolve) => {
    server.on('secureConnection', (socket: TLSSocket) => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const socket = connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      servername: site.box.serverName,
      ca: readFileSync(site.pki.caCert),
      cert: readFileSync(client.certFile),
      key: readFileSync(client.keyFile),
    });
    const outcome = await Promise.race([
      accepted,
      once(socket, 'close').then(() => new Error('closed before the server accepted')),
      once(socket, 'error').then(([err]) => err as Error),
    ]);
    socket.destroy();
    return outcome;
  } finally {
    server.close();
  }
}

test('dev-site material works for mutual TLS in Node: RIS accepted with its CN, rogue refused', async (t) => {
  const { site } = await sharedSite();
  t.is(await handshake(site, site.ris), 'RIS.GENHOSP');
  t.true((await handshake(site, site.rogue)) instanceof Error);
});

test('dev-site refuses to overwrite a site without --force; --force keeps the data key', async (t) => {
  const dir = join(tempDir(), 'site');
  t.is((await run(edgectl, ['dev-site', '--dir', dir])).code, 0);
  const key = readFileSync(join(dir, 'keys', 'data.key'));
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
  const again = await run(edgectl, ['dev-site', '--dir', dir]);
  t.is(again.code, 1);
  t.regex(again.stderr, /already exists.*--force/);
  const forced = await run(edgectl, ['dev-site', '--dir', dir, '--force', '--base-port', '30000']);
  t.is(forced.code, 0, forced.stderr);
  t.deepEqual(readFileSync(join(dir, 'keys', 'data.key')), key);
  t.not(readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8'), ca);
  const site = JSON.parse(readFileSync(join(dir, 'site.json'), 'utf8')) as SiteDescription;
  t.is(site.box.hl7Port, 30000);
  t.deepEqual(site.upstream, {});
});

test('config check: exit 1 with every issue listed, 1 for an unreadable file', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'edge.json');
  writeFileSync(
    file,
    JSON.stringify({ site: { name: 'X' }, keys: { backend: 'tpm' }, tls: { caFile: 'ca.crt', certFile: 'c', keyFile: 'k' }, bogus: 1 }),
  );
  const bad = await run(edgectl, ['config', 'check', file]);
  t.is(bad.code, 1);
  for (const path of ['bogus', 'tls.caFile', 'tls.certFile', 'tls.keyFile']) t.true(bad.stdout.includes(`error: ${path}:`), path);
  const json = JSON.parse((await run(edgectl, ['config', 'check', file, '--json'])).stdout) as {
    ok: boolean;
    issues: Array<{ severity: string }>;
  };
  t.false(json.ok);
  t.is(json.issues.filter((i) => i.severity === 'error').length, 4);
  const missing = await run(edgectl, ['config', 'check', join(dir, 'nope.json')]);
  t.is(missing.code, 1);
  t.regex(missing.stdout, /ENOENT/);
});

test('config check --bind: a taken port fails the check', async (t) => {
  const { dir } = await sharedSite();
  // The port is taken by this test, not hoped free: the site's DICOM TLS port is moved onto it.
  const holder = createServer({});
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const taken = (holder.address() as AddressInfo).port;
  const config = JSON.parse(readFileSync(join(dir, 'edge.json'), 'utf8')) as { dicom: { tls: { port: number } } };
  config.dicom.tls.port = taken;
  const file = join(dir, 'edge-port-taken.json');
  writeFileSync(file, JSON.stringify(config));
  const r = await run(edgectl, ['config', 'check', '--bind', file]);
  t.is(r.code, 1);
  t.regex(r.stdout, new RegExp(`error: dicom\\.tls\\.port: cannot listen on 127\\.0\\.0\\.1:${taken} \\(EADDRINUSE\\)`));
});

test('usage errors exit 2 with a clear message; help exits 0', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /usage: edgectl/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['config'], /needs a command: check or docs/],
    [['config', 'check'], /needs a FILE/],
    [['config', 'check', 'a.json', '--bogus'], /Unknown option '--bogus'/],
    [['config', 'check', 'a.json', 'b.json'], /unexpected argument: b.json/],
    [['dev-site'], /needs --dir/],
    [['dev-site', '--dir', '/tmp/x', '--base-port', '65535'], /--base-port: expected a port/],
    [['dev-site', '--dir', '/tmp/x', '--ris', 'localhost'], /--ris: expected HOST:PORT/],
    [['dev-site', '--dir', '/tmp/x', '--pacs', 'h:1'], /--pacs: expected HOST:PORT:AET/],
  ];
  for (const [args, message] of cases) {
    const r = await run(edgectl, args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  for (const args of [['--help'], ['help', 'dev-site'], ['config', 'check', '--help'], ['dev-site', '-h'], ['config', 'docs', '--help']]) {
    const r = await run(edgectl, args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /usage: edgectl/);
  }
});

test('config docs prints the reference', async (t) => {
  const r = await run(edgectl, ['config', 'docs']);
  t.is(r.code, 0);
  t.is(r.stdout, readFileSync(new URL('../docs/config.md', import.meta.url), 'utf8'));
});

test('peer add pacs --replace over a STOW-RS route writes a clean DIMSE route; peer list shows either kind', async (t) => {
  const dir = join(tempDir(), 'site');
  const made = await run(edgectl, ['dev-site', '--dir', dir, '--base-port', '23575']);
  t.is(made.code, 0, made.stderr);
  const file = join(dir, 'edge.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  raw['upstream'] = { pacs: { protocol: 'stow', stowUrl: 'https://pacs.example/dicom-web/studies', batchSize: 8 } };
  writeFileSync(file, JSON.stringify(raw, null, 2));
  const stow = await run(edgectl, ['peer', 'list', '--config', file]);
  t.regex(stow.stdout, /PACS: STOW-RS https:\/\/pacs\.example\/dicom-web\/studies/);
  const add = await run(edgectl, [
    'peer',
    'add',
    'pacs',
    '--config',
    file,
    '--host',
    '127.0.0.1',
    '--port',
    '4242',
    '--ae',
    'ORTHANC',
    '--replace',
  ]);
  t.is(add.code, 0, add.stderr);
  const { config, issues } = loadConfig(file);
  t.deepEqual(
    issues.filter((i) => i.path.startsWith('upstream')),
    [],
    'no STOW-RS leftovers in the DIMSE route',
  );
  t.like(config.upstream.pacs, { protocol: 'dimse', host: '127.0.0.1', port: 4242, aeTitle: 'ORTHANC', batchSize: 8 });
  t.regex((await run(edgectl, ['peer', 'list', '--config', file])).stdout, /PACS: ORTHANC@127\.0\.0\.1:4242 tls/);
});
