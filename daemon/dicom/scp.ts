// One DICOM association on one socket, acceptor side (PS3.8 9.2 state machine, simplified to what an
// SCP needs): ARTIM while waiting for A-ASSOCIATE-RQ, an idle timer between PDUs, P-DATA reassembly,
// serial dispatch through the service table, C-CANCEL, A-RELEASE and A-ABORT.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { DataSet } from '../core/dataset.ts';
import type { Logger } from '../core/log.ts';
import type { AssociateRq } from './association.ts';
import {
  DICOM_APPLICATION_CONTEXT,
  encodeAssociateAc,
  negotiatePresentationContexts,
  parseAssociateRq,
  PresentationContextResult,
} from './association.ts';
import type { AssociationDecision, AssociationPolicy } from './association-policy.ts';
import { RejectReason, RejectResult, RejectSource } from './association-policy.ts';
import { encodeDataSet } from './dataset-codec.ts';
import type { DicomEventListener, AssociationIdentity } from './dicom-event.ts';
import type { Command } from './dimse-command.ts';
import {
  CommandDataSetTypeNone,
  CommandDataSetTypePresent,
  CommandField,
  decodeCommand,
  encodeCommand,
  hasDataSet,
  isRequest,
  Status,
} from './dimse-command.ts';
import type {
  AssociationContext,
  DataSetSink,
  DimseExchange,
  DimseService,
  PeerCertificate,
  ResponseCommand,
  Transport,
} from './dimse-service.ts';
import { serviceKey } from './dimse-service.ts';
import type { Pdu } from './pdu.ts';
import {
  AbortReason,
  AbortSource,
  encodeAbort,
  encodeAssociateRj,
  encodePData,
  encodeReleaseRp,
  parsePDataTf,
  PduReader,
  PduType,
} from './pdu.ts';
import type { TransferSyntaxUid } from './transfer-syntax.ts';
import { isSupportedTransferSyntax } from './transfer-syntax.ts';

/** Cap for an A-ASSOCIATE-RQ body: real ones are a few KiB even with 128 contexts. */
export const MAX_ASSOCIATE_RQ_LENGTH = 64 * 1024;
/** Slack over our announced maximum for peers that count the PDV header in it. */
const PDATA_SLACK = 64;
const MAX_COMMAND_BYTES = 64 * 1024;
/** Requests queued behind the running one; the window we negotiate is 1, so more is abuse. */
const MAX_QUEUED_MESSAGES = 4;
/** Messages up to this size are written in one socket write. */
const COALESCE_BYTES = 64 * 1024;

export interface ScpOptions {
  readonly aeTitle: string;
  /** Our Maximum Length Received (P-DATA-TF variable field). */
  readonly maxPduLength: number;
  /** ARTIM: time allowed from connection to A-ASSOCIATE-RQ, and from reject/release to close. */
  readonly associationRequestTimeoutMs: number;
  /** Time allowed without a PDU from the peer while no operation runs; also the write-drain timeout. */
  readonly idleTimeoutMs: number;
  /** Cap on one reassembled data set (C-FIND identifiers, N-CREATE/N-SET attribute lists). */
  readonly maxDataSetBytes: number;
  readonly services: readonly DimseService[];
  readonly onAssociationRequest: AssociationPolicy;
  readonly onEvent: DicomEventListener;
  readonly logger: Logger;
}

export interface TransportInfo {
  readonly remoteAddress: string;
  readonly transport: Transport;
  readonly peerCertificate?: PeerCertificate;
}

type State = 'awaiting-request' | 'negotiating' | 'established' | 'closing' | 'closed';

interface AcceptedContext {
  readonly id: number;
  readonly abstractSyntax: string;
  /** A codec syntax, except on contexts negotiated from `transferSyntaxesByAbstractSyntax` (kept as received). */
  readonly transferSyntax: string;
}

interface IncomingMessage {
  readonly context: AcceptedContext;
  readonly commandChunks: Buffer[];
  commandBytes: number;
  command: Command | undefined;
  readonly dataChunks: Buffer[];
  dataBytes: number;
  /** Set when the service streams this data set (C-STORE): fragments go here, not to `dataChunks`. */
  sink?: DataSetSink;
}

type Queued =
  | {
      readonly kind: 'message';
      readonly context: AcceptedContext;
      readonly command: Command;
      readonly dataSet: Buffer | undefined;
      readonly sink?: DataSetSink | undefined;
    }
  | { readonly kind: 'release' };

interface ActiveOperation {
  readonly messageId: number | undefined;
  readonly controller: AbortController;
  cancelled: boolean;
}

export class DicomAssociation {
  readonly associationId = randomBytes(6).toString('hex');
  readonly #socket: Socket;
  readonly #transport: TransportInfo;
  readonly #options: ScpOptions;
  readonly #logger: Logger;
  readonly #services: ReadonlyMap<string, DimseService>;
  readonly #reader: PduReader;
  readonly #closed: Promise<void>;
  #resolveClosed!: () => void;
  #state: State = 'awaiting-request';
  #timer: NodeJS.Timeout | undefined;
  #identity: AssociationIdentity;
  #contexts = new Map<number, AcceptedContext>();
  #peerMaxPduLength = 0;
  #context: AssociationContext | undefined;
  #incoming: IncomingMessage | undefined;
  #queue: Queued[] = [];
  #processing = false;
  #active: ActiveOperation | undefined;
  /** Sink writes still in flight; the socket is paused while any is. */
  #sinkWaits = 0;
  /** Requests of the box's own (`invoke`) waiting for the peer's response, by Message ID. */
  readonly #invoked = new Map<number, { resolve: (c: Command) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  #invokeMessageId = 0x8000;
  /** Association-wide abort, linked into every operation's signal. */
  readonly #lifetime = new AbortController();
  #endReported = false;

  constructor(socket: Socket, transport: TransportInfo, options: ScpOptions) {
    this.#socket = socket;
    this.#transport = transport;
    this.#options = options;
    this.#logger = options.logger.child({ associationId: this.associationId });
    this.#services = new Map(options.services.map((s) => [serviceKey(s.commandField, s.sopClassUid), s]));
    this.#identity = {
      associationId: this.associationId,
      remoteAddress: transport.remoteAddress,
      transport: transport.transport,
      ...(transport.peerCertificate === undefined
        ? {}
        : {
            peerCertificateCn: transport.peerCertificate.subjectCn,
            peerCertificateFingerprint256: transport.peerCertificate.fingerprint256,
          }),
    };
    this.#reader = new PduReader((type) => this.#capFor(type));
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#logger.debug('dicom.socket-error', { errno: err.code ?? 'unknown' });
    });
    socket.on('close', () => this.#onClose());
    this.#arm(options.associationRequestTimeoutMs, 'association request timeout');
    this.#logger.debug('dicom.connection', { remoteAddress: transport.remoteAddress, transport: transport.transport });
  }

  /** Resolves once the socket has closed, however the association ended. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** True while an operation runs or requests are queued. */
  get busy(): boolean {
    return this.#active !== undefined || this.#queue.length > 0;
  }

  /** What the association policy returned for this peer (undefined until accepted). */
  get peer(): unknown {
    return this.#context?.peer;
  }

  /** End the association now: A-ABORT (service-user) and close. */
  abort(why: string): void {
    this.#abort(AbortSource.ServiceUser, 0, why);
  }

  #capFor(type: number): number | undefined {
    switch (this.#state) {
      case 'awaiting-request':
        if (type === PduType.AssociateRq) return MAX_ASSOCIATE_RQ_LENGTH;
        return type === PduType.Abort ? 4 : undefined;
      case 'negotiating':
        return type === PduType.Abort ? 4 : undefined;
      case 'established':
        if (type === PduType.PDataTf) return this.#options.maxPduLength + PDATA_SLACK;
        if (type === PduType.ReleaseRq || type === PduType.Abort) return 4;
        return undefined;
      default:
        // After release/reject only an A-ABORT is meaningful; anything else is dropped.
        return type === PduType.Abort ? 4 : undefined;
    }
  }

  #arm(ms: number, why: string): void {
    this.#disarm();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#logger.info('dicom.timeout', { why });
      if (this.#state === 'closing') this.#socket.destroy();
      else this.#abort(AbortSource.ServiceProvider, AbortReason.NotSpecified, why);
    }, ms);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #armIdle(): void {
    if (this.#state === 'established' && !this.#processing) this.#arm(this.#options.idleTimeoutMs, 'idle timeout');
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'established') this.#armIdle();
    let pdus: Pdu[];
    try {
      pdus = this.#reader.push(chunk);
    } catch (err) {
      this.#protocolError(err);
      return;
    }
    for (const pdu of pdus) {
      if (this.#isEnded()) return;
      try {
        this.#onPdu(pdu);
      } catch (err) {
        this.#protocolError(err);
        return;
      }
    }
  }

  #isEnded(): boolean {
    return this.#state === 'closed' || this.#state === 'closing';
  }

  #protocolError(err: unknown): void {
    const code = isEdgeError(err) ? err.code : 'EDGE_DICOM_PDU_INVALID';
    this.#logger.warn('dicom.protocol-error', { code, state: this.#state });
    if (this.#state === 'closing') {
      this.#socket.destroy();
      return;
    }
    const reason = code === 'EDGE_DICOM_PDU_TOO_LARGE' ? AbortReason.InvalidPduParameterValue : AbortReason.UnexpectedPdu;
    this.#abort(AbortSource.ServiceProvider, reason, code);
  }

  #onPdu(pdu: Pdu): void {
    switch (pdu.type) {
      case PduType.AssociateRq:
        this.#state = 'negotiating';
        this.#disarm();
        this.#negotiate(pdu.body).catch((err: unknown) => this.#protocolError(err));
        return;
      case PduType.Abort:
        this.#logger.info('dicom.abort-received');
        this.#reportEnd({ type: 'association-aborted', by: 'peer', why: 'A-ABORT received' });
        this.#lifetime.abort();
        this.#socket.destroy();
        return;
      case PduType.PDataTf:
        for (const pdv of parsePDataTf(pdu.body)) this.#onPdv(pdv.presentationContextId, pdv.isCommand, pdv.isLast, pdv.data);
        return;
      case PduType.ReleaseRq:
        if (this.#incoming !== undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'release inside a message');
        this.#enqueue({ kind: 'release' });
        return;
      default:
        throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'unexpected PDU');
    }
  }

  #onPdv(contextId: number, isCommand: boolean, isLast: boolean, data: Buffer): void {
    const context = this.#contexts.get(contextId);
    if (context === undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'PDV on a context that was not accepted');
    let msg = this.#incoming;
    if (msg === undefined) {
      if (!isCommand) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'data set fragment before its command');
      msg = { context, commandChunks: [], commandBytes: 0, command: undefined, dataChunks: [], dataBytes: 0 };
      this.#incoming = msg;
    }
    if (msg.context.id !== contextId) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'message fragments on different contexts');
    if (isCommand) {
      if (msg.command !== undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'command fragment after the command ended');
      msg.commandBytes += data.length;
      if (msg.commandBytes > MAX_COMMAND_BYTES) throw new EdgeError('EDGE_DICOM_PDU_TOO_LARGE', 'command set too large');
      msg.commandChunks.push(data);
      if (!isLast) return;
      msg.command = decodeCommand(Buffer.concat(msg.commandChunks, msg.commandBytes));
      if (hasDataSet(msg.command)) {
        this.#openSink(msg, context, msg.command);
        return;
      }
      this.#incoming = undefined;
      this.#onMessage(context, msg.command, undefined);
      return;
    }
    if (msg.command === undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'data set fragment before the command ended');
    if (!hasDataSet(msg.command)) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'data set fragment for a command without data set');
    if (msg.sink !== undefined) {
      this.#writeSink(msg.sink, data);
      if (!isLast) return;
      this.#incoming = undefined;
      msg.sink.end();
      this.#onMessage(context, msg.command, undefined, msg.sink);
      return;
    }
    msg.dataBytes += data.length;
    if (msg.dataBytes > this.#options.maxDataSetBytes) throw new EdgeError('EDGE_DICOM_PDU_TOO_LARGE', 'data set too large');
    msg.dataChunks.push(data);
    if (!isLast) return;
    this.#incoming = undefined;
    this.#onMessage(context, msg.command, Buffer.concat(msg.dataChunks, msg.dataBytes));
  }

  /** Streaming services get their data set fragment by fragment; the SOP class must match the context. */
  #openSink(msg: IncomingMessage, context: AcceptedContext, command: Command): void {
    const sopClass = command.AffectedSOPClassUID ?? command.RequestedSOPClassUID ?? context.abstractSyntax;
    if (sopClass !== context.abstractSyntax || this.#context === undefined) return;
    const service = this.#services.get(serviceKey(command.CommandField, sopClass));
    if (service?.openDataSetSink === undefined) return;
    msg.sink = service.openDataSetSink(
      { presentationContextId: context.id, abstractSyntax: context.abstractSyntax, transferSyntax: context.transferSyntax, command },
      this.#context,
    );
  }

  #writeSink(sink: DataSetSink, fragment: Buffer): void {
    const wait = sink.write(fragment);
    if (wait === undefined) return;
    if (this.#sinkWaits++ === 0) this.#socket.pause();
    const resume = (): void => {
      if (--this.#sinkWaits === 0 && !this.#socket.destroyed) this.#socket.resume();
    };
    wait.then(resume, resume);
  }

  /** Sinks no service took over yet are told the association ended (their partial data is dropped). */
  #abortSinks(reason: string): void {
    this.#incoming?.sink?.abort(reason);
    for (const q of this.#queue) if (q.kind === 'message') q.sink?.abort(reason);
  }

  #onMessage(context: AcceptedContext, command: Command, dataSet: Buffer | undefined, sink?: DataSetSink): void {
    if (!isRequest(command.CommandField)) {
      const waiting = this.#invoked.get(command.MessageIDBeingRespondedTo ?? -1);
      if (waiting === undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'the SCU sent a response to nothing the box asked');
      this.#invoked.delete(command.MessageIDBeingRespondedTo ?? -1);
      clearTimeout(waiting.timer);
      waiting.resolve(command);
      return;
    }
    if (command.CommandField === CommandField.CCancelRq) {
      // Cancels only the running request it names; others are ignored (PS3.7 9.3.2.3).
      const active = this.#active;
      if (active !== undefined && active.messageId === command.MessageIDBeingRespondedTo && !active.cancelled) {
        active.cancelled = true;
        active.controller.abort(new EdgeError('EDGE_DICOM_PDU_INVALID', 'cancelled by the SCU'));
        this.#logger.info('dicom.cancel-received');
      }
      return;
    }
    this.#enqueue({ kind: 'message', context, command, dataSet, sink });
  }

  #enqueue(item: Queued): void {
    if (this.#queue.length >= MAX_QUEUED_MESSAGES) {
      if (item.kind === 'message') item.sink?.abort('too many outstanding requests');
      throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'too many outstanding requests');
    }
    this.#queue.push(item);
    if (!this.#processing) {
      this.#processing = true;
      this.#disarm();
      this.#process().catch((err: unknown) => {
        this.#logger.warn('dicom.operation-failed', { code: isEdgeError(err) ? err.code : 'unknown' });
        this.#abort(AbortSource.ServiceProvider, AbortReason.NotSpecified, 'operation failed');
      });
    }
  }

  async #process(): Promise<void> {
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        if (this.#state !== 'established') {
          if (item.kind === 'message') item.sink?.abort('association ended');
          continue;
        }
        if (item.kind === 'release') {
          this.#release();
          return;
        }
        await this.#dispatch(item.context, item.command, item.dataSet, item.sink);
      }
    } finally {
      this.#processing = false;
      this.#armIdle();
    }
  }

  #release(): void {
    this.#state = 'closing';
    this.#failInvoked();
    this.#logger.info('dicom.released');
    this.#reportEnd({ type: 'association-released' });
    // The requestor closes the transport after A-RELEASE-RP (PS3.8 7.2); ARTIM covers one that does not.
    this.#socket.end(encodeReleaseRp());
    this.#arm(this.#options.associationRequestTimeoutMs, 'close after release');
  }

  async #dispatch(context: AcceptedContext, command: Command, dataSet: Buffer | undefined, sink: DataSetSink | undefined): Promise<void> {
    if (!isRequest(command.CommandField)) {
      throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'the SCU sent a response');
    }
    const sopClass = command.AffectedSOPClassUID ?? command.RequestedSOPClassUID ?? context.abstractSyntax;
    const service = sopClass === context.abstractSyntax ? this.#services.get(serviceKey(command.CommandField, sopClass)) : undefined;
    const active: ActiveOperation = { messageId: command.MessageID, controller: new AbortController(), cancelled: false };
    const signal = AbortSignal.any([active.controller.signal, this.#lifetime.signal]);
    const exchange: DimseExchange = {
      association: this.#context as AssociationContext,
      logger: this.#logger,
      signal,
      get cancelled() {
        return active.cancelled;
      },
      respond: (response, ds) => this.#respond(context, response, ds),
    };
    if (service === undefined || (service.openDataSetSink !== undefined && hasDataSet(command) && sink === undefined)) {
      sink?.abort('no service');
      const status = sopClass === context.abstractSyntax ? Status.UnrecognizedOperation : Status.RefusedSOPClassNotSupported;
      this.#logger.info('dicom.request-refused', { commandField: command.CommandField, status });
      await exchange.respond({
        CommandField: command.CommandField | 0x8000,
        MessageIDBeingRespondedTo: command.MessageID ?? 0,
        AffectedSOPClassUID: sopClass,
        Status: status,
      });
      return;
    }
    this.#active = active;
    try {
      this.#logger.debug('dicom.request', { commandField: command.CommandField });
      await service.handle(
        {
          presentationContextId: context.id,
          abstractSyntax: context.abstractSyntax,
          // Only storage contexts carry syntaxes outside the codec's, and storage services do not decode.
          transferSyntax: context.transferSyntax as TransferSyntaxUid,
          command,
          dataSet,
          ...(sink === undefined ? {} : { sink }),
        },
        exchange,
      );
    } finally {
      this.#active = undefined;
    }
  }

  /** A request of the box's own to the peer (AssociationContext.invoke): sent on an accepted context of its SOP class. */
  async #invoke(abstractSyntax: string, command: ResponseCommand, ds: DataSet | undefined): Promise<Command> {
    if (this.#state !== 'established') throw new EdgeError('EDGE_SHUTDOWN', 'association no longer established');
    const context = [...this.#contexts.values()].find((c) => c.abstractSyntax === abstractSyntax);
    if (context === undefined) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'no accepted presentation context for the SOP class');
    const messageId = (this.#invokeMessageId = this.#invokeMessageId >= 0xffff ? 0x8000 : this.#invokeMessageId + 1);
    const answered = new Promise<Command>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#invoked.delete(messageId);
        reject(new EdgeError('EDGE_DICOM_TIMEOUT', 'the peer did not answer the request'));
      }, this.#options.idleTimeoutMs);
      timer.unref();
      this.#invoked.set(messageId, { resolve, reject, timer });
    });
    try {
      await this.#respond(context, { ...command, MessageID: messageId }, ds);
    } catch (err) {
      const waiting = this.#invoked.get(messageId);
      this.#invoked.delete(messageId);
      if (waiting !== undefined) clearTimeout(waiting.timer);
      answered.catch(() => undefined);
      throw err;
    }
    return answered;
  }

  #failInvoked(): void {
    for (const [id, w] of this.#invoked) {
      clearTimeout(w.timer);
      w.reject(new EdgeError('EDGE_SHUTDOWN', 'association ended before the peer answered'));
      this.#invoked.delete(id);
    }
  }

  #corked = false;

  async #respond(context: AcceptedContext, response: ResponseCommand, ds: DataSet | undefined): Promise<void> {
    if (this.#state !== 'established') throw new EdgeError('EDGE_SHUTDOWN', 'association no longer established');
    const data = ds === undefined ? undefined : encodeDataSet(ds, context.transferSyntax);
    const command = encodeCommand({
      ...response,
      CommandDataSetType: data === undefined ? CommandDataSetTypeNone : CommandDataSetTypePresent,
    });
    const pdus = encodePData(context.id, true, command, this.#peerMaxPduLength);
    if (data !== undefined) pdus.push(...encodePData(context.id, false, data, this.#peerMaxPduLength));
    let total = 0;
    for (const p of pdus) total += p.length;
    if (total <= COALESCE_BYTES) {
      await this.#write(Buffer.concat(pdus, total));
      return;
    }
    for (const p of pdus) await this.#write(p);
  }

  /** Write with backpressure: wait for 'drain' (bounded by the idle timeout) when the socket buffer is full. */
  #write(bytes: Buffer): Promise<void> {
    if (this.#state === 'closed' || this.#socket.destroyed) {
      return Promise.reject(new EdgeError('EDGE_SHUTDOWN', 'association closed'));
    }
    // Coalesce every message written in one turn of the event loop (a C-FIND's pending responses) into
    // as few socket writes as possible; backpressure still applies through write()'s return value.
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    if (this.#socket.write(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: EdgeError): void => {
        clearTimeout(timer);
        this.#socket.off('drain', onDrain);
        this.#socket.off('close', onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new EdgeError('EDGE_SHUTDOWN', 'association closed'));
      const timer = setTimeout(() => {
        done(new EdgeError('EDGE_DICOM_TIMEOUT', 'peer does not read'));
      }, this.#options.idleTimeoutMs);
      this.#socket.on('drain', onDrain);
      this.#socket.on('close', onClose);
    });
  }

  async #negotiate(body: Buffer): Promise<void> {
    let rq: AssociateRq;
    try {
      rq = parseAssociateRq(body);
    } catch (err) {
      this.#protocolError(err);
      return;
    }
    this.#identity = { ...this.#identity, callingAeTitle: rq.callingAeTitle, calledAeTitle: rq.calledAeTitle };
    if ((rq.protocolVersion & 1) === 0) {
      this.#reject(
        RejectResult.Permanent,
        RejectSource.ServiceProviderAcse,
        RejectReason.ProtocolVersionNotSupported,
        'protocol version not supported',
      );
      return;
    }
    if (rq.applicationContextName !== DICOM_APPLICATION_CONTEXT) {
      this.#reject(
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        RejectReason.ApplicationContextNameNotSupported,
        'application context not supported',
      );
      return;
    }
    if (rq.calledAeTitle !== this.#options.aeTitle) {
      this.#reject(
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        RejectReason.CalledAETitleNotRecognized,
        'called AE title not recognized',
      );
      return;
    }
    let decision: AssociationDecision;
    try {
      decision = await this.#options.onAssociationRequest({
        callingAeTitle: rq.callingAeTitle,
        calledAeTitle: rq.calledAeTitle,
        remoteAddress: this.#transport.remoteAddress,
        transport: this.#transport.transport,
        ...(this.#transport.peerCertificate === undefined ? {} : { peerCertificate: this.#transport.peerCertificate }),
        presentationContexts: rq.presentationContexts,
        implementationClassUid: rq.implementationClassUid,
        implementationVersionName: rq.implementationVersionName,
      });
    } catch (err) {
      this.#logger.error('dicom.policy-failed', { code: isEdgeError(err) ? err.code : 'unknown' });
      decision = {
        accept: false,
        result: RejectResult.Transient,
        source: RejectSource.ServiceUser,
        reason: RejectReason.NoReasonGiven,
        why: 'policy failed',
      };
    }
    if (this.#state !== 'negotiating') return; // the peer aborted or the connection dropped meanwhile
    if (!decision.accept) {
      this.#reject(decision.result, decision.source, decision.reason, decision.why);
      return;
    }
    const offered = new Set(
      [...decision.abstractSyntaxes].filter((uid) => [...this.#services.values()].some((s) => s.sopClassUid === uid)),
    );
    const transferSyntaxes = decision.transferSyntaxes.filter(isSupportedTransferSyntax);
    const asReceived = decision.transferSyntaxesByAbstractSyntax;
    const answers = negotiatePresentationContexts(rq.presentationContexts, offered, transferSyntaxes, asReceived);
    for (const a of answers) {
      const proposed = rq.presentationContexts.find((pc) => pc.id === a.id);
      const usable =
        proposed !== undefined && (asReceived?.has(proposed.abstractSyntax) === true || isSupportedTransferSyntax(a.transferSyntax));
      if (a.result === PresentationContextResult.Acceptance && proposed !== undefined && usable) {
        this.#contexts.set(a.id, { id: a.id, abstractSyntax: proposed.abstractSyntax, transferSyntax: a.transferSyntax });
      }
    }
    // Role selection is answered only for SOP classes proposed with one and accepted on some context.
    const acceptedSyntaxes = new Set([...this.#contexts.values()].map((c) => c.abstractSyntax));
    const roleSelections = [...rq.roleSelections.values()]
      .filter((r) => acceptedSyntaxes.has(r.sopClassUid))
      .map((r) => ({ sopClassUid: r.sopClassUid, scu: r.scu, scp: r.scp && decision.requestorScpRoles?.has(r.sopClassUid) === true }));
    this.#peerMaxPduLength = rq.maxPduLength;
    this.#context = {
      associationId: this.associationId,
      callingAeTitle: rq.callingAeTitle,
      calledAeTitle: rq.calledAeTitle,
      remoteAddress: this.#transport.remoteAddress,
      transport: this.#transport.transport,
      peerCertificate: this.#transport.peerCertificate,
      peer: decision.peer,
      invoke: (abstractSyntax, command, ds) => this.#invoke(abstractSyntax, command, ds),
      isOpen: () => this.#state === 'established',
    };
    this.#state = 'established';
    this.#socket.write(
      encodeAssociateAc({
        calledAeTitle: rq.calledAeTitle,
        callingAeTitle: rq.callingAeTitle,
        presentationContexts: answers,
        maxPduLength: this.#options.maxPduLength,
        roleSelections,
      }),
    );
    this.#armIdle();
    this.#logger.info('dicom.association-accepted', { acceptedContexts: this.#contexts.size, proposedContexts: answers.length });
    this.#options.onEvent({ type: 'association-accepted', acceptedContexts: this.#contexts.size, ...this.#identity });
  }

  #reject(result: 1 | 2, source: 1 | 2 | 3, reason: number, why: string): void {
    this.#state = 'closing';
    this.#logger.info('dicom.association-rejected', { result, source, reason, why });
    this.#endReported = true;
    this.#options.onEvent({ type: 'association-rejected', result, source, reason, why, ...this.#identity });
    this.#socket.end(encodeAssociateRj(result, source, reason));
    this.#arm(this.#options.associationRequestTimeoutMs, 'close after reject');
  }

  #abort(source: number, reason: number, why: string): void {
    if (this.#state === 'closed') return;
    const wasClosing = this.#state === 'closing';
    this.#state = 'closing';
    this.#lifetime.abort();
    this.#failInvoked();
    this.#abortSinks(why);
    this.#reportEnd({ type: 'association-aborted', by: 'local', why });
    if (!this.#socket.destroyed && !wasClosing) {
      this.#logger.info('dicom.abort-sent', { why });
      this.#socket.end(encodeAbort(source, reason));
    }
    // After A-ABORT nothing more is owed to the peer; do not wait long for its close.
    this.#arm(Math.min(1000, this.#options.associationRequestTimeoutMs), 'close after abort');
  }

  #reportEnd(event: { type: 'association-released' } | { type: 'association-aborted'; by: 'peer' | 'local'; why: string }): void {
    if (this.#endReported) return;
    this.#endReported = true;
    // Connections that never asked to associate (port scans, TLS health checks) are not associations.
    if (this.#identity.callingAeTitle === undefined && event.type === 'association-aborted' && event.by === 'peer') return;
    this.#options.onEvent({ ...event, ...this.#identity });
  }

  #onClose(): void {
    const wasState = this.#state;
    this.#state = 'closed';
    this.#disarm();
    this.#lifetime.abort();
    this.#failInvoked();
    this.#abortSinks('connection closed');
    if (wasState !== 'closing') {
      this.#reportEnd({ type: 'association-aborted', by: 'peer', why: 'connection closed' });
    }
    this.#logger.debug('dicom.connection-closed');
    this.#resolveClosed();
  }
}
