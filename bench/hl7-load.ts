// Sends planned worklist items to the box as ORM^O01 over MLLP + mutual TLS, acting as the site's RIS.
// No pipelining: each connection sends one message, waits for its ACK, then sends the next. Stops at
// --count messages or --duration-ms, whichever comes first; every non-AA answer counts as an error and
// stops the load (a benchmark of a box that refuses its input measures nothing).
//
// Usage: node bench/hl7-load.ts --site SITE.json --today YYYYMMDD --from I --count N
//          [--connections 8] [--duration-ms MS] [--nonce X] [--label NAME] [--out FILE.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { ormO01, type MessageHeader } from './orm-message.ts';
import { plannedItem } from './worklist-plan.ts';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;
const CONNECT_TIMEOUT_MS = 10_000;
const ACK_TIMEOUT_MS = 30_000;
const MAX_ACK_BYTES = 65_536;

export interface Site {
  box: { host: string; hl7Port: number; serverName: string; receivingApplication: string; receivingFacility: string };
  pki: { caCert: string };
  ris: { certFile: string; keyFile: string; sendingApplication: string; sendingFacility: string };
}

export interface LoadResult {
  readonly label: string;
  readonly connections: number;
  readonly sent: number;
  readonly accepted: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  readonly messagesPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export interface ConnectionTimeouts {
  readonly connectMs: number;
  readonly ackMs: number;
}

/** One MLLP/TLS connection: `exchange` writes a frame and resolves with the next ACK frame's text. */
export class MllpConnection {
  readonly #socket: TLSSocket;
  readonly #ackTimeoutMs: number;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (frame: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  #failure: Error | undefined;

  private constructor(socket: TLSSocket, ackTimeoutMs: number) {
    this.#socket = socket;
    this.#ackTimeoutMs = ackTimeoutMs;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed by the box')));
  }

  static open(
    site: Site,
    timeouts: ConnectionTimeouts = { connectMs: CONNECT_TIMEOUT_MS, ackMs: ACK_TIMEOUT_MS },
  ): Promise<MllpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: site.box.host,
        port: site.box.hl7Port,
        servername: site.box.serverName,
        ca: readFileSync(site.pki.caCert),
        cert: readFileSync(site.ris.certFile),
        key: readFileSync(site.ris.keyFile),
        minVersion: 'TLSv1.2',
      });
      const timer = setTimeout(() => socket.destroy(new Error('TLS connect timed out')), timeouts.connectMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new MllpConnection(socket, timeouts.ackMs));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  exchange(message: string): Promise<string> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error('ACK timed out')), this.#ackTimeoutMs);
      this.#waiting = { resolve, reject, timer };
      this.#socket.write(Buffer.concat([Buffer.of(VT), Buffer.from(message, 'latin1'), Buffer.of(FS, CR)]));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) {
        resolve();
        return;
      }
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 2_000).unref();
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#buffer.length > MAX_ACK_BYTES) {
      this.#fail(new Error('ACK frame larger than the cap'));
      return;
    }
    for (let end = this.#buffer.indexOf(FS); end >= 0 && end + 1 < this.#buffer.length; end = this.#buffer.indexOf(FS)) {
      if (this.#buffer[end + 1] !== CR) {
        this.#fail(new Error('MLLP framing error in the ACK'));
        return;
      }
      const start = this.#buffer.indexOf(VT);
      const frame = this.#buffer.subarray(start + 1, end).toString('latin1');
      this.#buffer = this.#buffer.subarray(end + 2);
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting === undefined) {
        this.#fail(new Error('unsolicited frame from the box'));
        return;
      }
      clearTimeout(waiting.timer);
      waiting.resolve(frame);
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) {
      clearTimeout(waiting.timer);
      waiting.reject(err);
    }
    this.#socket.destroy();
  }
}

/** MSA-1 of an ACK, plus ERR-3/ERR-1 when present, for the error report (no patient data in an ACK). */
export function acknowledgment(frame: string): { code: string; detail: string } {
  const segments = frame.split('\r');
  const msa = segments.find((s) => s.startsWith('MSA|'))?.split('|') ?? [];
  const err = segments.find((s) => s.startsWith('ERR|')) ?? '';
  return { code: msa[1] ?? '?', detail: `${msa[3] ?? ''} ${err}`.trim() };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export function timestampNow(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export interface LoadOptions {
  readonly site: Site;
  readonly today: string;
  readonly from: number;
  readonly count: number;
  readonly connections: number;
  readonly durationMs: number;
  readonly nonce: string;
  readonly label: string;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const header: MessageHeader = {
    sendingApplication: opts.site.ris.sendingApplication,
    sendingFacility: opts.site.ris.sendingFacility,
    receivingApplication: opts.site.box.receivingApplication,
    receivingFacility: opts.site.box.receivingFacility,
    timestamp: timestampNow(),
  };
  const connections = await Promise.all(Array.from({ length: opts.connections }, () => MllpConnection.open(opts.site)));
  const end = opts.from + opts.count;
  let next = opts.from;
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + opts.durationMs;

  const worker = async (connection: MllpConnection): Promise<void> => {
    while (next < end && errors === 0 && performance.now() < deadline) {
      const index = next++;
      // MSH-10 is ST(20) in v2.3.1: nonce + index keeps every control id of every run unique.
      const message = ormO01(plannedItem(index, opts.today), header, `${opts.nonce}${index}`);
      const t0 = performance.now();
      sent++;
      try {
        const ack = acknowledgment(await connection.exchange(message));
        latencies.push(performance.now() - t0);
        if (ack.code === 'AA') accepted++;
        else {
          errors++;
          firstError ??= `item ${index}: MSA-1 ${ack.code} ${ack.detail}`;
        }
      } catch (err) {
        errors++;
        firstError ??= `item ${index}: ${(err as Error).message}`;
      }
    }
  };
  await Promise.all(connections.map(worker));
  const elapsedMs = performance.now() - started;
  await Promise.all(connections.map((c) => c.close()));
  latencies.sort((a, b) => a - b);
  return {
    label: opts.label,
    connections: opts.connections,
    sent,
    accepted,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    elapsedMs: Math.round(elapsedMs),
    messagesPerSecond: Math.round((accepted / elapsedMs) * 1000),
    latencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(2)),
      p99: Number(percentile(latencies, 99).toFixed(2)),
      max: Number((latencies.at(-1) ?? 0).toFixed(2)),
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      site: { type: 'string' },
      today: { type: 'string' },
      from: { type: 'string', default: '0' },
      count: { type: 'string' },
      connections: { type: 'string', default: '8' },
      'duration-ms': { type: 'string', default: '3600000' },
      nonce: { type: 'string', default: Date.now().toString(36).slice(-6).toUpperCase() },
      label: { type: 'string', default: 'load' },
      out: { type: 'string' },
    },
  });
  if (values.site === undefined || values.today === undefined || values.count === undefined) {
    throw new Error(
      'usage: hl7-load.ts --site SITE.json --today YYYYMMDD --count N [--from I] [--connections C] [--duration-ms MS] [--out FILE]',
    );
  }
  const connections = Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 64) throw new Error('--connections must be 1..64');
  const result = await runLoad({
    site: JSON.parse(readFileSync(values.site, 'utf8')) as Site,
    today: values.today,
    from: Number(values.from),
    count: Number(values.count),
    connections,
    durationMs: Number(values['duration-ms']),
    nonce: values.nonce,
    label: values.label,
  });
  const text = JSON.stringify(result);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
  console.log(text);
  if (result.errors > 0) process.exitCode = 1;
}

if (import.meta.main) await main();
