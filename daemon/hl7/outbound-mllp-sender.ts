// The RIS leg of the outbox: an MLLP client over mutual TLS (or plain where the site says so) that sends
// procedure status messages one at a time on one connection per batch and reads each ACK.
//   MSA-1 AA/CA → delivered; AE/AR → rejected with the RIS's reason (MSA-3 / ERR); no ACK within
//   ackTimeoutMs, a broken connection or an ACK for another message → retry (the connection is closed,
//   because a late ACK could otherwise be taken for the next message's).
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import { EdgeError, isEdgeError, type ErrorCode } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { ProcedureStatusPayload } from '../core/mpps-status.ts';
import { deliverInOrder } from '../core/outbox-dispatcher.ts';
import type { DeliveryResult, OutboxEntry, OutboxError, OutboxSender } from '../core/outbox.ts';
import type { ProcessingId } from '../core/environment.ts';
import type { ClientTlsMaterial } from '../core/tls-material.ts';
import { MllpDecoder, encodeMllpFrame } from './mllp-framing.ts';
import { parseHl7Message } from './message.ts';
import { type StatusMessageStyle, buildStatusMessage } from './outbound-status-message.ts';
import { buildOrderPlacedMessage } from './outbound-order-message.ts';
import { ORDER_PLACED_KIND } from '../core/downtime-order.ts';
import type { Order } from '../core/order.ts';

export interface MllpStatusSenderOptions {
  readonly destination: string;
  readonly host: string;
  readonly port: number;
  /** Mutual TLS material (the box's certificate as client certificate); undefined = plain TCP. */
  readonly tls: ClientTlsMaterial | undefined;
  readonly connectTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly maxAckBytes?: number;
  readonly style: StatusMessageStyle;
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  readonly receivingApplication: string;
  readonly receivingFacility: string;
  /** MSH-11 of every status message: the box's own processing id. */
  readonly processingId: ProcessingId;
  readonly logger: Logger;
}

const DEFAULT_MAX_ACK_BYTES = 64 * 1024;

export class MllpStatusSender implements OutboxSender {
  readonly destination: string;
  readonly #o: MllpStatusSenderOptions;

  constructor(options: MllpStatusSenderOptions) {
    this.destination = options.destination;
    this.#o = options;
  }

  async deliver(entries: readonly OutboxEntry[], signal: AbortSignal): Promise<readonly DeliveryResult[]> {
    let conn: MllpConnection;
    try {
      conn = await MllpConnection.open(this.#o, signal);
    } catch (err) {
      const error = outboxError(err, 'EDGE_HL7_OUTBOUND_CONNECT');
      this.#o.logger.info('hl7.outbound.connect-failed', { destination: this.destination, code: error.code, reason: error.message });
      return entries.map(() => ({ outcome: 'failed', error }));
    }
    try {
      return await deliverInOrder(entries, signal, (entry) => this.#sendOne(conn, entry, signal));
    } finally {
      conn.close();
    }
  }

  async #sendOne(conn: MllpConnection, entry: OutboxEntry, signal: AbortSignal): Promise<DeliveryResult & { stopBatch?: boolean }> {
    const controlId = entry.id;
    const header = {
      sendingApplication: this.#o.sendingApplication,
      sendingFacility: this.#o.sendingFacility,
      receivingApplication: this.#o.receivingApplication,
      receivingFacility: this.#o.receivingFacility,
      controlId,
      processingId: this.#o.processingId,
    };
    // Downtime orders placed with the RIS ride the same queue as status messages, in order per order.
    const message =
      entry.kind === ORDER_PLACED_KIND
        ? buildOrderPlacedMessage(entry.payload as Order, header)
        : buildStatusMessage(entry.payload as ProcedureStatusPayload, { ...header, style: this.#o.style });
    let ack: Buffer;
    try {
      ack = await conn.request(message, this.#o.ackTimeoutMs, signal);
    } catch (err) {
      const error = outboxError(err, 'EDGE_HL7_OUTBOUND_TIMEOUT');
      this.#o.logger.info('hl7.outbound.no-ack', { destination: this.destination, id: entry.id, code: error.code });
      return { outcome: 'failed', error, stopBatch: true };
    }
    const verdict = readAck(ack, controlId);
    if (verdict.outcome === 'failed' && verdict.error.code === 'EDGE_HL7_OUTBOUND_ACK_INVALID') {
      this.#o.logger.warn('hl7.outbound.ack-invalid', { destination: this.destination, id: entry.id, reason: verdict.error.message });
      return { ...verdict, stopBatch: true };
    }
    if (verdict.outcome === 'failed') {
      this.#o.logger.warn('hl7.outbound.rejected', {
        destination: this.destination,
        id: entry.id,
        code: verdict.error.code,
        peerStatus: verdict.error.peerStatus ?? '',
      });
    } else {
      this.#o.logger.debug('hl7.outbound.delivered', { destination: this.destination, id: entry.id });
    }
    return verdict;
  }
}

/** Judge an ACK payload for the message with `controlId`. */
export function readAck(payload: Buffer, controlId: string): DeliveryResult {
  const at = Date.now();
  let code: string;
  let acked: string;
  let text: string;
  let err: string;
  let errCode = '';
  try {
    const m = parseHl7Message(payload);
    code = m.get('MSA', 1).trim().toUpperCase();
    acked = m.get('MSA', 2).trim();
    text = m.get('MSA', 3).trim();
    const e = m.segment('ERR');
    // v2.5: ERR-3 (HL7 error code, CWE) and ERR-8 (user message); v2.3.1: ERR-1 (ELD, 4th component code).
    err =
      e === undefined
        ? ''
        : [e.get(3, 1, 1), e.get(3, 1, 2), e.get(8), e.get(1, 1, 4, 1), e.get(1, 1, 4, 2)].filter((x) => x !== '').join(' ');
    errCode = e === undefined ? '' : (e.get(3, 1, 1) || e.get(1, 1, 4, 1)).trim();
  } catch {
    return { outcome: 'failed', error: { code: 'EDGE_HL7_OUTBOUND_ACK_INVALID', message: 'the answer is not an HL7 message', at } };
  }
  if (acked !== controlId) {
    return { outcome: 'failed', error: { code: 'EDGE_HL7_OUTBOUND_ACK_INVALID', message: 'MSA-2 names another message', at } };
  }
  if (code === 'AA' || code === 'CA') return { outcome: 'delivered' };
  // HL7 table 0357 code 205 (duplicate key identifier): the RIS already holds this MSH-10, i.e. an earlier
  // copy arrived and only its ACK was lost. Treating it as a refusal would dead-letter a delivered message.
  if ((code === 'AR' || code === 'AE' || code === 'CR' || code === 'CE') && errCode === '205') return { outcome: 'delivered' };
  if (code === 'AE' || code === 'AR' || code === 'CE' || code === 'CR') {
    // The RIS's own words: they name its reason, not the patient (kept short for the dead-letter list).
    const reason =
      [text, err]
        .filter((x) => x !== '')
        .join('; ')
        .slice(0, 200) || 'no reason given';
    return {
      outcome: 'failed',
      error: { code: 'EDGE_HL7_OUTBOUND_REJECTED', peerStatus: code, message: `RIS answered ${code}: ${reason}`, at },
    };
  }
  return { outcome: 'failed', error: { code: 'EDGE_HL7_OUTBOUND_ACK_INVALID', message: `unknown MSA-1 ${code.slice(0, 4)}`, at } };
}

/** A connection or ACK failure is retried: a permanent code from below (e.g. TLS material) takes `fallback`'s. */
function outboxError(err: unknown, fallback: ErrorCode): OutboxError {
  if (isEdgeError(err)) return { code: err.kind === 'permanent' ? fallback : err.code, message: err.message, at: Date.now() };
  const e = err as NodeJS.ErrnoException;
  return { code: fallback, message: e?.code ?? (e instanceof Error ? e.message : String(err)), at: Date.now() };
}

/** One MLLP connection: send a frame, wait for the next frame (one message in flight). */
class MllpConnection {
  readonly #socket: net.Socket;
  readonly #decoder: MllpDecoder;
  #frames: Buffer[] = [];
  #waiter: ((frame: Buffer | Error) => void) | undefined;
  #error: Error | undefined;

  private constructor(socket: net.Socket, maxAckBytes: number) {
    this.#socket = socket;
    this.#decoder = new MllpDecoder({ maxFrameBytes: maxAckBytes });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.#decoder.push(chunk)) this.#frames.push(f);
      } catch (err) {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
        socket.destroy();
        return;
      }
      this.#flush();
    });
    socket.on('error', (err) => this.#fail(new EdgeError('EDGE_HL7_OUTBOUND_CONNECT', err.message, { cause: err })));
    socket.on('close', () => this.#fail(new EdgeError('EDGE_HL7_OUTBOUND_CONNECT', 'the RIS closed the connection')));
  }

  static open(o: MllpStatusSenderOptions, signal: AbortSignal): Promise<MllpConnection> {
    return new Promise((resolve, reject) => {
      const socket =
        o.tls === undefined
          ? net.connect({ host: o.host, port: o.port, noDelay: true })
          : tls.connect({
              host: o.host,
              port: o.port,
              ca: o.tls.ca,
              cert: o.tls.cert,
              key: o.tls.key,
              minVersion: o.tls.minVersion,
              ...(o.tls.ciphers === undefined ? {} : { ciphers: o.tls.ciphers }),
              ...(o.tls.ecdhCurve === undefined ? {} : { ecdhCurve: o.tls.ecdhCurve }),
              servername: net.isIP(o.host) === 0 ? o.host : undefined,
              rejectUnauthorized: true,
              noDelay: true,
            } as tls.ConnectionOptions);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        if (err === undefined) resolve(new MllpConnection(socket, o.maxAckBytes ?? DEFAULT_MAX_ACK_BYTES));
        else {
          socket.destroy();
          reject(err);
        }
      };
      const onError = (err: Error): void =>
        done(new EdgeError('EDGE_HL7_OUTBOUND_CONNECT', (err as NodeJS.ErrnoException).code ?? err.message, { cause: err }));
      const onAbort = (): void => done(new EdgeError('EDGE_SHUTDOWN', 'connect aborted'));
      const timer = setTimeout(
        () => done(new EdgeError('EDGE_HL7_OUTBOUND_CONNECT', `no connection within ${o.connectTimeoutMs} ms`)),
        o.connectTimeoutMs,
      );
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once(o.tls === undefined ? 'connect' : 'secureConnect', () => done());
    });
  }

  request(message: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    this.#frames = [];
    return new Promise<Buffer>((resolve, reject) => {
      const finish = (x: Buffer | Error): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiter = undefined;
        if (x instanceof Error) reject(x);
        else resolve(x);
      };
      const onAbort = (): void => finish(new EdgeError('EDGE_SHUTDOWN', 'delivery aborted'));
      const timer = setTimeout(() => finish(new EdgeError('EDGE_HL7_OUTBOUND_TIMEOUT', `no ACK within ${timeoutMs} ms`)), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = finish;
      this.#socket.write(encodeMllpFrame(message));
    });
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroySoon();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  #flush(): void {
    if (this.#waiter !== undefined && this.#frames.length > 0) this.#waiter(this.#frames.shift()!);
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#waiter?.(err);
  }
}
