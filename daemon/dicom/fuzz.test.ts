// Hostile input on the wire: random bytes, truncated PDUs, huge announced lengths. The listener must
// close or A-ABORT the connection, never crash or allocate what the header claims, and keep serving.
import test from 'ava';
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { buildAssociateRq } from './testing/associate-rq.ts';
import { runPeer } from './testing/run-peer.ts';
import { ALLOWED_CALLING_AE, startTestListener, TEST_AE_TITLE } from './testing/test-listener.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

/** Send `chunks` (then stay open) and collect what the server answers until it closes. */
function exchange(port: number, chunks: Buffer[], afterFirstReply = false, closeOnReply = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let sentRest = false;
    socket.on('connect', () => {
      socket.write(chunks[0] ?? Buffer.alloc(0));
      if (!afterFirstReply) for (const c of chunks.slice(1)) socket.write(c);
    });
    socket.on('data', (d: Buffer) => {
      received.push(d);
      if (closeOnReply) socket.end();
      if (afterFirstReply && !sentRest) {
        sentRest = true;
        for (const c of chunks.slice(1)) socket.write(c);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      reject(err);
    });
    socket.on('close', () => resolve(Buffer.concat(received)));
  });
}

const echoOk = async (port: number) =>
  (await runPeer('echoscu', ['-aet', ALLOWED_CALLING_AE, '-aec', TEST_AE_TITLE, '-to', '5', '127.0.0.1', String(port)])).code;

const header = (type: number, length: number): Buffer => {
  const b = Buffer.alloc(6);
  b.writeUInt8(type, 0);
  b.writeUInt32BE(length, 2);
  return b;
};

const rq = () =>
  buildAssociateRq({
    calling: ALLOWED_CALLING_AE,
    called: TEST_AE_TITLE,
    contexts: [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
  });

test('an A-ASSOCIATE-RQ header announcing 1 GiB is refused with A-ABORT before any body arrives', async (t) => {
  const s = await startTestListener();
  try {
    const before = process.memoryUsage().arrayBuffers;
    const reply = await exchange(s.port, [header(0x01, 1 << 30), Buffer.alloc(1000)]);
    t.is(reply[0], 0x07, 'A-ABORT');
    t.true(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    t.is(await echoOk(s.port), 0);
  } finally {
    await s.listener.stop(1000);
  }
});

test('a P-DATA-TF announcing 1 GiB after association is refused with A-ABORT', async (t) => {
  const s = await startTestListener();
  try {
    const reply = await exchange(s.port, [rq(), header(0x04, 1 << 30), Buffer.alloc(100)], true);
    t.is(reply[0], 0x02, 'A-ASSOCIATE-AC first');
    const acLength = reply.readUInt32BE(2);
    t.is(reply[6 + acLength], 0x07, 'then A-ABORT');
    const aborted = await s.waitForEvent((e) => e.type === 'association-aborted');
    t.like(aborted, { by: 'local', why: 'EDGE_DICOM_PDU_TOO_LARGE' });
    t.is(await echoOk(s.port), 0);
  } finally {
    await s.listener.stop(1000);
  }
});

test('a truncated A-ASSOCIATE-RQ is cut by the ARTIM timer', async (t) => {
  const s = await startTestListener({ associationRequestTimeoutMs: 300 });
  try {
    const full = rq();
    const reply = await exchange(s.port, [full.subarray(0, full.length - 10)]);
    t.true(reply.length === 0 || reply[0] === 0x07);
    t.is(await echoOk(s.port), 0);
  } finally {
    await s.listener.stop(1000);
  }
});

test('malformed PDUs: bad PDV lengths, unknown PDU types, garbage commands', async (t) => {
  const s = await startTestListener();
  try {
    const badPdv = Buffer.concat([header(0x04, 6), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 3])]);
    const garbageCommand = Buffer.concat([header(0x04, 10), Buffer.from([0, 0, 0, 6, 1, 3, 1, 2, 3, 4])]);
    const wrongContext = Buffer.concat([header(0x04, 10), Buffer.from([0, 0, 0, 6, 9, 3, 1, 2, 3, 4])]);
    for (const evil of [badPdv, garbageCommand, wrongContext, header(0x09, 0), header(0x01, 4)]) {
      const reply = await exchange(s.port, [rq(), evil], true);
      t.is(reply[0], 0x02);
      t.is(reply[6 + reply.readUInt32BE(2)], 0x07);
    }
    t.is(await echoOk(s.port), 0);
  } finally {
    await s.listener.stop(1000);
  }
});

test('random bytes, before and after association, never crash the listener', async (t) => {
  const random = seededRandom(t);
  const s = await startTestListener({ associationRequestTimeoutMs: 200, idleTimeoutMs: 200 });
  try {
    for (let i = 0; i < 60; i++) {
      const noise = random.bytes(1 + random.int(300));
      // Half the runs look like a PDU of a plausible type, to get past the first checks.
      if (i % 2 === 0) noise[0] = 1 + (i % 7);
      const chunks = i % 3 === 0 ? [rq(), noise] : [noise];
      await exchange(s.port, chunks, i % 3 === 0);
    }
    // Random splits of a valid exchange still work: feed a real RQ one byte at a time.
    const full = rq();
    const reply = await exchange(
      s.port,
      [...full].map((b) => Buffer.from([b])),
      false,
      true,
    );
    t.is(reply[0], 0x02);
    t.is(await echoOk(s.port), 0);
  } finally {
    await s.listener.stop(1000);
  }
});
