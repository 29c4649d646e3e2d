// A Modality Worklist C-FIND SCU (PS3.4 K.4.1.3.1, PS3.7 9.1.2) on one association, built on the box's
// own PDU and DIMSE codec. The flood benchmark needs the latency of each query on an open association at
// a steady rate; `findscu --repeat` can only send its queries back to back and reports no per-query time.
// Every step has a deadline; a broken association is reported, never waited on.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import { DataDictionary, type Keyword } from '../daemon/core/data-dictionary.ts';
import type { DataElement, DataSet } from '../daemon/core/dataset.ts';
import { encodeAssociateRq, parseAssociateAc } from '../daemon/dicom/association-requestor.ts';
import { encodeDataSet } from '../daemon/dicom/dataset-codec.ts';
import {
  CommandDataSetTypePresent,
  CommandField,
  decodeCommand,
  encodeCommand,
  hasDataSet,
  Status,
  type Command,
} from '../daemon/dicom/dimse-command.ts';
import { SopClass } from '../daemon/dicom/dimse-service.ts';
import { encodePData, encodeReleaseRq, parsePDataTf, type Pdu, PduReader, PduType } from '../daemon/dicom/pdu.ts';
import { TransferSyntax } from '../daemon/dicom/transfer-syntax.ts';

const CONTEXT_ID = 1;
const MAX_PDU = 65_536;
/** A worklist answer of 50 items is ~25 KB; a data set beyond this is not a worklist item. */
const MAX_DATASET_BYTES = 1 << 20;

export interface MwlScuOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  /** TLS client options (ca, cert, key, servername); undefined = plain TCP. */
  readonly tls?: tls.ConnectionOptions;
  /** Connect + TLS + A-ASSOCIATE-AC, and separately each whole query, must finish within this. */
  readonly timeoutMs: number;
  /** Source address (loopback only). */
  readonly localAddress?: string;
}

export interface FindAnswer {
  /** Pending responses, each with an identifier. */
  readonly matches: number;
  /** Final status (0x0000 success). */
  readonly status: number;
}

/** One query key, with the VR of the box's data dictionary. */
function key(keyword: Keyword, value: string | DataSet[]): [number, DataElement] {
  const { tag, vr } = DataDictionary[keyword];
  return [tag, { vr, value } as DataElement];
}

/** The identifier a modality at `station` sends for its steps on `date` (keys it wants back left empty). */
export function stationQuery(station: string, date: string): DataSet {
  return new Map([
    key('SpecificCharacterSet', 'ISO_IR 100'),
    key('AccessionNumber', ''),
    key('PatientName', ''),
    key('PatientID', ''),
    key('StudyInstanceUID', ''),
    key('ScheduledProcedureStepSequence', [
      new Map([
        key('Modality', ''),
        key('ScheduledStationAETitle', station),
        key('ScheduledProcedureStepStartDate', date),
        key('ScheduledProcedureStepID', ''),
      ]),
    ]),
  ]);
}

export class MwlAssociation {
  readonly #socket: net.Socket;
  readonly #reader = new PduReader((type) =>
    type === PduType.AssociateAc ? 64 * 1024 : type === PduType.AssociateRq ? undefined : MAX_PDU + 64,
  );
  readonly #pdus: Pdu[] = [];
  readonly #timeoutMs: number;
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  #peerMax = MAX_PDU;
  #transferSyntax: string = TransferSyntax.ImplicitVRLittleEndian;
  #messageId = 0;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#pdus.push(...this.#reader.push(chunk));
      } catch (err) {
        this.#fail(err as Error);
      }
      this.#notify();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('the box closed the association')));
  }

  static async open(o: MwlScuOptions): Promise<MwlAssociation> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const base = { host: o.host, port: o.port, ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) };
      const s = o.tls === undefined ? net.connect(base) : tls.connect({ ...o.tls, ...base });
      const ready = o.tls === undefined ? 'connect' : 'secureConnect';
      const timer = setTimeout(() => s.destroy(new Error(`no ${ready} within ${o.timeoutMs} ms`)), o.timeoutMs);
      s.once(ready, () => {
        clearTimeout(timer);
        s.off('error', onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        s.destroy();
        reject(err);
      };
      s.once('error', onError);
    });
    socket.setNoDelay(true);
    const a = new MwlAssociation(socket, o.timeoutMs);
    try {
      await a.#associate(o);
    } catch (err) {
      a.destroy();
      throw err;
    }
    return a;
  }

  async #associate(o: MwlScuOptions): Promise<void> {
    const deadline = performance.now() + this.#timeoutMs;
    this.#socket.write(
      encodeAssociateRq({
        callingAeTitle: o.callingAeTitle,
        calledAeTitle: o.calledAeTitle,
        contexts: [
          {
            id: CONTEXT_ID,
            abstractSyntax: SopClass.ModalityWorklistInformationModelFind,
            transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
          },
        ],
        maxPduLength: MAX_PDU,
      }),
    );
    const pdu = await this.#next(deadline);
    if (pdu.type === PduType.AssociateRj)
      throw new Error(`association rejected (result/source/reason ${[...pdu.body.subarray(1, 4)].join('/')})`);
    if (pdu.type !== PduType.AssociateAc) throw new Error(`answered the A-ASSOCIATE-RQ with PDU type ${pdu.type}`);
    const ac = parseAssociateAc(pdu.body);
    const ts = ac.accepted.get(CONTEXT_ID);
    if (ts === undefined) throw new Error('the worklist context was not accepted');
    this.#transferSyntax = ts;
    this.#peerMax = ac.maxPduLength === 0 ? MAX_PDU : ac.maxPduLength;
  }

  /** One C-FIND; resolves with the number of matches and the final status, or rejects on timeout/failure. */
  async find(identifier: DataSet): Promise<FindAnswer> {
    const deadline = performance.now() + this.#timeoutMs;
    const messageId = (this.#messageId = (this.#messageId % 0xffff) + 1);
    const command = encodeCommand({
      CommandField: CommandField.CFindRq,
      MessageID: messageId,
      Priority: 0,
      AffectedSOPClassUID: SopClass.ModalityWorklistInformationModelFind,
      CommandDataSetType: CommandDataSetTypePresent,
    });
    const data = encodeDataSet(identifier, this.#transferSyntax);
    for (const p of [...encodePData(CONTEXT_ID, true, command, this.#peerMax), ...encodePData(CONTEXT_ID, false, data, this.#peerMax)])
      this.#socket.write(p);
    let matches = 0;
    for (;;) {
      const rsp = await this.#readMessage(deadline);
      if (rsp.CommandField !== CommandField.CFindRsp || rsp.MessageIDBeingRespondedTo !== messageId)
        throw new Error('unexpected DIMSE message');
      const status = rsp.Status ?? -1;
      if (status === Status.Pending || status === Status.PendingWarning) matches++;
      else return { matches, status };
    }
  }

  /** A-RELEASE, waiting at most the timeout for the answer; the socket is closed either way. */
  async release(): Promise<void> {
    try {
      if (this.#failure !== undefined) return;
      this.#socket.write(encodeReleaseRq());
      const deadline = performance.now() + this.#timeoutMs;
      while ((await this.#next(deadline)).type !== PduType.ReleaseRp);
    } catch {
      // The association ends here whatever the box answered; nothing is left to report.
    } finally {
      this.destroy();
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** A command and, when it says one follows, its data set (read and discarded: only counts matter). */
  async #readMessage(deadline: number): Promise<Command> {
    const command = await this.#readPart(true, deadline);
    const decoded = decodeCommand(command);
    if (hasDataSet(decoded)) await this.#readPart(false, deadline);
    return decoded;
  }

  async #readPart(isCommand: boolean, deadline: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for (;;) {
      const pdu = await this.#next(deadline);
      if (pdu.type !== PduType.PDataTf)
        throw new Error(pdu.type === PduType.Abort ? 'the box aborted the association' : `unexpected PDU type ${pdu.type}`);
      for (const pdv of parsePDataTf(pdu.body)) {
        if (pdv.isCommand !== isCommand) throw new Error('command and data set fragments interleaved');
        parts.push(pdv.data);
        size += pdv.data.length;
        if (size > MAX_DATASET_BYTES) throw new Error('response larger than the cap');
        if (pdv.isLast) return Buffer.concat(parts);
      }
    }
  }

  async #next(deadline: number): Promise<Pdu> {
    for (;;) {
      const p = this.#pdus.shift();
      if (p !== undefined) return p;
      if (this.#failure !== undefined) throw this.#failure;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#fail(new Error(`no answer within ${this.#timeoutMs} ms`));
        throw this.#failure ?? new Error('timed out');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#socket.destroy();
    this.#notify();
  }
}
