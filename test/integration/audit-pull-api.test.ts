// The daemon's audit outlets end to end: the pull API (HTTPS, client certificates from the central CA
// only) refuses a client without a certificate, one from another CA and a modality's certificate, and
// audits each refusal; a central team's pull returns a bundle that `edgectl audit verify` accepts against
// the site CA. The same daemon streams to rsyslogd, whose first message is the application start.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { parseSyslog } from '../../daemon/audit/index.ts';
import { BundleFile } from '../../daemon/audit/bundle.ts';
import { readTar } from '../../daemon/audit/tar.ts';
import { makeAuditTestPki } from '../support/test-pki.ts';
import { Rsyslog } from '../support/rsyslog.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';
import { poll } from '../support/wait.ts';

interface Reply {
  readonly status: number;
  readonly body: Buffer;
}

function get(port: number, path: string, client: { cert?: string; key?: string }, ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        servername: 'localhost',
        ca,
        ...(client.cert === undefined ? {} : { cert: client.cert, key: client.key }),
        timeout: 20_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

test('pull API: refusals are audited; a central pull verifies; the stream reaches rsyslogd', async (t) => {
  const pki = makeAuditTestPki();
  let rsyslog: Rsyslog | undefined;
  const site = await createSite();
  const siteInfo = JSON.parse(await readFile(join(site.dir, 'site.json'), 'utf8')) as {
    pki: { caCert: string; serverCert: string; serverKey: string };
  };
  // The collector presents a certificate from the site CA (here the box's own, which names localhost).
  rsyslog = await Rsyslog.start({
    dir: join(site.dir, 'rsyslog'),
    caFile: siteInfo.pki.caCert,
    certFile: siteInfo.pki.serverCert,
    keyFile: siteInfo.pki.serverKey,
  });
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
  config['audit'] = {
    collectors: [{ name: 'central', host: '127.0.0.1', port: rsyslog.port, serverName: 'localhost' }],
    stream: { confirmAfterMs: 500, retryMaxMs: 1000 },
    pull: { listen: { host: '127.0.0.1', port: 0 }, centralCaFile: pki.centralCa },
  };
  await writeFile(site.configFile, JSON.stringify(config, null, 2));
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await rsyslog?.stop();
    await site.cleanup();
    pki.cleanup();
  });
  const ready = JSON.parse(daemon.process.lines.find((l) => l.includes('"edged.ready"'))!) as { auditPull: number };
  const port = ready.auditPull;
  t.true(port > 0);
  const ca = await readFile(siteInfo.pki.caCert, 'utf8');
  const central = { cert: await readFile(pki.central.cert, 'utf8'), key: await readFile(pki.central.key, 'utf8') };

  // Refused: no certificate, a certificate from another CA, a modality's certificate from the site CA.
  const ct01 = {
    cert: await readFile(join(site.dir, 'pki/ct01.crt'), 'utf8'),
    key: await readFile(join(site.dir, 'pki/ct01.key'), 'utf8'),
  };
  const rogue = { cert: await readFile(pki.rogue.cert, 'utf8'), key: await readFile(pki.rogue.key, 'utf8') };
  for (const [name, client] of [
    ['none', {}],
    ['rogue', rogue],
    ['modality', ct01],
  ] as const) {
    const r = await get(port, '/v1/audit/ranges', client, ca).catch((err: Error) => err);
    t.true(r instanceof Error, `${name}: expected the TLS handshake to fail, got ${r instanceof Error ? '' : r.status}`);
  }

  // Accepted: the central team, audit routes only.
  const ranges = await get(port, '/v1/audit/ranges', central, ca).catch((err: Error) => {
    throw new Error(`${err.message}; daemon: ${daemon.process.lines.slice(-8).join('\n')} ${daemon.process.stderr}`);
  });
  t.is(ranges.status, 200);
  const body = JSON.parse(ranges.body.toString('utf8')) as { firstSeq: number; lastSeq: number };
  t.is(body.firstSeq, 1);
  t.true(body.lastSeq >= 2);
  t.is((await get(port, '/v1/status', central, ca)).status, 404);
  const malformed = await get(port, '/v1/audit/bundle?fromSeq=abc', central, ca);
  t.is(malformed.status, 400);
  t.is((JSON.parse(malformed.body.toString('utf8')) as { error: { code: string } }).error.code, 'EDGE_AUDIT_RANGE_INVALID');
  // Told apart by its code, not by the wording of the message.
  const empty = await get(port, '/v1/audit/bundle?fromSeq=999999', central, ca);
  t.is(empty.status, 404);
  t.is((JSON.parse(empty.body.toString('utf8')) as { error: { code: string } }).error.code, 'EDGE_AUDIT_RANGE_EMPTY');

  // Pull until the three refusals are in the bundle (they are recorded as the handshakes fail).
  let records = '';
  const bundlePath = join(site.dir, 'pulled.tar');
  for (let i = 0; i < 50; i++) {
    const b = await get(port, '/v1/audit/bundle', central, ca);
    t.is(b.status, 200);
    await writeFile(bundlePath, b.body);
    records = (await readTar(bundlePath)).get(BundleFile.records)!.toString('utf8');
    if ((records.match(/"type":"audit\.pull-refused"/g) ?? []).length >= 3) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const lines = records
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: { type: string; eventId: string; participants: Array<{ id: string; address?: string }> } });
  const refused = lines.filter((l) => l.event.type === 'audit.pull-refused');
  t.is(refused.length, 3);
  t.true(
    refused.every((l) => l.event.eventId === 'SecurityAlert' && l.event.participants[0]?.address === '127.0.0.1'),
    JSON.stringify(refused),
  );
  t.true(
    lines.some(
      (l) => l.event.type === 'audit.ranges-viewed' && l.event.eventId === 'AuditLogUsed' && l.event.participants[0]?.id === 'central-soc',
    ),
  );
  t.true(lines.some((l) => l.event.type === 'application.start'));

  const v = await run(
    join(repoRoot, 'bin/edgectl'),
    ['audit', 'verify', bundlePath, '--ca', siteInfo.pki.caCert, '--device-cert', siteInfo.pki.serverCert],
    { timeoutMs: 60_000 },
  );
  t.is(v.code, 0, v.stdout + v.stderr);

  // A later pull is audited as Audit Log Used and continues the first one.
  const next = await get(port, '/v1/audit/bundle?fromSeq=' + String(lines.length + 1), central, ca);
  t.is(next.status, 200);
  const nextPath = join(site.dir, 'next.tar');
  await writeFile(nextPath, next.body);
  const nextRecords = (await readTar(nextPath)).get(BundleFile.records)!.toString('utf8');
  t.regex(nextRecords, /"type":"audit\.bundle-pulled"/);
  const v2 = await run(join(repoRoot, 'bin/edgectl'), ['audit', 'verify', nextPath, '--ca', siteInfo.pki.caCert, '--after', bundlePath], {
    timeoutMs: 60_000,
  });
  t.is(v2.code, 0, v2.stdout + v2.stderr);

  // The live stream: rsyslogd got RFC 5424 messages, the first one the application start.
  let streamed: string[] = [];
  await poll(async () => {
    streamed = (await readFile(rsyslog.outFile, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    return streamed.some((l) => l.includes('application.start'));
  }, 20_000);
  t.true(streamed.length > 0);
  t.true(streamed.every((l) => parseSyslog(l) !== undefined));
  t.true(streamed.some((l) => /type="application\.start"/.test(l) && /<EventTypeCode csd-code="110120"/.test(l)));
});
