// The DICOM ports and the worklist under hostile input, against the running daemon and real DCMTK peers:
// idle unauthenticated connections must not keep authenticated modalities out, one order with a value
// that cannot be encoded must not blind the worklist, and control characters from HL7 never reach a
// DICOM text value. Every attack is bounded and on loopback; after each one the clinical path is probed
// and the daemon must stop on the first SIGTERM.
import test from 'ava';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore } from '../../daemon/store/index.ts';
import { findscu } from '../support/dicom-peers.ts';
import { run } from '../support/processes.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { silentConnections } from '../support/loopback-sources.ts';
import { testOrder } from '../support/orders.ts';
import { createSite, Daemon, type SiteInfo } from '../support/site.ts';
import { servingProblem } from '../support/still-serving.ts';
import { poll } from '../support/wait.ts';

const ATTACK_SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
/** Generous for a loaded 2-core machine, far below the 30 s ARTIM the idle connections would hold for. */
const MAX_MS = 8000;

function risClient(site: SiteInfo) {
  return { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
}

async function sendOne(site: SiteInfo, daemon: Daemon, message: string): Promise<string | undefined> {
  const client = await MllpTlsClient.connect(daemon.ports.hl7, risClient(site));
  try {
    return await client.send(message);
  } finally {
    client.close();
  }
}

/** Open `perSource` idle TCP connections from each source; resolves once all are connected. */
const holdIdle = (port: number, perSource: number): Promise<net.Socket[]> => silentConnections(port, ATTACK_SOURCES, perSource);

function allClosed(sockets: readonly net.Socket[], timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const open = (): number => sockets.filter((s) => !s.destroyed && !s.closed).length;
    const timer = setInterval(() => {
      if (open() === 0) {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve(0);
      }
    }, 100);
    const deadline = setTimeout(() => {
      clearInterval(timer);
      resolve(open());
    }, timeoutMs);
  });
}

async function mr01Worklist(
  daemon: Daemon,
  accession: string,
): Promise<{ ms: number; found: boolean; status: string | undefined; text: string }> {
  const t0 = performance.now();
  const r = await findscu({
    port: daemon.ports.dicomPlain,
    callingAe: 'MR01',
    keys: [`AccessionNumber=${accession}`, 'PatientName', 'ScheduledProcedureStepSequence[0].Modality=MR'],
  });
  return {
    ms: performance.now() - t0,
    found: r.responses.some((x) => x['AccessionNumber'] === accession),
    status: r.finalStatus,
    text: r.stdout + r.stderr,
  };
}

test('32 idle connections from other addresses on each DICOM port keep neither CT01 (TLS) nor MR01 (plain) out, and are closed at the pre-authentication deadline', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  const held: net.Socket[] = [];
  try {
    t.is(msa(await sendOne(site, daemon, ormNew(810_001, { modality: 'MR' }))), 'AA');
    const startedAt = performance.now();
    held.push(...(await holdIdle(daemon.ports.dicomTls, 8)), ...(await holdIdle(daemon.ports.dicomPlain, 8)));
    t.is(held.filter((s) => !s.destroyed).length, 64, 'all 64 idle connections are accepted at TCP level');

    // During the attack: CT01 over TLS and the RIS (servingProblem), MR01 over plain from its allowlisted address.
    const probeStarted = performance.now();
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
    const probeMs = performance.now() - probeStarted;
    const mr = await mr01Worklist(daemon, 'ACC810001');
    t.true(mr.found, `MR01 got no worklist during the attack (status ${mr.status ?? 'none'}): ${mr.text.slice(-800)}`);
    t.true(mr.ms < MAX_MS, `MR01's query took ${Math.round(mr.ms)} ms`);

    // The box closes what never authenticated at its pre-authentication deadline (10 s by default), not at ARTIM.
    const stillOpen = await allClosed(held, 20_000);
    t.log(
      `during the attack: RIS order + CT01 TLS query ${Math.round(probeMs)} ms, MR01 plain query ${Math.round(mr.ms)} ms; idle connections closed ${Math.round(performance.now() - startedAt)} ms after connect`,
    );
    t.is(stillOpen, 0, `${stillOpen} idle connections still open ${Math.round(performance.now() - startedAt)} ms after connect`);
    t.true(performance.now() - startedAt < 25_000);

    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
    const after = await mr01Worklist(daemon, 'ACC810001');
    t.true(after.found, after.text.slice(-800));
  } finally {
    for (const s of held) s.destroy();
    t.is(await daemon.stop(), 0);
    await site.cleanup();
  }
});

test('idle connections never count against authenticated associations: CT01 gets in while the pre-authentication pool is full', async (t) => {
  // A smaller pool than the attack, so the pool's own bound is what the attack meets.
  const site = await createSite((c) => {
    c['dicom'].preAuthentication = { maxConnections: 16, maxConnectionsPerAddress: 4 };
  });
  const daemon = await Daemon.start(site.configFile);
  const held: net.Socket[] = [];
  try {
    held.push(...(await holdIdle(daemon.ports.dicomTls, 8)));
    await poll(() => held.filter((s) => !s.destroyed && !s.closed).length <= 16, 5000, 50);
    t.true(held.filter((s) => !s.destroyed && !s.closed).length <= 16, 'the pool holds at most 16 unauthenticated connections');
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
    const refused = daemon.process.events('dicom.connection-refused');
    t.true(refused.length >= 16, `${refused.length} refusals logged`);
    t.true(refused.every((e) => typeof e['remoteAddress'] === 'string' && typeof e['why'] === 'string'));
  } finally {
    for (const s of held) s.destroy();
    t.is(await daemon.stop(), 0);
    await site.cleanup();
  }
});

/** An ORM^O01 NW whose OBR-4.2 (Requested Procedure Description, LO) and PID-5 can be replaced. */
function ormWith(n: number, o: { description?: string; patientName?: string; version?: string }): string {
  const base = ormNew(n).split('\r');
  return base
    .map((seg) => {
      if (seg.startsWith('MSH|') && o.version !== undefined) return seg.replace(/\|2\.3\.1$/, `|${o.version}`);
      if (seg.startsWith('PID|') && o.patientName !== undefined) return seg.replace(`TEST^PATIENT${n}`, o.patientName);
      if (seg.startsWith('OBR|') && o.description !== undefined) return seg.replace(`PCT^CT PROCEDURE^L`, `PCT^${o.description}^L`);
      return seg;
    })
    .join('\r');
}

function errSegment(ack: string | undefined): string {
  return ack?.split(/[\r\n]+/).find((s) => s.startsWith('ERR|')) ?? '';
}

test('an order with a text value too long for its VR is refused with AE and an ERR naming the field', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  try {
    const longDescription = await sendOne(site, daemon, ormWith(820_001, { description: 'D'.repeat(70_000), version: '2.5.1' }));
    t.is(msa(longDescription), 'AE');
    t.regex(errSegment(longDescription), /^ERR\|\|OBR\^1\^4\^1\^2\|102\^/);
    // 25,000 escaped subcomponent separators: 125,000 bytes on the wire, 75,000 characters once unescaped.
    const longName = await sendOne(site, daemon, ormWith(820_002, { patientName: `${'AB\\T\\'.repeat(25_000)}^JANE` }));
    t.is(msa(longName), 'AE');
    t.regex(errSegment(longName), /^ERR\|PID\^1\^5\^102&/);
    const r = await findscu({
      port: daemon.ports.dicomTls,
      callingAe: 'CT01',
      tls: {
        certFile: site.modalities.find((m) => m.aeTitle === 'CT01')!.certFile!,
        keyFile: site.modalities.find((m) => m.aeTitle === 'CT01')!.keyFile!,
        caFile: site.pki.caCert,
      },
      keys: ['AccessionNumber=ACC82000*', 'ScheduledProcedureStepSequence[0].Modality=CT'],
      extra: ['-xe'],
    });
    t.is(r.finalStatus, 'Success');
    t.is(r.responses.length, 0, 'nothing of the refused orders is on the worklist');
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
  } finally {
    t.is(await daemon.stop(), 0);
    await site.cleanup();
  }
});

async function storePath(site: SiteInfo): Promise<{ dataDir: string; keyPath: string }> {
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as { keys: { file: { path: string } }; dataDir: string };
  const abs = (p: string): string => (p.startsWith('/') ? p : join(site.dir, p));
  return { dataDir: abs(config.dataDir), keyPath: abs(config.keys.file.path) };
}

/** The audit records of one type, read from the stopped box's encrypted store. */
async function auditRecordsOf(site: SiteInfo, type: string): Promise<AuditRecord[]> {
  const { dataDir, keyPath } = await storePath(site);
  const store = await openStore({ dataDir, keySource: new FileKeySource(keyPath), replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    const found: AuditRecord[] = [];
    for await (const r of store.audit.records() as AsyncIterable<AuditRecord>) if (r.event.type === type) found.push(r);
    return found;
  } finally {
    await store.close();
  }
}

test('an item stored by an earlier version with free text too long for its VR is answered in both VR encodings, the text cut to the VR, and nothing is skipped', async (t) => {
  const site = await createSite();
  // Stored directly, as an earlier version that acknowledged such orders left them in the store.
  const { dataDir, keyPath } = await storePath(site);
  {
    const daemon = await Daemon.start(site.configFile);
    t.is(await daemon.stop(), 0);
  }
  const store = await openStore({ dataDir, keySource: new FileKeySource(keyPath), replayWindowMs: 3_600_000, logger: silentLogger });
  try {
    for (let i = 1; i <= 20; i++) {
      const order = testOrder(830_000 + i, {
        placerOrderNumber: `PLC83${i}`,
        ...(i === 7 ? { requestedProcedureDescription: 'X'.repeat(70_000) } : {}),
      });
      const step = order.steps[0]!;
      const time = `${String(8 + Math.floor(i / 4)).padStart(2, '0')}${String((i % 4) * 15).padStart(2, '0')}00`;
      const outcome = await store.orders.apply([{ type: 'order-upsert', order: { ...order, steps: [{ ...step, startTime: time }] } }], {
        sender: 'RIS^GENHOSP',
        controlId: `PRE${i}`,
        receivedAt: Date.now(),
      });
      t.is(outcome.status, 'committed');
    }
  } finally {
    await store.close();
  }

  const daemon = await Daemon.start(site.configFile);
  try {
    const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
    for (const syntax of ['-xe', '-xi']) {
      const r = await findscu({
        port: daemon.ports.dicomTls,
        callingAe: 'CT01',
        tls: { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert },
        keys: ['AccessionNumber=ACC83*', 'RequestedProcedureDescription', 'ScheduledProcedureStepSequence[0].Modality=CT'],
        extra: [syntax],
      });
      t.is(r.finalStatus, 'Success', `${syntax}: ${(r.stdout + r.stderr).slice(-600)}`);
      // The 70,000-character description is cut to LO's 64 characters in the answer (the order keeps it):
      // the item fits Explicit VR's 16-bit length too.
      t.is(r.responses.length, 20, `${syntax}: ${r.responses.length} items`);
      const long = r.responses.find((x) => x['AccessionNumber'] === 'ACC830007');
      t.is(long?.['RequestedProcedureDescription'], 'X'.repeat(64), syntax);
    }
    t.deepEqual(daemon.process.events('worklist.item-skipped'), []);
    t.false(daemon.process.lines.join('\n').includes('XXXXXXXX'), 'the value is not logged');
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
  } finally {
    t.is(await daemon.stop(), 0);
  }
  try {
    t.deepEqual(await auditRecordsOf(site, 'worklist.item-skipped'), []);
  } finally {
    await site.cleanup();
  }
});

test('NUL and C1 control characters from HL7 are refused with AE naming the field; line breaks in a description become spaces', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  try {
    // \X00\ and \X85\ (NEL, a C1 control) decode to the control characters themselves.
    const nul = await sendOne(site, daemon, ormWith(840_001, { patientName: 'DOE\\X00\\EVIL^JANE' }));
    t.is(msa(nul), 'AE');
    t.regex(errSegment(nul), /^ERR\|PID\^1\^5\^102&/);
    const c1 = await sendOne(
      site,
      daemon,
      `${ormWith(840_002, { description: 'CT\\XC285\\HEAD' })}`.replace('|P|2.3.1', '|P|2.3.1||||||UNICODE UTF-8'),
    );
    t.is(msa(c1), 'AE', c1);
    t.regex(errSegment(c1), /^ERR\|OBR\^1\^4\^102&/);
    const lines = await sendOne(site, daemon, ormWith(840_003, { description: 'CT HEAD\\.br\\WITH CONTRAST' }));
    t.is(msa(lines), 'AA');
    const ct01 = site.modalities.find((m) => m.aeTitle === 'CT01')!;
    const r = await findscu({
      port: daemon.ports.dicomTls,
      callingAe: 'CT01',
      tls: { certFile: ct01.certFile!, keyFile: ct01.keyFile!, caFile: site.pki.caCert },
      keys: ['AccessionNumber=ACC840003', 'RequestedProcedureDescription', 'ScheduledProcedureStepSequence[0].Modality=CT'],
    });
    t.is(r.responses[0]?.['RequestedProcedureDescription'], 'CT HEAD WITH CONTRAST');
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
  } finally {
    t.is(await daemon.stop(), 0);
    await site.cleanup();
  }
});

async function tlsAttempt(port: number, o: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<void> {
  const s = tls.connect({ host: '127.0.0.1', port, ...o, servername: 'localhost' });
  s.on('error', () => {});
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
}

test('a rogue-CA client certificate on the DICOM TLS port is audited with the verification reason and the presented subject', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  try {
    const [cert, key, ca] = await Promise.all([readFile(site.rogue.certFile), readFile(site.rogue.keyFile), readFile(site.pki.caCert)]);
    await tlsAttempt(daemon.ports.dicomTls, { cert, key, ca });
    const e = await daemon.process.waitForEvent('dicom.tls-handshake-failed', 10_000);
    t.regex(String(e['reason']), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED/);
    t.is(e['remoteAddress'], '127.0.0.1');
    t.regex(String(e['subject']), /CN=/);
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
  } finally {
    t.is(await daemon.stop(), 0);
    await site.cleanup();
  }
});

/** A client certificate for CT01's CN from the site CA that expired in 2020 (`openssl ca` can backdate). */
async function expiredCt01Certificate(site: SiteInfo): Promise<{ cert: Buffer; key: Buffer; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-expired-'));
  const caKey = join(site.dir, 'pki', 'ca.key');
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '01\n');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = d',
      '[d]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = p',
      'unique_subject = no',
      '[p]',
      'commonName = supplied',
      '[ext]',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const openssl = async (args: string[]): Promise<void> => {
    const r = await run('openssl', args, { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  await openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'leaf.key'),
    '-out',
    join(dir, 'leaf.csr'),
    '-subj',
    '/CN=CT01.GENHOSP',
  ]);
  await openssl([
    'ca',
    '-batch',
    '-config',
    join(dir, 'ca.cnf'),
    '-cert',
    site.pki.caCert,
    '-keyfile',
    caKey,
    '-in',
    join(dir, 'leaf.csr'),
    '-out',
    join(dir, 'leaf.crt'),
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-extensions',
    'ext',
    '-notext',
  ]);
  const [cert, key] = await Promise.all([readFile(join(dir, 'leaf.crt')), readFile(join(dir, 'leaf.key'))]);
  return { cert, key, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('an expired client certificate on the DICOM TLS port is audited as CERT_HAS_EXPIRED with the presented subject', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  const expired = await expiredCt01Certificate(site);
  try {
    await tlsAttempt(daemon.ports.dicomTls, { cert: expired.cert, key: expired.key, ca: await readFile(site.pki.caCert) });
    const e = await daemon.process.waitForEvent('dicom.tls-handshake-failed', 10_000);
    t.is(e['reason'], 'CERT_HAS_EXPIRED');
    t.is(e['subject'], 'CN=CT01.GENHOSP');
    t.is(await servingProblem(site, daemon, MAX_MS), undefined);
  } finally {
    t.is(await daemon.stop(), 0);
    await expired.cleanup();
  }
  // The audit record (encrypted at rest) carries the reason and the subject too.
  try {
    const found = await auditRecordsOf(site, 'dicom.tls-handshake-failed');
    t.is(found.length, 1);
    t.is(found[0]?.event.detail, 'CERT_HAS_EXPIRED; presented CN=CT01.GENHOSP');
    t.is(found[0]?.event.participants[0]?.address, '127.0.0.1');
  } finally {
    await site.cleanup();
  }
});
