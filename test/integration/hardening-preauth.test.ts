// Connections that have not authenticated yet, against the running daemon on loopback: stalled TLS
// handshakes must never keep the RIS out of the HL7 port, and when every peer of a listener declares its
// source addresses, a connection from any other address is closed at accept, before the box spends a TLS
// handshake on it. During and after each attack a real RIS order is acknowledged and a real modality's
// worklist answers within a stated latency, and the first SIGTERM stops the box with 0.
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import { siteAuditEvents } from '../support/audit-store.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { silentConnections } from '../support/loopback-sources.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot, type SiteInfo } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';

type Site = Awaited<ReturnType<typeof createSite>>;

const ATTACK_SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'];
/** Generous for a loaded 2-core machine; the stalled handshakes would hold for 30 s. */
const SERVING_MS = 10_000;
/** A new RIS connection and its order's AA, while the handshakes stall. */
const RIS_AA_MS = 5000;
const edgectl = join(repoRoot, 'bin/edgectl');

async function startBox(t: ExecutionContext, adjust?: (config: Record<string, any>) => void): Promise<{ site: Site; daemon: Daemon }> {
  const site = await createSite(adjust);
  const daemon = await Daemon.start(site.configFile);
  // After a failed assertion too (stopping an exited daemon is a no-op).
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  return { site, daemon };
}

const risTls = (site: SiteInfo) => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });

/** A new RIS connection from 127.0.0.1, one order, its MSA-1 and how long it took; the error when it failed. */
async function risOrder(site: SiteInfo, daemon: Daemon, n: number): Promise<{ ack?: string; ms: number; error?: string }> {
  const started = performance.now();
  try {
    const client = await MllpTlsClient.connect(daemon.ports.hl7, risTls(site));
    try {
      const ack = msa(await client.send(ormNew(n), RIS_AA_MS * 2));
      return { ...(ack === undefined ? {} : { ack }), ms: performance.now() - started };
    } finally {
      client.close();
    }
  } catch (err) {
    return { ms: performance.now() - started, error: (err as Error).message };
  }
}

/** The bytes a real TLS client sends first (its ClientHello), captured on a local socket. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) =>
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      }),
    ),
  );
  const port = (server.address() as net.AddressInfo).port;
  const c = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false });
  c.on('error', () => {});
  try {
    return await got;
  } finally {
    c.destroy();
    server.close();
  }
}

/** Send a ClientHello from `localAddress`; what came back before the box closed the connection. */
async function helloFrom(localAddress: string, port: number, hello: Buffer, timeoutMs = 5000): Promise<{ bytes: number; closed: boolean }> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress });
  let bytes = 0;
  s.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  s.on('error', () => {});
  s.once('connect', () => s.write(hello));
  const closed = await Promise.race([
    // Not events.once: it rejects on the reset this is waiting for.
    new Promise<boolean>((resolve) => s.once('close', () => resolve(true))),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
  ]);
  s.destroy();
  return { bytes, closed };
}

const isPreFiltered =
  (type: string, address: string) =>
  (e: AuditEvent): boolean =>
    e.type === type &&
    /source address not allowed/.test(e.detail ?? '') &&
    e.participants.some((p) => p.requestor === true && p.address === address);

test('64 stalled TLS handshakes from 127.0.0.2-.9 on the HL7 port: a new RIS connection still gets AA at once', async (t) => {
  // No source pre-filter here (a RIS peer without addresses): the stalled handshakes reach the pool.
  const { site, daemon } = await startBox(t, (c) => {
    delete c['hl7'].peers[0].addresses;
  });
  const held: net.Socket[] = [];
  try {
    const before = await risOrder(site, daemon, 820_001);
    t.is(before.ack, 'AA', `before the attack: ${before.error ?? 'no ACK'}`);
    held.push(...(await silentConnections(daemon.ports.hl7, ATTACK_SOURCES, 8)));
    t.true(held.length === 64, `${held.length} stalled connections opened`);

    const during = [];
    for (let i = 0; i < 4; i++) during.push(await risOrder(site, daemon, 820_010 + i));
    t.log(
      `new RIS connection + order during the attack: ${during.map((r) => `${r.ack ?? r.error ?? 'no ACK'} ${Math.round(r.ms)} ms`).join(', ')} (limit ${RIS_AA_MS} ms)`,
    );
    for (const r of during) {
      t.is(r.ack, 'AA', `a new RIS connection during the attack: ${r.error ?? 'no ACK'}`);
      t.true(r.ms < RIS_AA_MS, `took ${Math.round(r.ms)} ms`);
    }
    t.is(await servingProblem(site, daemon, SERVING_MS), undefined, 'during the attack');
    const evicted = daemon.process.events('hl7.peer.refused');
    t.true(
      evicted.some((e) => /pre-authentication/.test(String(e['reason']))),
      'the oldest stalled handshake yielded, and that is logged',
    );
  } finally {
    for (const s of held) s.destroy();
  }
  t.is(await servingProblem(site, daemon, SERVING_MS), undefined, 'after the attack');
  t.is(await daemon.stop(), 0);
  const audit = await siteAuditEvents(site.dir);
  t.true(
    audit.some((e) => e.type === 'hl7.peer-refused' && /pre-authentication/.test(e.detail ?? '')),
    'the eviction is audited with its reason',
  );
});

test('every peer declares its addresses: a ClientHello from 127.0.0.2 gets no byte back on any port and is audited; a peer added without addresses turns the pre-filter off, its removal back on', async (t) => {
  const { site, daemon } = await startBox(t);
  const hello = await clientHello();
  const ports = { hl7: daemon.ports.hl7, dicomTls: daemon.ports.dicomTls, dicomPlain: daemon.ports.dicomPlain };
  for (const [name, port] of Object.entries(ports)) {
    const r = await helloFrom('127.0.0.2', port, hello);
    t.is(r.bytes, 0, `${name}: ${r.bytes} bytes answered (a ServerHello) to a source no peer allows`);
    t.true(r.closed, `${name}: the box did not close a connection from a source no peer allows`);
  }
  t.is(await servingProblem(site, daemon, SERVING_MS), undefined, 'the allowed RIS and CT01 still get in');

  // A RIS sender without addresses: the certificate alone decides on the HL7 port, so no pre-filter there.
  const add = await run(
    edgectl,
    [
      'peer',
      'add',
      'ris',
      '--config',
      site.configFile,
      '--name',
      'ris2',
      '--cn',
      'ris2.example',
      '--application',
      'RIS2',
      '--facility',
      'HOSP2',
    ],
    { timeoutMs: 30_000 },
  );
  t.is(add.code, 0, add.stderr + add.stdout);
  const open = await helloFrom('127.0.0.2', ports.hl7, hello);
  t.true(open.bytes > 0, 'with a peer without addresses, the HL7 port answers the handshake (the certificate decides)');
  const tlsStill = await helloFrom('127.0.0.2', ports.dicomTls, hello);
  t.is(tlsStill.bytes, 0, 'the DICOM TLS port keeps its pre-filter: its modalities all declare addresses');

  const remove = await run(edgectl, ['peer', 'remove', 'ris', 'ris2', '--config', site.configFile], { timeoutMs: 30_000 });
  t.is(remove.code, 0, remove.stderr + remove.stdout);
  const again = await helloFrom('127.0.0.2', ports.hl7, hello);
  t.true(again.closed && again.bytes === 0, `after the removal the HL7 pre-filter is back (${again.bytes} bytes answered)`);

  t.is(await servingProblem(site, daemon, SERVING_MS), undefined, 'after the reloads');
  t.is(await daemon.stop(), 0);
  const audit = await siteAuditEvents(site.dir);
  t.true(audit.some(isPreFiltered('hl7.peer-refused', '127.0.0.2')), 'HL7 refusal audited with the reason');
  t.true(audit.some(isPreFiltered('dicom.connection-refused', '127.0.0.2')), 'DICOM refusal audited with the reason');
});
