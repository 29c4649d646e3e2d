// C-STORE SCU (PS3.4 Annex B, PS3.7 9.1.1): one association per batch to the PACS, over TLS (server
// certificate and host name checked against the site CA; the box's certificate as client) or plain. Data
// sets stream from the spool straight into P-DATA PDUs in the transfer syntax they were received in (no
// transcoding: each context proposes exactly that syntax). Every phase has a timeout.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import { encodeAssociateRq, parseAssociateAc, type AcceptedAssociation } from './association-requestor.ts';
import { CommandField, CommandDataSetTypePresent, decodeCommand, encodeCommand, type Command } from './dimse-command.ts';
import { encodeAbort, encodePData, encodeReleaseRq, parsePDataTf, type Pdu, PduReader, PduType, PDU_HEADER_LENGTH } from './pdu.ts';

export interface StoreScuOptions {
  readonly host: string;
  readonly port: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  /** TLS client options (ca, cert, key, minVersion); undefined = plain TCP. */
  readonly tls?: tls.ConnectionOptions;
  readonly connectTimeoutMs: number;
  /** Per DIMSE response, and for the association and release answers. */
  readonly responseTimeoutMs: number;
  /** Our Maximum Length Received (responses are small). */
  readonly maxPduLength?: number;
  /** Who the peer is, in error messages (default `the PACS`). */
  readonly peerLabel?: string;
}

export interface StoreItem {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** The data set bytes in `transferSyntaxUid`, read when the item is sent. */
  data(): AsyncIterable<Uint8Array>;
}

export type StoreOutcome =
  /** The PACS answered with this DIMSE status. */
  | { readonly status: number; readonly errorComment?: string }
  /** No status: no association, no context for the item, the data could not be read, or the connection failed. */
  | { readonly error: EdgeError; readonly reachedPeer: boolean };

const DEFAULT_MAX_PDU = 65536;
/** What we send per PDU when the PACS announces no limit. */
const UNLIMITED_SEND_PDU = 256 * 1024;

/** Send a batch over one association; one outcome per item, in order. Never throws for per-item failures. */
export async function storeBatch(options: StoreScuOptions, items: readonly StoreItem[], signal: AbortSignal): Promise<StoreOutcome[]> {
  const outcomes: StoreOutcome[] = [];
  if (items.length === 0) return outcomes;
  const contexts = new Map<string, number>();
  for (const it of items) {
    const k = `${it.sopClassUid}|${it.transferSyntaxUid}`;
    if (!contexts.has(k) && contexts.size < 128) contexts.set(k, contexts.size * 2 + 1);
  }
  let conn: ScuConnection;
  try {
    conn = await ScuConnection.open(options, signal);
  } catch (err) {
    const e = asScuError(err);
    return items.map(() => ({ error: e, reachedPeer: false }));
  }
  try {
    let assoc: AcceptedAssociation;
    try {
      assoc = await conn.associate(
        [...contexts].map(([k, id]) => {
          const [abstractSyntax, ts] = k.split('|') as [string, string];
          return { id, abstractSyntax, transferSyntaxes: [ts] };
        }),
      );
    } catch (err) {
      const e = asScuError(err);
      return items.map(() => ({ error: e, reachedPeer: false }));
    }
    const peerMax = assoc.maxPduLength === 0 ? UNLIMITED_SEND_PDU : assoc.maxPduLength;
    let broken: EdgeError | undefined;
    for (const it of items) {
      if (broken !== undefined) {
        outcomes.push({ error: broken, reachedPeer: false });
        continue;
      }
      const id = contexts.get(`${it.sopClassUid}|${it.transferSyntaxUid}`);
      if (id === undefined || !assoc.accepted.has(id)) {
        outcomes.push({
          error: new EdgeError(
            'EDGE_STORE_SCU_REJECTED',
            'the PACS accepted no presentation context for this SOP class and transfer syntax',
            {
              detail: { result: id === undefined ? -1 : (assoc.results.get(id) ?? -1) },
            },
          ),
          reachedPeer: true,
        });
        continue;
      }
      try {
        outcomes.push(await conn.cStore(id, it, peerMax));
      } catch (err) {
        broken = asScuError(err);
        // A failure reading our own spool leaves the association usable only if nothing was sent yet;
        // the simple and safe course is to end the association.
        outcomes.push({ error: broken, reachedPeer: false });
      }
    }
    if (broken === undefined) await conn.release().catch(() => undefined);
    return outcomes;
  } finally {
    conn.close();
  }
}

function asScuError(err: unknown): EdgeError {
  if (isEdgeError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  return new EdgeError('EDGE_STORE_SCU_FAILED', `PACS connection failed (${e.code ?? e.message})`, {
    cause: err,
    detail: { errno: e.code ?? 'unknown' },
  });
}

/** One requestor association's connection: connect, associate, DIMSE exchanges, release (also used by the commitment report SCU). */
export class ScuConnection {
  readonly #socket: Socket;
  readonly #options: StoreScuOptions;
  readonly #reader: PduReader;
  readonly #pdus: Pdu[] = [];
  #waiter: (() => void) | undefined;
  #closedError: EdgeError | undefined;
  #messageId = 0;
  readonly #peer: string;

  private constructor(socket: Socket, options: StoreScuOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#peer = options.peerLabel ?? 'the PACS';
    const max = options.maxPduLength ?? DEFAULT_MAX_PDU;
    this.#reader = new PduReader((type) =>
      type === PduType.AssociateAc ? 64 * 1024 : type === PduType.PDataTf ? max + 64 : type === PduType.AssociateRq ? undefined : 1024,
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const p of this.#reader.push(chunk)) this.#pdus.push(p);
      } catch (err) {
        this.#fail(asScuError(err));
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('error', (err) => this.#fail(asScuError(err)));
    socket.on('close', () => this.#fail(new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} closed the connection`)));
  }

  static open(options: StoreScuOptions, signal: AbortSignal): Promise<ScuConnection> {
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
        () => fail(new EdgeError('EDGE_DICOM_TIMEOUT', `connecting to ${options.peerLabel ?? 'the PACS'} timed out`)),
        options.connectTimeoutMs,
      );
      const onAbort = (): void => fail(new EdgeError('EDGE_SHUTDOWN', 'forwarding stopped'));
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('error', fail);
        socket.off(ready, ok);
      };
      function fail(err: unknown): void {
        cleanup();
        socket.destroy();
        reject(asScuError(err));
      }
      function ok(): void {
        cleanup();
        const conn = new ScuConnection(socket, options);
        signal.addEventListener('abort', () => conn.abort(), { once: true });
        resolve(conn);
      }
      if (signal.aborted) {
        fail(new EdgeError('EDGE_SHUTDOWN', 'forwarding stopped'));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once(ready, ok);
    });
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

  async #write(bytes: Buffer): Promise<void> {
    if (this.#closedError !== undefined) throw this.#closedError;
    if (this.#socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new EdgeError('EDGE_DICOM_TIMEOUT', `${this.#peer} does not read`)),
        this.#options.responseTimeoutMs,
      );
      const onDrain = (): void => done();
      const onClose = (): void => done(this.#closedError ?? new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} closed the connection`));
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

  async associate(
    contexts: Parameters<typeof encodeAssociateRq>[0]['contexts'],
    roleSelections?: Parameters<typeof encodeAssociateRq>[0]['roleSelections'],
  ): Promise<AcceptedAssociation> {
    await this.#write(
      encodeAssociateRq({
        callingAeTitle: this.#options.callingAeTitle,
        calledAeTitle: this.#options.calledAeTitle,
        contexts,
        maxPduLength: this.#options.maxPduLength ?? DEFAULT_MAX_PDU,
        ...(roleSelections === undefined ? {} : { roleSelections }),
      }),
    );
    const pdu = await this.#nextPdu();
    if (pdu.type === PduType.AssociateAc) return parseAssociateAc(pdu.body);
    if (pdu.type === PduType.AssociateRj) {
      const [, result, source, reason] = pdu.body;
      throw new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} rejected the association`, {
        detail: { result: result ?? 0, source: source ?? 0, reason: reason ?? 0 },
      });
    }
    throw new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} aborted the association`);
  }

  async cStore(contextId: number, item: StoreItem, peerMax: number): Promise<StoreOutcome> {
    const messageId = (this.#messageId = (this.#messageId % 0xffff) + 1);
    const command = encodeCommand({
      CommandField: CommandField.CStoreRq,
      MessageID: messageId,
      Priority: 0,
      AffectedSOPClassUID: item.sopClassUid,
      AffectedSOPInstanceUID: item.sopInstanceUid,
      CommandDataSetType: CommandDataSetTypePresent,
    });
    for (const p of encodePData(contextId, true, command, peerMax)) await this.#write(p);
    // One chunk of lookahead: only the last fragment of the data set may carry the "last" bit.
    let held: Buffer | undefined;
    for await (const chunk of item.data()) {
      if (held !== undefined) await this.#sendData(contextId, held, false, peerMax);
      held = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    await this.#sendData(contextId, held ?? Buffer.alloc(0), true, peerMax);
    const rsp = await this.#readCommand();
    if (rsp.CommandField !== CommandField.CStoreRsp || rsp.MessageIDBeingRespondedTo !== messageId) {
      throw new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} answered with an unexpected message`);
    }
    return { status: rsp.Status ?? 0xffff, ...(rsp.ErrorComment === undefined ? {} : { errorComment: rsp.ErrorComment }) };
  }

  /** Send one request (command and optional data set, already encoded) and wait for its response command. */
  async request(contextId: number, command: Omit<Command, 'MessageID'>, dataSet: Buffer | undefined, peerMax: number): Promise<Command> {
    const messageId = (this.#messageId = (this.#messageId % 0xffff) + 1);
    for (const p of encodePData(contextId, true, encodeCommand({ ...command, MessageID: messageId }), peerMax)) await this.#write(p);
    if (dataSet !== undefined) for (const p of encodePData(contextId, false, dataSet, peerMax)) await this.#write(p);
    const rsp = await this.#readCommand();
    if (rsp.CommandField !== (command.CommandField | 0x8000) || rsp.MessageIDBeingRespondedTo !== messageId) {
      throw new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} answered with an unexpected message`);
    }
    return rsp;
  }

  /** Fragments of at most the peer's PDU size, written in corked groups (header and fragment, no copy). */
  async #sendData(contextId: number, data: Buffer, isLast: boolean, peerMax: number): Promise<void> {
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
    if (this.#socket.writableNeedDrain) await this.#write(Buffer.alloc(0));
  }

  async #readCommand(): Promise<Command> {
    const parts: Buffer[] = [];
    for (;;) {
      const pdu = await this.#nextPdu();
      if (pdu.type !== PduType.PDataTf)
        throw new EdgeError('EDGE_STORE_SCU_FAILED', `${this.#peer} aborted or released during an operation`);
      for (const pdv of parsePDataTf(pdu.body)) {
        if (!pdv.isCommand) continue; // C-STORE-RSP carries no data set
        parts.push(pdv.data);
        if (pdv.isLast) return decodeCommand(Buffer.concat(parts));
      }
    }
  }

  async release(): Promise<void> {
    await this.#write(encodeReleaseRq());
    for (;;) {
      const pdu = await this.#nextPdu();
      if (pdu.type === PduType.ReleaseRp || pdu.type === PduType.Abort) return;
    }
  }

  abort(): void {
    if (!this.#socket.destroyed) this.#socket.end(encodeAbort(0, 0));
    this.#fail(new EdgeError('EDGE_SHUTDOWN', 'forwarding stopped'));
  }

  close(): void {
    this.#socket.destroy();
  }
}
