// The listener against real DCMTK echoscu, plain and mutual TLS, plus the association policy and binding.
import test from 'ava';
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { DicomListener } from './listener.ts';
import { buildAssociateRq } from './testing/associate-rq.ts';
import { makeDicomTestPki, type DicomTestPki } from '../../test/support/test-pki.ts';
import { runPeer } from './testing/run-peer.ts';
import { ALLOWED_CALLING_AE, startTestListener, TEST_AE_TITLE } from './testing/test-listener.ts';
import { verificationService } from './verification-service.ts';

let workDir = '';
let pki: DicomTestPki;

test.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'edge-dicom-listener-'));
  pki = makeDicomTestPki(workDir);
});

test.after.always(async () => {
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

const echo = (port: number, calling: string, called: string, extra: string[] = []) =>
  runPeer('echoscu', ['-aet', calling, '-aec', called, '-to', '10', '-ta', '10', ...extra, '127.0.0.1', String(port)]);

test('echoscu plain: C-ECHO succeeds and the association is released', async (t) => {
  const s = await startTestListener();
  try {
    const r = await echo(s.port, ALLOWED_CALLING_AE, TEST_AE_TITLE);
    t.is(r.code, 0, r.stderr);
    await s.waitForEvent((e) => e.type === 'association-released');
    const accepted = s.events.find((e) => e.type === 'association-accepted');
    t.like(accepted, { callingAeTitle: ALLOWED_CALLING_AE, calledAeTitle: TEST_AE_TITLE, transport: 'plain', acceptedContexts: 1 });
  } finally {
    await s.listener.stop(1000);
  }
});

test('echoscu plain: a calling AE the policy does not know is rejected and reported', async (t) => {
  const s = await startTestListener();
  try {
    const r = await echo(s.port, 'INTRUDER', TEST_AE_TITLE);
    t.not(r.code, 0);
    t.regex(r.stderr + r.stdout, /Association Rejected|rejected/i);
    const e = await s.waitForEvent((ev) => ev.type === 'association-rejected');
    t.like(e, { type: 'association-rejected', callingAeTitle: 'INTRUDER', result: 1, source: 1, reason: 3 });
  } finally {
    await s.listener.stop(1000);
  }
});

test('echoscu plain: a wrong called AE title is rejected with reason 7', async (t) => {
  const s = await startTestListener();
  try {
    const r = await echo(s.port, ALLOWED_CALLING_AE, 'SOMEONE_ELSE');
    t.not(r.code, 0);
    const e = await s.waitForEvent((ev) => ev.type === 'association-rejected');
    t.like(e, { calledAeTitle: 'SOMEONE_ELSE', result: 1, source: 1, reason: 7 });
  } finally {
    await s.listener.stop(1000);
  }
});

test('echoscu TLS with a client certificate succeeds; the certificate identity reaches the policy', async (t) => {
  const seen: { cn?: string; transport?: string } = {};
  const s = await startTestListener({
    pki,
    onAssociationRequest: (rq) => {
      seen.cn = rq.peerCertificate?.subjectCn;
      seen.transport = rq.transport;
      return {
        accept: true,
        abstractSyntaxes: new Set(['1.2.840.10008.1.1']),
        transferSyntaxes: ['1.2.840.10008.1.2'],
        peer: undefined,
      };
    },
  });
  try {
    const r = await echo(s.port, ALLOWED_CALLING_AE, TEST_AE_TITLE, ['+tls', pki.clientKey, pki.clientCert, '+cf', pki.caCert]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(seen, { cn: 'MODALITY1', transport: 'tls' });
    const accepted = await s.waitForEvent((e) => e.type === 'association-accepted');
    t.like(accepted, { transport: 'tls', peerCertificateCn: 'MODALITY1' });
  } finally {
    await s.listener.stop(1000);
  }
});

test('TLS: no client certificate, a rogue certificate or plain TCP are refused and reported', async (t) => {
  const s = await startTestListener({ pki });
  try {
    const noCert = await runPeer('bash', [
      '-c',
      `echo | timeout 10 openssl s_client -connect 127.0.0.1:${s.port} -CAfile '${pki.caCert}' 2>&1; true`,
    ]);
    t.regex(noCert.stdout, /certificate required|alert|errno|Verify return code: 0/i);
    const first = await s.waitForEvent((e) => e.type === 'tls-handshake-failed');
    t.like(first, { reason: 'NO_CLIENT_CERTIFICATE', remoteAddress: '127.0.0.1' });
    const rogue = await echo(s.port, ALLOWED_CALLING_AE, TEST_AE_TITLE, ['+tls', pki.rogueKey, pki.rogueCert, '+cf', pki.caCert]);
    t.not(rogue.code, 0);
    // The verification code and the presented subject, not the client's reset.
    const second = await s.waitForEvent((e) => e.type === 'tls-handshake-failed' && e !== first);
    t.regex(
      second.type === 'tls-handshake-failed' ? second.reason : '',
      /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_GET_ISSUER_CERT)$/,
    );
    t.regex(second.type === 'tls-handshake-failed' ? (second.subject ?? '') : '', /CN=/);
    const plain = await echo(s.port, ALLOWED_CALLING_AE, TEST_AE_TITLE);
    t.not(plain.code, 0);
    t.false(s.events.some((e) => e.type === 'association-accepted'));
    t.true(s.events.filter((e) => e.type === 'tls-handshake-failed').length >= 2);
    // The listener still serves a good client afterwards.
    const good = await echo(s.port, ALLOWED_CALLING_AE, TEST_AE_TITLE, ['+tls', pki.clientKey, pki.clientCert, '+cf', pki.caCert]);
    t.is(good.code, 0, good.stderr);
  } finally {
    await s.listener.stop(1000);
  }
});

test('the listener binds only 127.0.0.1 when told so', async (t) => {
  const s = await startTestListener();
  try {
    const address = (s.listener as unknown as { port: number }).port;
    t.is(address, s.port);
    const ss = execFileSync('ss', ['-Hltn', `sport = :${s.port}`], { encoding: 'utf8' });
    const locals = ss
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/)[3]);
    t.deepEqual(locals, [`127.0.0.1:${s.port}`]);
  } finally {
    await s.listener.stop(1000);
  }
});

test('binding all interfaces needs an explicit opt-in', (t) => {
  t.throws(
    () =>
      new DicomListener({
        host: '0.0.0.0',
        port: 0,
        transport: 'plain',
        aeTitle: 'EDGE',
        services: [verificationService],
        onAssociationRequest: () => ({ accept: false, result: 1, source: 1, reason: 1, why: 'test' }),
        logger: silentLogger,
      }),
    { instanceOf: TypeError },
  );
});

test('start and stop are idempotent; a source address at its pre-authentication cap: its oldest connection yields to the newest', async (t) => {
  const s = await startTestListener({ maxPreAuthenticationConnectionsPerAddress: 1 });
  try {
    t.is(await s.listener.start(), s.port);
    const first = net.connect(s.port, '127.0.0.1');
    first.on('error', () => {});
    await once(first, 'connect');
    const firstClosed = once(first, 'close');
    const second = net.connect(s.port, '127.0.0.1');
    second.on('error', () => {});
    await once(second, 'connect');
    const refused = await s.waitForEvent((e) => e.type === 'connection-refused');
    t.regex(refused.type === 'connection-refused' ? refused.why : '', /oldest closed/);
    await firstClosed;
    // The newest can still associate.
    second.write(verificationRq());
    const [reply] = (await once(second, 'data')) as [Buffer];
    t.is(reply[0], 0x02, 'A-ASSOCIATE-AC');
    second.destroy();
  } finally {
    await Promise.all([s.listener.stop(1000), s.listener.stop(1000)]);
    await s.listener.stop(1000);
  }
});

function verificationRq(): Buffer {
  return buildAssociateRq({
    calling: ALLOWED_CALLING_AE,
    called: TEST_AE_TITLE,
    contexts: [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
  });
}

test('accepted associations per address are capped: the extra A-ASSOCIATE-RQ is rejected transient, local limit exceeded', async (t) => {
  const s = await startTestListener({ maxAssociationsPerAddress: 1 });
  const sockets: net.Socket[] = [];
  try {
    const replies: Buffer[] = [];
    for (let i = 0; i < 2; i++) {
      const c = net.connect(s.port, '127.0.0.1');
      c.on('error', () => {});
      sockets.push(c);
      await once(c, 'connect');
      c.write(verificationRq());
      replies.push(((await once(c, 'data')) as [Buffer])[0]);
    }
    t.is(replies[0]![0], 0x02, 'the first is accepted');
    // A-ASSOCIATE-RJ: type 3, then result (2 transient), source (3 presentation), reason (2 local limit exceeded).
    t.deepEqual([...replies[1]!.subarray(0, 1), ...replies[1]!.subarray(7, 10)], [0x03, 2, 3, 2]);
    const rejected = await s.waitForEvent((e) => e.type === 'association-rejected');
    t.is(rejected.type === 'association-rejected' ? rejected.why : '', 'max associations per address');
  } finally {
    for (const c of sockets) c.destroy();
    await s.listener.stop(1000);
  }
});

test('a connection that never sends its A-ASSOCIATE-RQ is closed at the pre-authentication deadline', async (t) => {
  const s = await startTestListener({ preAuthenticationTimeoutMs: 300, associationRequestTimeoutMs: 30_000 });
  try {
    const c = net.connect(s.port, '127.0.0.1');
    c.on('error', () => {});
    await once(c, 'connect');
    const started = Date.now();
    await once(c, 'close');
    t.true(Date.now() - started < 3000, `closed after ${Date.now() - started} ms`);
    const refused = await s.waitForEvent((e) => e.type === 'connection-refused');
    t.is(refused.type === 'connection-refused' ? refused.why : '', 'pre-authentication deadline');
  } finally {
    await s.listener.stop(1000);
  }
});

test('stop() aborts associations still open at the deadline', async (t) => {
  const s = await startTestListener({ idleTimeoutMs: 60_000 });
  // A raw client that sends nothing keeps a connection open; stop must still finish.
  const socket = net.connect(s.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume(); // read the A-ABORT and the FIN behind it
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const started = Date.now();
  await s.listener.stop(200);
  await closed;
  t.true(Date.now() - started < 3000);
  t.is(s.listener.associationCount, 0);
});

test('a calling and called AE title padded with NUL instead of space is accepted (trailing NULs are padding)', async (t) => {
  const s = await startTestListener();
  const c = net.connect(s.port, '127.0.0.1');
  c.on('error', () => {});
  try {
    await once(c, 'connect');
    c.write(
      buildAssociateRq({
        calling: ALLOWED_CALLING_AE,
        called: TEST_AE_TITLE,
        aePadding: 'nul',
        contexts: [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
      }),
    );
    const reply = ((await once(c, 'data')) as [Buffer])[0];
    t.is(reply[0], 0x02, 'A-ASSOCIATE-AC');
    const accepted = await s.waitForEvent((e) => e.type === 'association-accepted');
    t.like(accepted, { callingAeTitle: ALLOWED_CALLING_AE, calledAeTitle: TEST_AE_TITLE });
  } finally {
    c.destroy();
    await s.listener.stop(1000);
  }
});
