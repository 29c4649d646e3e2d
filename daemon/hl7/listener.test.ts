import test from 'ava';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { silentLogger } from '../core/log.ts';
import type { MessageReceipt, OrderCommand, WorklistItem } from '../core/order.ts';
import type { ApplyOutcome, OrderRepository } from '../core/ports.ts';
import { Hl7Listener } from './listener.ts';
import type { Hl7ListenerEvent, Hl7ListenerOptions } from './listener.ts';
import { parseHl7Message } from './message.ts';
import type { Hl7Message } from './message.ts';
import { encodeMllpFrame, MllpDecoder } from './mllp-framing.ts';
import { PEERS, HL7_FIXTURES } from '../../test/support/paths.ts';

const run = promisify(execFile);
const fixture = (name: string): Buffer => readFileSync(join(HL7_FIXTURES, name));

/** Test double of the OrderRepository port: dedupes by sender+control id, can be slowed or failed. */
class InMemoryOrderRepositoryForTests implements OrderRepository {
  readonly applied: { commands: readonly OrderCommand[]; receipt: MessageReceipt }[] = [];
  readonly #seen = new Set<string>();
  gate: Promise<void> | undefined;
  failWith: Error | undefined;
  onApply: (() => void) | undefined;

  async apply(commands: readonly OrderCommand[], receipt: MessageReceipt): Promise<ApplyOutcome> {
    this.onApply?.();
    if (this.gate !== undefined) await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    const key = `${receipt.sender}\u0000${receipt.controlId}`;
    if (this.#seen.has(key)) return { status: 'duplicate' };
    this.#seen.add(key);
    this.applied.push({ commands, receipt });
    return { status: 'committed', changedItems: commands.length, unknownOrders: 0 };
  }

  async *worklist(): AsyncIterable<WorklistItem> {}
}

let pki = '';
const pem = (name: string): Buffer => readFileSync(join(pki, 'ec', name));

test.before(async () => {
  pki = mkdtempSync(join(tmpdir(), 'hl7-pki-'));
  await run(`${PEERS}/dicom/make-pki.sh`, [pki], { timeout: 60_000 });
});
test.after.always(() => {
  if (pki !== '') rmSync(pki, { recursive: true, force: true });
});

interface Harness {
  listener: Hl7Listener;
  port: number;
  repo: InMemoryOrderRepositoryForTests;
  events: Hl7ListenerEvent[];
  nextEvent: (type: Hl7ListenerEvent['type']) => Promise<Hl7ListenerEvent>;
}

async function startListener(overrides: Partial<Hl7ListenerOptions> = {}): Promise<Harness> {
  const repo = new InMemoryOrderRepositoryForTests();
  const events: Hl7ListenerEvent[] = [];
  const waiters: { type: string; resolve: (e: Hl7ListenerEvent) => void }[] = [];
  const listener = new Hl7Listener({
    host: '127.0.0.1',
    port: 0,
    tls: { ca: pem('ca.crt'), cert: pem('server.crt'), key: pem('server.key') },
    maxFrameBytes: 1 << 20,
    idleTimeoutMs: 10_000,
    maxConnections: 10,
    maxConnectionsPerPeer: 4,
    ackWriteTimeoutMs: 5_000,
    identifyPeer: ({ certificate }) =>
      certificate.subjectCN === 'MODALITY1'
        ? { peer: { name: 'ris', sendingApplication: 'RIS', sendingFacility: 'GENHOSP' } }
        : { refused: 'unknown-certificate' },
    repository: repo,
    logger: silentLogger,
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.filter((x) => x.type === e.type)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    },
    ...overrides,
  });
  const port = await listener.start();
  const nextEvent = (type: Hl7ListenerEvent['type']): Promise<Hl7ListenerEvent> => {
    const seen = events.find((e) => e.type === type);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ type, resolve }));
  };
  return { listener, port, repo, events, nextEvent };
}

class Client {
  readonly socket: tls.TLSSocket;
  readonly #decoder = new MllpDecoder({ maxFrameBytes: 1 << 20 });
  readonly #acks: Buffer[] = [];
  #waiting: ((b: Buffer) => void) | undefined;
  received = 0;
  readonly closed: Promise<void>;

  constructor(port: number, withCert = true, name = 'client') {
    this.socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pem('ca.crt'),
      ...(withCert ? { cert: pem(`${name}.crt`), key: pem(`${name}.key`) } : {}),
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      for (const f of this.#decoder.push(chunk)) {
        if (this.#waiting !== undefined) {
          const w = this.#waiting;
          this.#waiting = undefined;
          w(f);
        } else this.#acks.push(f);
      }
    });
  }

  async ready(): Promise<void> {
    await once(this.socket, 'secureConnect');
  }

  send(payload: Buffer): void {
    this.socket.write(encodeMllpFrame(payload));
  }

  ack(): Promise<Hl7Message> {
    const queued = this.#acks.shift();
    if (queued !== undefined) return Promise.resolve(parseHl7Message(queued));
    return new Promise((resolve, reject) => {
      this.#waiting = (b) => resolve(parseHl7Message(b));
      void this.closed.then(() => reject(new Error('connection closed before an ACK')));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

async function exchange(port: number, payload: Buffer): Promise<Hl7Message> {
  const c = new Client(port);
  await c.ready();
  c.send(payload);
  const ack = await c.ack();
  c.close();
  return ack;
}

test.serial('AA only after apply resolves', async (t) => {
  const h = await startListener();
  let release!: () => void;
  h.repo.gate = new Promise((r) => (release = r));
  const applying = new Promise<void>((r) => (h.repo.onApply = r));
  const c = new Client(h.port);
  await c.ready();
  c.send(fixture('orm-o01-new-ct.hl7'));
  await applying;
  // Give the socket a chance to deliver anything that was (wrongly) written before the commit.
  await new Promise((r) => setImmediate(r));
  t.is(c.received, 0);
  release();
  const ack = await c.ack();
  t.is(ack.get('MSA', 1), 'AA');
  t.is(ack.get('MSA', 2), 'MSG00001');
  t.is(h.repo.applied.length, 1);
  t.is(h.repo.applied[0]!.receipt.sender, 'RIS^GENHOSP');
  const committed = await h.nextEvent('order-committed');
  t.like(committed, { controlId: 'MSG00001', commandTypes: ['order-upsert'] });
  c.close();
  await h.listener.stop(1000);
});

test.serial('messages on one connection are answered in order; every fixture gets its expected code', async (t) => {
  const h = await startListener();
  const c = new Client(h.port);
  await c.ready();
  const names = [
    'orm-o01-new-ct.hl7',
    'orm-o01-new-mr-escapes.hl7',
    'omi-o23-new-us.hl7',
    'adt-a08-update.hl7',
    'adt-a40-merge.hl7',
    'orm-o01-cancel.hl7',
    'bad-missing-obr.hl7',
  ];
  c.socket.write(Buffer.concat(names.map((n) => encodeMllpFrame(fixture(n)))));
  const codes: string[] = [];
  for (const n of names) {
    const ack = await c.ack();
    t.is(ack.get('MSA', 2), parseHl7Message(fixture(n)).controlId);
    codes.push(ack.get('MSA', 1));
  }
  t.deepEqual(codes, ['AA', 'AA', 'AA', 'AA', 'AA', 'AA', 'AE']);
  t.is(h.repo.applied.length, 6);
  c.close();
  await h.listener.stop(1000);
});

test.serial('AE with ERR naming OBR for bad-missing-obr; nothing applied', async (t) => {
  const h = await startListener();
  const ack = await exchange(h.port, fixture('bad-missing-obr.hl7'));
  t.is(ack.get('MSA', 1), 'AE');
  t.is(ack.get('ERR', 1, 1, 1), 'OBR');
  t.is(ack.get('ERR', 1, 1, 4, 1), '100');
  t.is(h.repo.applied.length, 0);
  t.like(await h.nextEvent('invalid-message'), { controlId: 'MSG00007', condition: 100, location: 'OBR' });
  await h.listener.stop(1000);
});

test.serial('AE with ERR naming OBR-18 for a 22-character accession number (SH holds 16); nothing applied', async (t) => {
  const h = await startListener();
  const long = Buffer.from(
    fixture('orm-o01-new-ct.hl7')
      .toString('latin1')
      .replace('|ACC0001|', `|${'A'.repeat(22)}|`),
    'latin1',
  );
  const ack = await exchange(h.port, long);
  t.is(ack.get('MSA', 1), 'AE');
  // v2.3.1: ERR-1 is segment ^ sequence ^ field ^ code & text & table.
  t.deepEqual([ack.get('ERR', 1, 1, 1), ack.get('ERR', 1, 1, 3), ack.get('ERR', 1, 1, 4, 1)], ['OBR', '18', '102']);
  t.is(h.repo.applied.length, 0);
  t.like(await h.nextEvent('invalid-message'), { code: 'EDGE_HL7_VALUE_TOO_LONG', location: 'OBR-18' });
  await h.listener.stop(1000);
});

test.serial('free text of 20,000 characters is accepted whole (AA) and the cut its worklist answers make is counted', async (t) => {
  const h = await startListener();
  const long = 'D'.repeat(20_000);
  const message = Buffer.from(
    fixture('orm-o01-new-ct.hl7').toString('latin1').replace('CTCHEST^CT CHEST W/O CONTRAST^L|||', `CTCHEST^${long}^L|||`),
    'latin1',
  );
  t.is((await exchange(h.port, message)).get('MSA', 1), 'AA');
  const applied = h.repo.applied[0]?.commands[0];
  t.is(applied?.type === 'order-upsert' ? applied.order.requestedProcedureDescription : '', long, 'the order keeps the full text');
  const committed = await h.nextEvent('order-committed');
  t.true(committed.type === 'order-committed' && committed.cutValues >= 2, JSON.stringify({ ...committed, subjects: undefined }));
  await h.listener.stop(1000);
});

test.serial('AR for a sender the peer is not allowed to be', async (t) => {
  const h = await startListener();
  const forged = Buffer.from(fixture('adt-a08-update.hl7').toString('latin1').replace('MSH|^~\\&|RIS|', 'MSH|^~\\&|OTHER|'), 'latin1');
  const ack = await exchange(h.port, forged);
  t.is(ack.get('MSA', 1), 'AR');
  t.is(ack.get('ERR', 1, 1, 3), '3');
  t.is(h.repo.applied.length, 0);
  t.like(await h.nextEvent('sender-mismatch'), { peer: 'ris', controlId: 'MSG00005', claimed: 'OTHER^GENHOSP' });
  await h.listener.stop(1000);
});

test.serial('AR 205 for a duplicate control id', async (t) => {
  const h = await startListener();
  t.is((await exchange(h.port, fixture('adt-a08-update.hl7'))).get('MSA', 1), 'AA');
  const again = await exchange(h.port, fixture('adt-a08-update.hl7'));
  t.is(again.get('MSA', 1), 'AR');
  t.is(again.get('ERR', 1, 1, 4, 1), '205');
  t.like(await h.nextEvent('duplicate'), { controlId: 'MSG00005' });
  await h.listener.stop(1000);
});

test.serial('AR 200/201 for unsupported message types', async (t) => {
  const h = await startListener();
  const oru = Buffer.from(fixture('adt-a08-update.hl7').toString('latin1').replace('ADT^A08', 'ORU^R01'), 'latin1');
  const a03 = Buffer.from(fixture('adt-a08-update.hl7').toString('latin1').replace('ADT^A08', 'ADT^A03'), 'latin1');
  const r1 = await exchange(h.port, oru);
  t.is(r1.get('MSA', 1), 'AR');
  t.is(r1.get('ERR', 1, 1, 4, 1), '200');
  const r2 = await exchange(h.port, a03);
  t.is(r2.get('ERR', 1, 1, 4, 1), '201');
  t.like(await h.nextEvent('unsupported-message'), { messageType: 'ORU^R01^2.3.1', condition: 200 });
  await h.listener.stop(1000);
});

test.serial('AE 207 when the store fails; the resend is accepted', async (t) => {
  const h = await startListener();
  h.repo.failWith = new Error('disk full');
  const ack = await exchange(h.port, fixture('adt-a08-update.hl7'));
  t.is(ack.get('MSA', 1), 'AE');
  t.is(ack.get('ERR', 1, 1, 4, 1), '207');
  h.repo.failWith = undefined;
  t.is((await exchange(h.port, fixture('adt-a08-update.hl7'))).get('MSA', 1), 'AA');
  await h.listener.stop(1000);
});

test.serial('AR for an unsupported character set', async (t) => {
  const h = await startListener();
  const jis = Buffer.from(fixture('orm-o01-new-ct.hl7').toString('latin1').replace('8859/1', 'ISO IR87'), 'latin1');
  const ack = await exchange(h.port, jis);
  t.is(ack.get('MSA', 1), 'AR');
  t.is(ack.get('ERR', 1, 1, 3), '18');
  await h.listener.stop(1000);
});

test.serial('a client without a certificate is refused', async (t) => {
  const h = await startListener();
  const c = new Client(h.port, false);
  await c.closed;
  t.is(c.received, 0);
  t.like(await h.nextEvent('peer-refused'), { remoteAddress: '127.0.0.1', reason: 'NO_CLIENT_CERTIFICATE' });
  await h.listener.stop(1000);
});

test.serial('a certificate the peer policy does not know is refused', async (t) => {
  const h = await startListener();
  const c = new Client(h.port, true, 'peer');
  await c.closed;
  t.like(await h.nextEvent('peer-refused'), { reason: 'unknown-certificate' });
  await h.listener.stop(1000);
});

test.serial('garbage closes the connection without an answer; a new connection works', async (t) => {
  const h = await startListener();
  const c = new Client(h.port);
  await c.ready();
  c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.closed;
  t.is(c.received, 0);
  t.like(await h.nextEvent('framing-error'), { code: 'EDGE_HL7_FRAME_INVALID' });
  t.is((await exchange(h.port, fixture('orm-o01-new-ct.hl7'))).get('MSA', 1), 'AA');
  await h.listener.stop(1000);
});

test.serial('a 10 MB frame closes the connection', async (t) => {
  const h = await startListener();
  const c = new Client(h.port);
  await c.ready();
  c.socket.write(Buffer.from([0x0b]));
  c.socket.write(Buffer.alloc(10 * 1024 * 1024, 0x41));
  await c.closed;
  t.is(c.received, 0);
  t.like(await h.nextEvent('framing-error'), { code: 'EDGE_HL7_FRAME_TOO_LARGE' });
  await h.listener.stop(1000);
});

test.serial('an idle connection is closed', async (t) => {
  const h = await startListener({ idleTimeoutMs: 200 });
  const c = new Client(h.port);
  await c.ready();
  await c.closed;
  t.like(await h.nextEvent('connection-closed'), { reason: 'idle-timeout' });
  await h.listener.stop(1000);
});

test.serial('per-peer connection cap: the oldest idle connection yields to the newest', async (t) => {
  const h = await startListener({ maxConnectionsPerPeer: 1 });
  const first = new Client(h.port);
  await first.ready();
  // The first connection is registered once it has been answered.
  first.send(fixture('adt-a08-update.hl7'));
  await first.ack();
  const second = new Client(h.port);
  await second.ready();
  await first.closed;
  t.like(await h.nextEvent('connection-superseded'), { peer: 'ris' });
  second.send(fixture('orm-o01-new-ct.hl7'));
  t.is((await second.ack()).get('MSA', 1), 'AA');
  second.close();
  await h.listener.stop(1000);
});

test.serial('per-peer connection cap: refused while every connection of the peer has a message in flight', async (t) => {
  const h = await startListener({ maxConnectionsPerPeer: 1 });
  let release!: () => void;
  h.repo.gate = new Promise((r) => (release = r));
  const applying = new Promise<void>((r) => (h.repo.onApply = r));
  const first = new Client(h.port);
  await first.ready();
  first.send(fixture('orm-o01-new-ct.hl7'));
  await applying;
  const second = new Client(h.port);
  await second.closed;
  t.like(await h.nextEvent('peer-refused'), { reason: 'peer-connection-limit', peer: 'ris' });
  release();
  t.is((await first.ack()).get('MSA', 1), 'AA');
  first.close();
  await first.closed;
  await h.listener.stop(1000);
});

/** Write `byte` every 100 ms until the box closes the connection; how long that took. */
async function msUntilClosedWhileDripping(c: Client, byte: string): Promise<number> {
  const started = Date.now();
  const drip = setInterval(() => c.socket.write(byte), 100);
  try {
    await c.closed;
  } finally {
    clearInterval(drip);
  }
  return Date.now() - started;
}

test.serial('a frame not completed within frameTimeoutMs closes the connection, however often bytes come', async (t) => {
  const h = await startListener({ frameTimeoutMs: 600, idleTimeoutMs: 10_000 });
  const c = new Client(h.port);
  await c.ready();
  c.socket.write(Buffer.from([0x0b]));
  const took = await msUntilClosedWhileDripping(c, 'M');
  t.true(took >= 500 && took < 5000, `closed after ${took} ms`);
  t.like(await h.nextEvent('framing-error'), { code: 'EDGE_HL7_FRAME_TIMEOUT' });
  await h.listener.stop(1000);
});

test.serial('CR/LF padding between frames does not keep an idle connection open', async (t) => {
  const h = await startListener({ idleTimeoutMs: 500 });
  const c = new Client(h.port);
  await c.ready();
  const took = await msUntilClosedWhileDripping(c, '\r');
  t.true(took >= 400 && took < 5000, `closed after ${took} ms`);
  t.like(await h.nextEvent('connection-closed'), { reason: 'idle-timeout' });
  await h.listener.stop(1000);
});

test.serial(
  'a connection that never finishes its handshake is closed at the handshake timeout; one closed before it leaves nothing',
  async (t) => {
    const h = await startListener({ handshakeTimeoutMs: 500 });
    const { connect } = await import('node:net');
    const quick = connect(h.port, '127.0.0.1');
    await once(quick, 'connect');
    quick.destroy();
    const stalled = connect(h.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    const started = Date.now();
    await once(stalled, 'close');
    t.true(Date.now() - started < 5000);
    // The pre-authentication deadline and the TLS handshake timeout are the same by default: either closes it.
    t.true(h.events.some((e) => e.type === 'peer-refused' && /^(pre-authentication deadline|ERR_TLS_HANDSHAKE_TIMEOUT)$/.test(e.reason)));
    // Handshakes in progress do not hold stop().
    const third = connect(h.port, '127.0.0.1');
    third.on('error', () => undefined);
    await once(third, 'connect');
    const stopping = Date.now();
    await h.listener.stop(0);
    t.true(Date.now() - stopping < 400, 'stop() did not wait for the handshake timeout');
    third.destroy();
  },
);

test.serial('a sender that half-closes after its message still gets the ACK', async (t) => {
  const h = await startListener();
  const c = new Client(h.port);
  await c.ready();
  c.send(fixture('orm-o01-new-ct.hl7'));
  c.socket.end();
  t.is((await c.ack()).get('MSA', 1), 'AA');
  await c.closed;
  await h.listener.stop(1000);
});

test.serial('total connection cap', async (t) => {
  const h = await startListener({ maxConnections: 1 });
  const first = new Client(h.port);
  await first.ready();
  const second = new Client(h.port);
  await second.closed;
  t.like(await h.nextEvent('peer-refused'), { reason: 'connection-limit' });
  first.close();
  await h.listener.stop(1000);
});

test.serial('stop lets the in-flight message finish and sends its ACK', async (t) => {
  const h = await startListener();
  let release!: () => void;
  h.repo.gate = new Promise((r) => (release = r));
  const applying = new Promise<void>((r) => (h.repo.onApply = r));
  const c = new Client(h.port);
  await c.ready();
  c.send(fixture('orm-o01-new-ct.hl7'));
  await applying;
  const stopped = h.listener.stop(5000);
  t.is(h.listener.stop(5000), stopped);
  release();
  const ack = await c.ack();
  t.is(ack.get('MSA', 1), 'AA');
  await stopped;
  await c.closed;
  t.pass();
});

test.serial('real peer: python-hl7 mllp_send through a socat TLS client proxy', async (t) => {
  const h = await startListener();
  const dir = mkdtempSync(join(tmpdir(), 'hl7-mllp-send-'));
  try {
    mkdirSync(join(dir, 'edge-peers'));
    const file = join(dir, 'msgs.hl7');
    writeFileSync(file, Buffer.concat(['orm-o01-new-ct.hl7', 'adt-a08-update.hl7'].map((n) => encodeMllpFrame(fixture(n)))));
    const { stdout } = await run(
      'timeout',
      ['30', `${PEERS}/hl7/mllp-send-tls.sh`, '127.0.0.1', String(h.port), join(pki, 'ec'), '-f', file],
      { env: { ...process.env, TMPDIR: dir, PATH: `/usr/bin:${process.env.PATH ?? ''}` }, timeout: 40_000 },
    );
    t.is(stdout.match(/MSA\|AA/g)?.length, 2);
    t.is(h.repo.applied.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await h.listener.stop(1000);
  }
});
