// The HL7 port under attack, on loopback, against the running daemon: a port scanner's connect-and-close
// calls and stalled handshakes, slow senders holding the RIS's connection slots, messages built to blow
// up memory, forged sender fields, TLS renegotiation, and refused certificates. During and after each
// attack a real RIS order is acknowledged and a real modality's worklist answers within a stated latency,
// and the first SIGTERM stops the box with 0.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import { makeAuditTestPki } from '../support/test-pki.ts';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { loadConfig } from '../../daemon/config/index.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';

type Site = Awaited<ReturnType<typeof createSite>>;

/** Generous: two cores shared by many test processes. */
const SERVING_MS = 10_000;

async function startBox(t: ExecutionContext, adjust?: (config: Record<string, any>) => void): Promise<{ site: Site; daemon: Daemon }> {
  const site = await createSite(adjust);
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  return { site, daemon };
}

/** servingProblem, with how long the whole probe (order ACK + worklist query) took in the test log. */
async function served(t: ExecutionContext, site: Site, daemon: Daemon, when: string): Promise<string | undefined> {
  const started = performance.now();
  const problem = await servingProblem(site, daemon, SERVING_MS);
  t.log(`${when}: RIS order + CT01 worklist query ${Math.round(performance.now() - started)} ms (limit ${SERVING_MS} ms per leg)`);
  return problem;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sockets of the daemon's process in CLOSE-WAIT (the peer closed, the box never did). */
async function closeWaitSockets(pid: number): Promise<string[]> {
  const r = await run('ss', ['-Htanp', 'state', 'close-wait'], { timeoutMs: 10_000 });
  return r.stdout.split('\n').filter((l) => l.includes(`pid=${pid},`));
}

/** The daemon's peak resident set so far (VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** The audit trail of a stopped box, read with its own key. */
async function auditTrail(site: Site): Promise<AuditEvent[]> {
  const { config } = loadConfig(site.configFile);
  if (config.keys.backend !== 'file') throw new Error('the dev site uses the file key backend');
  const store = await openStore({
    dataDir: config.dataDir,
    keySource: new FileKeySource(config.keys.file.path),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const events: AuditEvent[] = [];
  try {
    for await (const r of store.audit.read(1)) events.push((JSON.parse(r.line) as AuditRecord).event);
  } finally {
    await store.close();
  }
  return events;
}

const risTls = (site: Site) => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });

async function sendAs(site: Site, daemon: Daemon, message: string | Buffer): Promise<string | undefined> {
  const client = await MllpTlsClient.connect(daemon.ports.hl7, risTls(site));
  try {
    return await client.send(message, 60_000);
  } finally {
    client.close();
  }
}

/** A v2.5.1 ORM^O01 (ERR-2 names segment, sequence, field, repetition, component, subcomponent). */
function orm251(n: number, edit: (segments: string[]) => void = () => undefined): string {
  const segments = ormNew(n)
    .split('\r')
    .filter((s) => s !== '');
  segments[0] = segments[0]!.replace('|P|2.3.1', '|P|2.5.1');
  edit(segments);
  return segments.join('\r') + '\r';
}

const errOf = (ack: string | undefined): string | undefined => ack?.split(/[\r\n]+/).find((s) => s.startsWith('ERR|'));

test.serial(
  'a port scan (32 connect-and-close, 32 stalled handshakes) leaves no socket in CLOSE-WAIT; the RIS is served; SIGTERM stops the box',
  async (t) => {
    // The handshake timeout follows the idle timeout (at most 30 s); 5 s keeps the test short.
    const { site, daemon } = await startBox(t, (c) => {
      c['hl7'].idleTimeoutMs = 5000;
    });
    const port = daemon.ports.hl7;

    // What `(exec 3<>/dev/tcp/127.0.0.1/PORT)` does: connect, then close at once without a byte.
    for (let i = 0; i < 32; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.destroy();
    }
    await sleep(500);
    t.is(await served(t, site, daemon, 'served after the connect-and-close scan'), undefined, 'served after the connect-and-close scan');

    // Handshakes that never finish: connected, a partial ClientHello, then silence.
    const stalled: net.Socket[] = [];
    const closedAt: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 32; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now() - started));
      stalled.push(s);
      await once(s, 'connect').catch(() => undefined);
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    }
    try {
      const until = Date.now() + 5000 + 15_000;
      while (closedAt.length < stalled.length && Date.now() < until) await sleep(200);
      t.is(closedAt.length, 32, `stalled handshakes closed by the box: ${closedAt.length} of 32`);
    } finally {
      for (const s of stalled) s.destroy();
    }

    let left: string[] = [];
    for (let i = 0; i < 25; i++) {
      left = await closeWaitSockets(daemon.pid);
      if (left.length === 0) break;
      await sleep(200);
    }
    t.deepEqual(left, [], 'no socket of the daemon left in CLOSE-WAIT');
    t.is(await served(t, site, daemon, 'served after the stalled handshakes'), undefined, 'served after the stalled handshakes');
    t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
  },
);

test.serial(
  "four RIS connections sending one byte every 3 s: the RIS's newest connection still gets AA; a frame is closed at its deadline",
  async (t) => {
    const frameTimeoutMs = 8000;
    const { site, daemon } = await startBox(t, (c) => {
      c['hl7'].frameTimeoutMs = frameTimeoutMs;
    });
    const [cert, key, ca] = await Promise.all([readFile(site.ris.certFile), readFile(site.ris.keyFile), readFile(site.pki.caCert)]);
    const slow: Array<{ socket: tls.TLSSocket; openedAt: number; closedAt?: number }> = [];
    const message = Buffer.from(ormNew(424_242));
    for (let i = 0; i < 4; i++) {
      const socket = tls.connect({ host: '127.0.0.1', port: daemon.ports.hl7, cert, key, ca, servername: 'localhost' });
      socket.on('error', () => undefined);
      await once(socket, 'secureConnect');
      const entry: { socket: tls.TLSSocket; openedAt: number; closedAt?: number } = { socket, openedAt: Date.now() };
      socket.on('close', () => (entry.closedAt = Date.now()));
      slow.push(entry);
      socket.write(Buffer.from([0x0b]));
    }
    // One byte every 3 s on each, bounded to 24 s in all.
    let offset = 0;
    const drip = setInterval(() => {
      const byte = message.subarray(offset % message.length, (offset % message.length) + 1);
      offset++;
      for (const s of slow) if (s.closedAt === undefined) s.socket.write(byte);
    }, 3000);
    const stopDrip = setTimeout(() => clearInterval(drip), 24_000);
    try {
      await sleep(3500);
      t.true(
        slow.every((s) => s.closedAt === undefined),
        'the slow connections are all open and sending',
      );
      t.is(
        await served(t, site, daemon, 'served while four slow connections hold the per-peer cap'),
        undefined,
        'served while four slow connections hold the per-peer cap',
      );
      const until = Date.now() + frameTimeoutMs + 12_000;
      while (slow.some((s) => s.closedAt === undefined) && Date.now() < until) await sleep(200);
      for (const [i, s] of slow.entries()) {
        t.not(s.closedAt, undefined, `slow connection ${i} was closed`);
        if (s.closedAt !== undefined)
          t.true(
            s.closedAt - s.openedAt < frameTimeoutMs + 8000,
            `slow connection ${i} closed after ${s.closedAt - s.openedAt} ms (frame deadline ${frameTimeoutMs} ms)`,
          );
      }
    } finally {
      clearInterval(drip);
      clearTimeout(stopDrip);
      for (const s of slow) s.socket.destroy();
    }
    t.is(await served(t, site, daemon, 'served after the slow senders'), undefined, 'served after the slow senders');
    t.true(daemon.process.events('hl7.connection.superseded').length >= 1, 'the yielding connection is logged');
    t.true(
      daemon.process.events('hl7.connection.framing-error').some((e) => e['code'] === 'EDGE_HL7_FRAME_TIMEOUT'),
      'the frame deadline is logged',
    );
    t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
    const trail = await auditTrail(site);
    t.true(
      trail.some((e) => e.type === 'hl7.connection-superseded'),
      'the yielding connection is audited',
    );
    t.true(
      trail.some((e) => e.type === 'hl7.framing-error' && (e.detail ?? '').includes('EDGE_HL7_FRAME_TIMEOUT')),
      'the frame deadline is audited',
    );
  },
);

test.serial('messages built to exhaust memory are refused with AE and an ERR naming the place; RSS stays bounded', async (t) => {
  const { site, daemon } = await startBox(t);
  const before = await peakRssMb(daemon.pid);
  const cases: Array<[string, string, RegExp]> = [
    [
      '100,000 PID-3 repetitions',
      orm251(1, (s) => (s[1] = s[1]!.replace(/PID(\d+)\^\^\^GENHOSP\^MR/, (m) => m + '~X'.repeat(99_999)))),
      /^ERR\|\|PID\^1\^3\^101\|/,
    ],
    [
      '900,000 sub-components',
      orm251(2, (s) => (s[1] = s[1]!.replace('TEST^PATIENT2', 'TEST&' + '&'.repeat(900_000) + '^PATIENT2'))),
      /^ERR\|\|PID\^1\^5\^1\^1\^\d+\|/,
    ],
    [
      '2,000 order groups',
      orm251(3, (s) => {
        const group = s.slice(3);
        s.splice(3, 2, ...Array.from({ length: 2000 }, () => group).flat());
      }),
      /^ERR\|\|ORC\^101\|/,
    ],
    [
      '5,000 components in a field',
      orm251(4, (s) => (s[1] = s[1]!.replace('TEST^PATIENT4', 'TEST' + '^X'.repeat(5000)))),
      /^ERR\|\|PID\^1\^5\^1\^\d+\|/,
    ],
    ['3,000 segments', orm251(5, (s) => s.push(...Array.from({ length: 3000 }, (_, i) => `NTE|${i + 1}||note`))), /^ERR\|\|NTE\^\d+\|/],
  ];
  for (const [name, message, err] of cases) {
    const ack = await sendAs(site, daemon, message);
    t.is(msa(ack), 'AE', `${name}: AE`);
    t.regex(errOf(ack) ?? '', err, `${name}: ERR names the place`);
    t.log(`${name}: ${errOf(ack) ?? 'no ERR'}; peak RSS ${Math.round(await peakRssMb(daemon.pid))} MB`);
  }
  const after = await peakRssMb(daemon.pid);
  t.log(`peak RSS ${Math.round(before)} MB before, ${Math.round(after)} MB after the five messages`);
  t.true(after - before < 100, `peak RSS grew by ${Math.round(after - before)} MB`);
  t.is(await served(t, site, daemon, 'served after the oversized messages'), undefined, 'served after the oversized messages');
  t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
});

test.serial('MSH-3 and MSH-4 are compared as whole HD fields: sub-components and repetitions are refused with AR', async (t) => {
  const { site, daemon } = await startBox(t);
  const forged: Array<[string, (msh: string) => string]> = [
    ['MSH-4 GENHOSP&EVIL', (m) => m.replace('|RIS|GENHOSP|', '|RIS|GENHOSP&EVIL|')],
    ['MSH-4 GENHOSP~OTHER', (m) => m.replace('|RIS|GENHOSP|', '|RIS|GENHOSP~OTHER|')],
    ['MSH-4 GENHOSP^1.2.3^ISO', (m) => m.replace('|RIS|GENHOSP|', '|RIS|GENHOSP^1.2.3^ISO|')],
    ['MSH-3 RIS&EVIL', (m) => m.replace('|RIS|GENHOSP|', '|RIS&EVIL|GENHOSP|')],
    ['MSH-3 RIS~OTHER', (m) => m.replace('|RIS|GENHOSP|', '|RIS~OTHER|GENHOSP|')],
  ];
  for (const [i, [name, edit]] of forged.entries()) {
    const ack = await sendAs(
      site,
      daemon,
      orm251(500 + i, (s) => (s[0] = edit(s[0]!))),
    );
    t.is(msa(ack), 'AR', `${name}: AR`);
  }
  t.is(msa(await sendAs(site, daemon, orm251(600))), 'AA', 'the exact MSH-3/MSH-4 are accepted');
  t.is(await served(t, site, daemon, 'after the attack'), undefined);
  t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
});

/**
 * `openssl s_client -tls1_2` asking for a renegotiation (`R`). s_client prints the server certificate's
 * verification again when a second handshake completed; refused, the connection ends instead.
 */
async function renegotiates(
  port: number,
  client: { cert: string; key: string },
  caFile: string,
): Promise<{ renegotiated: boolean; output: string }> {
  const r = await run(
    'sh',
    [
      '-c',
      `(printf 'R\\n'; sleep 3) | openssl s_client -tls1_2 -connect 127.0.0.1:${port} -servername localhost -CAfile ${caFile} -cert ${client.cert} -key ${client.key} -verify_return_error`,
    ],
    { timeoutMs: 20_000 },
  );
  const output = r.stdout + r.stderr;
  const at = output.indexOf('RENEGOTIATING');
  if (at === -1) throw new Error(`s_client did not try to renegotiate: ${output.slice(-1500)}`);
  return { renegotiated: output.slice(at).includes('verify return:1'), output };
}

async function connectsTls12(port: number, client: { cert: string; key: string }, caFile: string): Promise<boolean> {
  const r = await run(
    'openssl',
    [
      's_client',
      '-tls1_2',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      caFile,
      '-cert',
      client.cert,
      '-key',
      client.key,
      '-verify_return_error',
    ],
    { input: '', timeoutMs: 15_000 },
  );
  return /Cipher is (?!\(NONE\))/.test(r.stdout);
}

test.serial('client-initiated TLS renegotiation is refused on every TLS listener; a fresh connection still works', async (t) => {
  const pki = makeAuditTestPki();
  t.teardown(() => pki.cleanup());
  const { site, daemon } = await startBox(t, (c) => {
    c['audit'] = { pull: { listen: { host: '127.0.0.1', port: 0 }, centralCaFile: pki.centralCa } };
  });
  const ready = JSON.parse(daemon.process.lines.find((l) => l.includes('"edged.ready"'))!) as { auditPull: number };
  const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
  const listeners: Array<[string, number, { cert: string; key: string }, string]> = [
    ['HL7', daemon.ports.hl7, { cert: site.ris.certFile, key: site.ris.keyFile }, site.pki.caCert],
    ['DICOM TLS', daemon.ports.dicomTls, { cert: ct01.certFile!, key: ct01.keyFile! }, site.pki.caCert],
    ['audit pull', ready.auditPull, pki.central, site.pki.caCert],
  ];
  for (const [name, port, client, caFile] of listeners) {
    const r = await renegotiates(port, client, caFile);
    t.false(r.renegotiated, `${name}: renegotiation refused\n${r.output.slice(-1500)}`);
    t.true(await connectsTls12(port, client, caFile), `${name}: a fresh TLS 1.2 connection still works`);
  }
  t.is(await served(t, site, daemon, 'after the attack'), undefined);
  t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
});

/** A RIS certificate from the site CA that expired in 2021 (openssl ca can back-date; x509 -req cannot). */
async function expiredRisCertificate(site: Site, dir: string): Promise<{ cert: string; key: string }> {
  const p = (f: string): string => join(dir, f);
  await writeFile(p('index.txt'), '');
  await writeFile(p('serial'), '1000\n');
  await writeFile(
    p('ca.cnf'),
    [
      '[ca]',
      'default_ca = d',
      '[d]',
      `database = ${p('index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${p('serial')}`,
      'default_md = sha256',
      'policy = p',
      'unique_subject = no',
      '[p]',
      'commonName = supplied',
      'organizationName = optional',
      '',
    ].join('\n'),
  );
  const caKey = join(site.dir, 'pki', 'ca.key');
  const steps: string[][] = [
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      p('expired.key'),
      '-subj',
      '/O=GENHOSP/CN=RIS.GENHOSP',
      '-out',
      p('expired.csr'),
    ],
    [
      'ca',
      '-batch',
      '-config',
      p('ca.cnf'),
      '-cert',
      site.pki.caCert,
      '-keyfile',
      caKey,
      '-in',
      p('expired.csr'),
      '-out',
      p('expired.crt'),
      '-notext',
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20210101000000Z',
    ],
  ];
  for (const args of steps) {
    const r = await run('openssl', args, { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  }
  return { cert: p('expired.crt'), key: p('expired.key') };
}

test.serial('expired and rogue-CA client certificates are audited with the verification reason and the presented subject', async (t) => {
  const { site, daemon } = await startBox(t);
  const dir = await mkdtemp(join(tmpdir(), 'edge-expired-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const expired = await expiredRisCertificate(site, dir);
  const attempts: Array<{ cert: string; key: string }> = [expired, { cert: site.rogue.certFile, key: site.rogue.keyFile }];
  for (const client of attempts) {
    t.false(
      (await connectsTls12(daemon.ports.hl7, client, site.pki.caCert)) &&
        msa(await sendWith(daemon.ports.hl7, client, site.pki.caCert)) === 'AA',
      'refused',
    );
  }
  const rogueSubject = (await run('openssl', ['x509', '-in', site.rogue.certFile, '-noout', '-subject', '-nameopt', 'RFC2253'])).stdout
    .trim()
    .replace(/^subject=/, '');
  t.is(await served(t, site, daemon, 'after the attack'), undefined);
  t.is(await daemon.stop(), 0, 'the first SIGTERM stops the box with 0');
  const refused = (await auditTrail(site)).filter((e) => e.type === 'hl7.peer-refused');
  t.log(refused.map((e) => e.detail).join('\n'));
  t.true(
    refused.some((e) => /CERT_HAS_EXPIRED/.test(e.detail ?? '') && /CN=RIS\.GENHOSP/.test(e.detail ?? '')),
    'the expired certificate: reason and subject',
  );
  const rogueCn = /CN=([^,]+)/.exec(rogueSubject)?.[1] ?? '?';
  t.true(
    refused.some(
      (e) =>
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED/.test(e.detail ?? '') &&
        (e.detail ?? '').includes(`CN=${rogueCn}`),
    ),
    'the rogue-CA certificate: reason and subject',
  );
});

/** Try one order with a given client certificate; undefined when the box closes without an ACK. */
async function sendWith(port: number, client: { cert: string; key: string }, caFile: string): Promise<string | undefined> {
  const [cert, key, ca] = await Promise.all([readFile(client.cert), readFile(client.key), readFile(caFile)]);
  const socket = tls.connect({ host: '127.0.0.1', port, cert, key, ca, servername: 'localhost' });
  socket.on('error', () => undefined);
  const ok = await Promise.race([once(socket, 'secureConnect').then(() => true), once(socket, 'close').then(() => false)]).catch(
    () => false,
  );
  if (!ok) return undefined;
  const reply = await new Promise<string | undefined>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\x1c\r')) resolve(text);
    });
    socket.on('close', () => resolve(undefined));
    socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(ormNew(777)), Buffer.from([0x1c, 0x0d])]));
    setTimeout(() => resolve(undefined), 5000);
  });
  socket.destroy();
  return reply;
}
