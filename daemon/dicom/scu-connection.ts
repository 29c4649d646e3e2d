// The requestor's side of one association (PS3.8 7.1, 9.3): connect over TLS (server certificate and host
// name checked against the site CA; the box's certificate as client) or plain, negotiate, exchange DIMSE
// messages in P-DATA PDUs, release or abort. Every phase has a timeout and every PDU a size cap. The
// C-STORE SCU (store-scu.ts) and the Modality Worklist C-FIND SCU (find-scu.ts) speak through it.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { EdgeError, isEdgeError, type ErrorCode } from '../core/errors.ts';
import { encodeAssociateRq, parseAssociateAc, type AcceptedAssociation, type RequestedContext } from './association-requestor.ts';
import type { RoleSelection } from './association.ts';
import { decodeCommand, encodeCommand, hasDataSet, type Command } from './dimse-command.ts';
import { encodeAbort, encodePData, encodeReleaseRq, parsePDataTf, type Pdu, PduReader, PduType, PDU_HEADER_LENGTH } from './pdu.ts';

export interface ScuConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  /** TLS client options (ca, cert, key, minVersion); undefined = plain TCP. */
  readonly tls?: tls.ConnectionOptions;
  readonly connectTimeoutMs: number;
  /** Per DIMSE response, and for the association and release answers. */
  readonly responseTimeoutMs: number;
  /** Our Maximum Length Received. */
  readonly maxPduLength?: number;
  /** How errors name the peer ("the PACS", "the upstream worklist provider"). */
  readonly peer?: string;
  /** The code of connection and association failures. */
  readonly failureCode?: ErrorCode;
}

export const DEFAULT_SCU_MAX_PDU = 65536;

/** A DIMSE message as received: its command set and, when the command says one follows, its data set bytes. */
export interface ReceivedMessage {
  readonly contextId: number;
  readonly command: Command;
  readonly data: Buffer | undefined;
}

export function asScuError(err: unknown, options: Pick<ScuConnectionOptions, 'peer' | 'failureCode'> = {}): EdgeError {
  if (isEdgeError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  return new EdgeError(options.failureCode ?? 'EDGE_STORE_SCU_FAILED', `${label(options)} connection failed (${e.code ?? e.message})`, {
    cause: err,
    detail: { errno: e.code ?? 'unknown' },
  });
}

function label(options: Pick<ScuConnectionOptions, 'peer'>): string {
  return options.peer ?? 'the PACS';
}

export class ScuConnection {
  readonly #socket: Socket;
  readonly #options: ScuConnectionOptions;
  readonly #reader: PduReader;
  readonly #pdus: Pdu[] = [];
  #waiter: (() => void) | undefined;
  #closedError: EdgeError | undefined;
  #messageId = 0;

  private constructor(socket: Socket, options: ScuConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    const max = options.maxPduLength ?? DEFAULT_SCU_MAX_PDU;
    this.#reader = new PduReader((type) =>
      type === PduType.AssociateAc ? 64 * 1024 : type === PduType.PDataTf ? max + 64 : type === PduType.AssociateRq ? undefined : 1024,
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const p of this.#reader.push(chunk)) this.#pdus.push(p);
      } catch (err) {
        this.#fail(this.#error(err));
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('error', (err) => this.#fail(this.#error(err)));
    socket.on('close', () => this.#fail(this.#failure(`${this.#peer} closed the connection`)));
  }

  static open(options: ScuConnectionOptions, signal: AbortSignal): Promise<ScuConnection> {
    const peer = label(options);
    return new Promise((resolve, reject) => {
      const socket =
        options.tls === undefined
          ? net.connect({ host: options.host, port: options.port, noDelay: true })
          : tls.connect({
              ...options.tls,
              host: options.host,
              port: options.port,
              ...(net.isIP(options.host) === 0 ? { servername: options.host } : {}),
            });
      socket.setNoDelay(true);
      const ready = options.tls === undefined ? 'connect' : 'secureConnect';
      const timer = setTimeout(
        () => fail(new EdgeError('EDGE_DICOM_TIMEOUT', `connecting to ${peer} timed out`)),
        options.connectTimeoutMs,
      );
      const onAbort = (): void => fail(new EdgeError('EDGE_SHUTDOWN', `the exchange with ${peer} was stopped`));
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('error', fail);
        socket.off(ready, ok);
      };
      function fail(err: unknown): void {
        cleanup();
        socket.destroy();
        reject(asScuError(err, options));
      }
      function ok(): void {
        cleanup();
        const conn = new ScuConnection(socket, options);
        signal.addEventListener('abort', () => conn.abort(), { once: true });
        resolve(conn);
      }
      if (signal.aborted) {
        fail(new EdgeError('EDGE_SHUTDOWN', `the exchange with ${peer} was stopped`));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once(ready, ok);
    });
  }

  get #peer(): string {
    return label(this.#options);
  }

  #error(err: unknown): EdgeError {
    return asScuError(err, this.#options);
  }

  #failure(message: string, detail?: Record<string, number>): EdgeError {
    return new EdgeError(this.#options.failureCode ?? 'EDGE_STORE_SCU_FAILED', message, detail === undefined ? undefined : { detail });
  }

  #fail(err: EdgeError): void {
    this.#closedError ??= err;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  nextMessageId(): number {
    return (this.#messageId = (this.#messageId % 0xffff) + 1);
  }

  async #nextPdu(): Promise<Pdu> {
    const deadline = Date.now() + this.#options.responseTimeoutMs;
    for (;;) {
      const p = this.#pdus.shift();
      if (p !== undefined) return p;
      if (this.#closedError !== undefined) throw this.#closedError;
      const left = deadline - Date.now();
      if (left <= 0) throw new EdgeError('EDGE_DICOM_TIMEOUT', `${this.#peer} did not answer in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async write(bytes: Buffer): Promise<void> {
    if (this.#closedError !== undefined) throw this.#closedError;
    if (this.#socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new EdgeError('EDGE_DICOM_TIMEOUT', `${this.#peer} does not read`)),
        this.#options.responseTimeoutMs,
      );
      const onDrain = (): void => done();
      const onClose = (): void => done(this.#closedError ?? this.#failure(`${this.#peer} closed the connection`));
      const done = (err?: EdgeError): void => {
        clearTimeout(timer);
        this.#socket.off('drain', onDrain);
        this.#socket.off('close', onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      this.#socket.on('drain', onDrain);
      this.#socket.on('close', onClose);
    });
  }

  /** `roleSelections`: SCP/SCU role selection items (the commitment report SCU asks for the SCP role). */
  async associate(contexts: readonly RequestedContext[], roleSelections?: readonly RoleSelection[]): Promise<AcceptedAssociation> {
    await this.write(
      encodeAssociateRq({
        callingAeTitle: this.#options.callingAeTitle,
        calledAeTitle: this.#options.calledAeTitle,
        contexts,
        maxPduLength: this.#options.maxPduLength ?? DEFAULT_SCU_MAX_PDU,
        ...(roleSelections === undefined ? {} : { roleSelections }),
      }),
    );
    const pdu = await this.#nextPdu();
    if (pdu.type === PduType.AssociateAc) return parseAssociateAc(pdu.body);
    if (pdu.type === PduType.AssociateRj) {
      const [, result, source, reason] = pdu.body;
      throw this.#failure(`${this.#peer} rejected the association`, { result: result ?? 0, source: source ?? 0, reason: reason ?? 0 });
    }
    throw this.#failure(`${this.#peer} aborted the association`);
  }

  /** One request (command and optional data set, already encoded); answers its response command. */
  async request(contextId: number, command: Omit<Command, 'MessageID'>, dataSet: Buffer | undefined, peerMax: number): Promise<Command> {
    const messageId = this.nextMessageId();
    await this.sendPdvs(contextId, true, encodeCommand({ ...command, MessageID: messageId }), peerMax);
    if (dataSet !== undefined) await this.sendPdvs(contextId, false, dataSet, peerMax);
    const { command: rsp } = await this.readMessage(64 * 1024);
    if (rsp.CommandField !== (command.CommandField | 0x8000) || rsp.MessageIDBeingRespondedTo !== messageId) {
      throw this.#failure(`${this.#peer} answered with an unexpected message`);
    }
    return rsp;
  }

  /** A command set (or a small data set) in P-DATA PDUs of at most the peer's size. */
  async sendPdvs(contextId: number, isCommand: boolean, bytes: Buffer, peerMax: number): Promise<void> {
    for (const p of encodePData(contextId, isCommand, bytes, peerMax)) await this.write(p);
  }

  /** Data set fragments of at most the peer's PDU size, written in corked groups (header and fragment, no copy). */
  async sendData(contextId: number, data: Buffer, isLast: boolean, peerMax: number): Promise<void> {
    const maxFragment = Math.max(1, peerMax - 6);
    let offset = 0;
    this.#socket.cork();
    try {
      do {
        const fragment = data.subarray(offset, offset + maxFragment);
        offset += fragment.length;
        const last = isLast && offset >= data.length;
        const head = Buffer.allocUnsafe(PDU_HEADER_LENGTH + 6);
        head.writeUInt8(PduType.PDataTf, 0);
        head.writeUInt8(0, 1);
        head.writeUInt32BE(6 + fragment.length, 2);
        head.writeUInt32BE(2 + fragment.length, 6);
        head.writeUInt8(contextId, 10);
        head.writeUInt8(last ? 0x02 : 0x00, 11);
        this.#socket.write(head);
        if (fragment.length > 0) this.#socket.write(fragment);
      } while (offset < data.length);
    } finally {
      this.#socket.uncork();
    }
    if (this.#socket.writableNeedDrain) await this.write(Buffer.alloc(0));
  }

  /**
   * The next DIMSE message: its command set, then its data set when the command announces one. A data
   * set longer than `maxDataBytes` ends the exchange with an error (the caller aborts).
   */
  async readMessage(maxDataBytes: number): Promise<ReceivedMessage> {
    const commandParts: Buffer[] = [];
    const dataParts: Buffer[] = [];
    let dataBytes = 0;
    let command: Command | undefined;
    let contextId = 0;
    for (;;) {
      const pdu = await this.#nextPdu();
      if (pdu.type !== PduType.PDataTf) throw this.#failure(`${this.#peer} aborted or released during a DIMSE exchange`);
      for (const pdv of parsePDataTf(pdu.body)) {
        contextId = pdv.presentationContextId;
        if (pdv.isCommand) {
          if (command !== undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', `${this.#peer} sent a command before the data set`);
          commandParts.push(pdv.data);
          if (!pdv.isLast) continue;
          command = decodeCommand(Buffer.concat(commandParts));
          if (!hasDataSet(command)) return { contextId, command, data: undefined };
          continue;
        }
        if (command === undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', `${this.#peer} sent a data set before its command`);
        dataBytes += pdv.data.length;
        if (dataBytes > maxDataBytes) {
          throw new EdgeError('EDGE_DICOM_PDU_TOO_LARGE', `${this.#peer} sent a data set over ${maxDataBytes} bytes`);
        }
        dataParts.push(pdv.data);
        if (pdv.isLast) return { contextId, command, data: Buffer.concat(dataParts) };
      }
    }
  }

  async release(): Promise<void> {
    await this.write(encodeReleaseRq());
    for (;;) {
      const pdu = await this.#nextPdu();
      if (pdu.type === PduType.ReleaseRp || pdu.type === PduType.Abort) return;
    }
  }

  abort(): void {
    if (!this.#socket.destroyed) this.#socket.end(encodeAbort(0, 0));
    this.#fail(new EdgeError('EDGE_SHUTDOWN', `the exchange with ${this.#peer} was stopped`));
  }

  close(): void {
    this.#socket.destroy();
  }
}
