// The RIS in tests: python-hl7's real `mllp_send` behind a socat TLS client (it has no TLS of its own),
// and a small node:tls MLLP client for streaming many orders.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Supervised, freePort, run } from './processes.ts';
import { HL7_FIXTURES } from './paths.ts';
import { waitForPort } from './wait.ts';

export interface ClientTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** Frame HL7 text as MLLP (mllp_send -f reads a stream of MLLP frames). */
export function mllpFrame(message: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([0x0b]), Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])]);
}

/**
 * Send each message with `/usr/bin/mllp_send` through a socat TLS proxy. Returns the ACK text per
 * message ('' when the connection closed without one).
 */
export async function mllpSend(port: number, client: ClientTls, messages: ReadonlyArray<Buffer | string>): Promise<string[]> {
  const proxyPort = await freePort();
  const proxy = new Supervised('socat', [
    `TCP-LISTEN:${proxyPort},bind=127.0.0.1,reuseaddr,fork`,
    `OPENSSL:127.0.0.1:${port},cert=${client.certFile},key=${client.keyFile},cafile=${client.caFile},verify=1,openssl-min-proto-version=TLS1.2`,
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'edge-mllp-'));
  try {
    await waitForPort(proxyPort, {
      timeoutMs: 5000,
      exited: () => (proxy.exited ? `socat exited: ${proxy.stderr.slice(-500)}` : undefined),
    });
    const acks: string[] = [];
    for (const [i, m] of messages.entries()) {
      const file = join(dir, `m${i}.mllp`);
      await writeFile(file, mllpFrame(m));
      const r = await run('timeout', ['20', '/usr/bin/mllp_send', '-p', String(proxyPort), '-f', file, '127.0.0.1'], { timeoutMs: 25_000 });
      acks.push(r.stdout.replace(/\r/g, '\n'));
    }
    return acks;
  } finally {
    await proxy.stop('SIGTERM', 3000);
    await rm(dir, { recursive: true, force: true });
  }
}

export async function fixture(name: string): Promise<Buffer> {
  return readFile(join(HL7_FIXTURES, name));
}

/** A minimal MLLP/TLS client: send a frame, wait for one ACK frame. */
export class MllpTlsClient {
  readonly #socket: tls.TLSSocket;
  #buffer = Buffer.alloc(0);
  #waiting: ((ack: string | undefined) => void) | undefined;
  closed = false;

  private constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      const end = this.#buffer.indexOf(Buffer.from([0x1c, 0x0d]));
      if (end >= 0) {
        const ack = this.#buffer.subarray(1, end).toString('latin1');
        this.#buffer = this.#buffer.subarray(end + 2);
        const w = this.#waiting;
        this.#waiting = undefined;
        w?.(ack);
      }
    });
    const onEnd = (): void => {
      this.closed = true;
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(undefined);
    };
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  }

  static async connect(port: number, client: ClientTls): Promise<MllpTlsClient> {
    const [cert, key, ca] = await Promise.all([readFile(client.certFile), readFile(client.keyFile), readFile(client.caFile)]);
    const socket = tls.connect({ host: '127.0.0.1', port, cert, key, ca, servername: 'localhost' });
    await once(socket, 'secureConnect');
    return new MllpTlsClient(socket);
  }

  /** Resolves with the ACK text, or undefined when the connection closed first. */
  send(message: Buffer | string, timeoutMs = 15_000): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ACK in time')), timeoutMs);
      this.#waiting = (ack) => {
        clearTimeout(timer);
        resolve(ack);
      };
      this.#socket.write(mllpFrame(message));
    });
  }

  close(): void {
    this.#socket.end();
  }
}

export function msa(ack: string | undefined): string | undefined {
  return ack
    ?.split(/[\r\n]+/)
    .find((s) => s.startsWith('MSA|'))
    ?.split('|')[1];
}

/** An ORM^O01 NW for a fictional patient, unique per n. */
export function ormNew(
  n: number,
  opts: { date?: string; time?: string; station?: string; modality?: string; controlId?: string; processingId?: string } = {},
): string {
  const date = opts.date ?? '20261125';
  const time = opts.time ?? '090000';
  const mod = opts.modality ?? 'CT';
  const station = opts.station ?? '';
  return (
    [
      `MSH|^~\\&|RIS|GENHOSP|EDGE|RAD1|20261125080000||ORM^O01|${opts.controlId ?? `CTRL${n}`}|${opts.processingId ?? 'P'}|2.3.1`,
      `PID|1||PID${n}^^^GENHOSP^MR||TEST^PATIENT${n}||19700101|F`,
      `PV1|1|O|${mod}^^^GENHOSP`,
      `ORC|NW|PLC${n}|FIL${n}||SC||^^^${date}${time}^^R||20261125080000|||1234^WELBY^MARCUS||||||${station}`,
      `OBR|1|PLC${n}|FIL${n}|P${mod}^${mod} PROCEDURE^L|||20261125080000|||||||||1234^WELBY^MARCUS||ACC${n}|RP${n}|SPS${n}|${station}|||${mod}|||^^^${date}${time}^^R`,
    ].join('\r') + '\r'
  );
}
