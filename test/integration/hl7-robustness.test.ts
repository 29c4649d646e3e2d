// Bad HL7 input against the running daemon: a NAK or a closed connection, never a crash, and the next
// good message on a new connection is accepted.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import test from 'ava';
import { MllpTlsClient, mllpFrame, msa, ormNew } from '../support/hl7-peers.ts';
import { Daemon, createSite } from '../support/site.ts';
import { poll } from '../support/wait.ts';

type Site = Awaited<ReturnType<typeof createSite>>;
let site: Site;
let daemon: Daemon;
let n = 0;

test.before(async () => {
  site = await createSite((c) => {
    c['hl7'].idleTimeoutMs = 2000;
  });
  daemon = await Daemon.start(site.configFile);
});

test.after.always(async () => {
  await daemon?.stop();
  await site?.cleanup();
});

const ris = () => ({ certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert });

/** Write raw bytes on a fresh RIS connection; resolve with whatever came back before it closed or went quiet. */
async function rawExchange(bytes: Buffer, quietMs = 1500): Promise<{ reply: string; closed: boolean }> {
  const [cert, key, ca] = await Promise.all([readFile(site.ris.certFile), readFile(site.ris.keyFile), readFile(site.pki.caCert)]);
  const s = tls.connect({ host: '127.0.0.1', port: daemon.ports.hl7, cert, key, ca, servername: 'localhost' });
  await once(s, 'secureConnect');
  let reply = '';
  let closed = false;
  let answered: () => void = () => undefined;
  const answeredP = new Promise<void>((resolve) => (answered = resolve));
  s.on('data', (d: Buffer) => {
    reply += d.toString('latin1');
    if (reply.includes('\x1c\r')) answered();
  });
  s.on('error', () => undefined);
  const closedP = new Promise<void>((resolve) => s.on('close', () => resolve())).then(() => (closed = true));
  s.write(bytes);
  await Promise.race([closedP, answeredP, new Promise((r) => setTimeout(r, quietMs))]);
  s.destroy();
  return { reply, closed };
}

async function goodMessageAccepted(): Promise<string | undefined> {
  const c = await MllpTlsClient.connect(daemon.ports.hl7, ris());
  const ack = await c.send(ormNew(1000 + n++));
  c.close();
  return msa(ack);
}

const cases: Array<[string, () => Buffer, 'nak' | 'closed' | 'nak-or-closed']> = [
  ['binary garbage outside a frame', () => Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42, 0x0b, 0x1c]), 'closed'],
  [
    'a truncated frame, then silence',
    () => Buffer.concat([Buffer.from([0x0b]), Buffer.from('MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|2026')]),
    'closed',
  ],
  ['a 10 MB frame', () => mllpFrame(Buffer.alloc(10 * 1024 * 1024, 0x41)), 'closed'],
  ['a frame that is not HL7', () => mllpFrame('hello there\r'), 'closed'],
  // With unreadable encoding characters no trustworthy ACK can be built: either answer is acceptable.
  [
    'wrong encoding characters',
    () => mllpFrame('MSH|^~|RIS|GENHOSP|EDGE|RAD1|20261125||ORM^O01|BADENC1|P|2.3.1\rPID|1\r'),
    'nak-or-closed',
  ],
  ['an unsupported message type', () => mllpFrame('MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125||ORU^R01|ORU1|P|2.3.1\rPID|1||X\r'), 'nak'],
  [
    'an undeclared 8-bit character set',
    () =>
      mllpFrame(
        Buffer.concat([
          Buffer.from('MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125||ORM^O01|CS1|P|2.3.1\rPID|1||X||M'),
          Buffer.from([0xdc]),
          Buffer.from('LLER\r'),
        ]),
      ),
    'nak',
  ],
  ['a bad date in the order', () => mllpFrame(ormNew(9999, { date: '2026XX25', controlId: 'BADDATE1' })), 'nak'],
];

for (const [name, bytes, expected] of cases) {
  test.serial(
    `${name}: ${expected === 'nak' ? 'NAK' : expected === 'closed' ? 'connection closed' : 'NAK or connection closed'}, daemon keeps serving`,
    async (t) => {
      // The idle timeout is 2 s here: a silent half-frame must be closed by then.
      const { reply, closed } = await rawExchange(bytes(), 4000);
      if (expected === 'nak-or-closed') {
        t.true(/MSA\|A[ER]\|/.test(reply) || closed, `reply was ${JSON.stringify(reply)}`);
        t.false(/MSA\|AA/.test(reply));
      } else if (expected === 'nak') {
        t.regex(reply, /MSA\|A[ER]\|/, `reply was ${JSON.stringify(reply)}`);
      } else {
        t.false(/MSA\|AA/.test(reply), 'never an AA');
        t.true(closed, 'the box closed the connection');
      }
      t.false(daemon.process.exited, 'the daemon is still running');
      t.is(await goodMessageAccepted(), 'AA', 'the next good message on a new connection is accepted');
    },
  );
}

test.serial('an idle connection is closed after the idle timeout', async (t) => {
  const c = await MllpTlsClient.connect(daemon.ports.hl7, ris());
  await poll(() => c.closed, 10_000);
  t.true(c.closed);
});
