// The HL7 v2 inbound listener: MLLP over mutual TLS. Deny by default: a client needs a certificate from
// the site CA, the owner's peer policy must name it, and its messages must carry its own MSH-3/MSH-4.
// Messages of one connection are handled strictly one at a time, in order; the ACK for a message is
// written only after the repository committed it.
//
// What a port scanner or a slow sender can hold is bounded: a connection from an address no peer may
// connect from is closed at accept (when every peer declares its addresses), one that has not
// authenticated waits in the pre-authentication pool (core/pre-authentication-pool.ts: per address and
// in total, oldest yields, closed at the deadline) and never takes an authenticated slot, one that
// closes before it is closed at once (no half-open socket before authentication), a frame must be
// completed within its deadline however many bytes trickle in, and a peer at its connection cap gets in
// anyway: its oldest idle connection yields.
import type { StationAssignment } from '../core/station-assignment.ts';
import type { AddressInfo, Socket } from 'node:net';
import * as tls from 'node:tls';
import type { ProcessingIdPolicy } from '../core/environment.ts';
import type { ErrorCode } from '../core/errors.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { connectionKey, PreAuthenticationPool, SOURCE_NOT_ALLOWED, type PreAuthenticationLimits } from '../core/pre-authentication-pool.ts';
import type { OrderRepository } from '../core/ports.ts';
import { failedHandshakeAddress, tlsRefusal } from '../core/tls-refusal.ts';
import type { Hl7InboundEvent, Hl7Peer } from './inbound-handler.ts';
import { handleInboundMessage } from './inbound-handler.ts';
import type { Hl7MessageLimits } from './message.ts';
import { encodeMllpFrame, MllpDecoder } from './mllp-framing.ts';

export interface PeerCertificateInfo {
  /** Subject CN of the client certificate ('' when none). */
  readonly subjectCN: string;
  /** SHA-256 fingerprint, colon-separated hex as node reports it. */
  readonly fingerprint256: string;
}

export type IdentifyPeer = (connection: {
  readonly certificate: PeerCertificateInfo;
  readonly remoteAddress: string;
}) => { readonly peer: Hl7Peer } | { readonly refused: string };

export type Hl7ListenerEvent =
  | Hl7InboundEvent
  | {
      readonly type: 'peer-refused';
      readonly reason: string;
      readonly remoteAddress: string;
      readonly peer?: string;
      /** Subject of the client certificate the handshake presented, when it failed verification. */
      readonly subject?: string;
    }
  | { readonly type: 'connection-superseded'; readonly peer: string; readonly remoteAddress: string }
  | { readonly type: 'framing-error'; readonly peer: string; readonly remoteAddress: string; readonly code: ErrorCode }
  | { readonly type: 'connection-closed'; readonly peer: string; readonly reason: string };

export interface Hl7ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: Pick<tls.SecureContextOptions, 'ca' | 'cert' | 'key' | 'ciphers' | 'ecdhCurve' | 'minVersion' | 'secureOptions'>;
  readonly maxFrameBytes: number;
  readonly idleTimeoutMs: number;
  /** A frame started must end within this, whatever bytes keep arriving; default min(idleTimeoutMs, 30 s). */
  readonly frameTimeoutMs?: number;
  /** Caps on one message's segments, order groups, fields, repetitions, components, sub-components. */
  readonly messageLimits?: Hl7MessageLimits;
  /** MSH-11 accepted and sent in ACKs; default a production box's (P). */
  readonly processingIds?: ProcessingIdPolicy;
  /** Authenticated connections, in total and per peer (connections still authenticating do not count). */
  readonly maxConnections: number;
  readonly maxConnectionsPerPeer: number;
  readonly ackWriteTimeoutMs: number;
  /** TLS handshake must complete within this; default the pre-authentication timeout. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Connections until their peer is identified: timeout from TCP accept (default handshakeTimeoutMs,
   * else min(idleTimeoutMs, 30 s)), caps in total and per source address (default 64 and 8).
   */
  readonly preAuthentication?: Partial<PreAuthenticationLimits>;
  /**
   * Whether a source address may start at all, asked at TCP accept (before any TLS work); consulted per
   * connection so a reload of the peers takes effect at once. Omitted = every address may try.
   */
  readonly admitsSource?: (remoteAddress: string) => boolean;
  readonly identifyPeer: IdentifyPeer;
  readonly repository: OrderRepository;
  readonly logger: Logger;
  readonly onEvent: (event: Hl7ListenerEvent) => void;
  readonly newStudyInstanceUid?: () => string;
  /** Station rules and default for orders that name no station. */
  readonly stations?: StationAssignment;
}

/** Frames queued per connection before reading pauses (senders may pipeline; memory stays bounded). */
const MAX_QUEUED_FRAMES = 4;

export class Hl7Listener {
  readonly #options: Hl7ListenerOptions;
  readonly #log: Logger;
  #server: tls.Server | undefined;
  #port = 0;
  #starting: Promise<number> | undefined;
  #stopping: Promise<void> | undefined;
  /** Authenticated connections, oldest first. */
  readonly #connections = new Set<Connection>();
  /** Every accepted TCP connection until it closes, authenticated or not (stop() ends them all). */
  readonly #sockets = new Set<Socket>();
  /** TCP connections closed (and audited) before their handshake ended: their tlsClientError is not news. */
  readonly #closedBeforeTls = new WeakSet<Socket>();
  readonly #perPeer = new Map<string, number>();
  /** Accepted TCP connections until their peer is identified, by connectionKey. */
  readonly #pending: PreAuthenticationPool<Socket>;
  readonly #preAuthenticationTimeoutMs: number;

  constructor(options: Hl7ListenerOptions) {
    for (const key of ['maxFrameBytes', 'idleTimeoutMs', 'maxConnections', 'maxConnectionsPerPeer', 'ackWriteTimeoutMs'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) throw new TypeError(`${key} must be a positive integer`);
    }
    this.#options = options;
    this.#log = options.logger.child({ component: 'hl7-listener' });
    const limits = options.preAuthentication;
    this.#preAuthenticationTimeoutMs = limits?.timeoutMs ?? options.handshakeTimeoutMs ?? Math.min(options.idleTimeoutMs, 30_000);
    this.#pending = new PreAuthenticationPool<Socket>(
      {
        timeoutMs: this.#preAuthenticationTimeoutMs,
        maxConnections: limits?.maxConnections ?? 64,
        maxConnectionsPerAddress: limits?.maxConnectionsPerAddress ?? 8,
      },
      (socket, remoteAddress, why) => this.#refuseUnauthenticated(socket, remoteAddress, why),
    );
  }

  /** The bound port (0 before start). */
  get port(): number {
    return this.#port;
  }

  /** Bind and listen; resolves with the bound port. Idempotent. Throws EDGE_LISTEN_FAILED. */
  start(): Promise<number> {
    if (this.#stopping !== undefined) return Promise.reject(new EdgeError('EDGE_SHUTDOWN'));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<number> {
    const o = this.#options;
    const server = tls.createServer({
      ...o.tls,
      // Never below TLS 1.2 (BCP 195), whatever the caller passed.
      minVersion: o.tls.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
      // No half-open sockets before authentication: a scanner's connect-and-close must not leave the
      // socket in CLOSE-WAIT. Authenticated connections switch it on (a sender may half-close after
      // its last message and still get its ACKs).
      allowHalfOpen: false,
      requestCert: true,
      // Verified in #onConnection instead, where the reason and the presented subject are known for
      // the audit record (OpenSSL's own refusal reaches node only as ECONNRESET).
      rejectUnauthorized: false,
      handshakeTimeout: o.handshakeTimeoutMs ?? this.#preAuthenticationTimeoutMs,
    });
    // Not server.maxConnections: it counted handshakes in progress, so stalled ones kept the RIS out.
    // Before the TLS server's own listener, so a refused source costs no handshake.
    server.prependListener('connection', (socket: Socket) => this.#onTcpConnection(socket));
    server.on('secureConnection', (socket) => this.#onConnection(socket));
    server.on('tlsClientError', (err, socket) => {
      // Closed by us at accept or by the pool, and audited there already.
      const tcp = (socket as { _parent?: Socket })._parent;
      if (tcp !== undefined && this.#closedBeforeTls.has(tcp)) {
        socket.destroy();
        return;
      }
      const reason = (err as NodeJS.ErrnoException).code ?? 'tls-handshake-failed';
      const remoteAddress = failedHandshakeAddress(socket);
      o.onEvent({ type: 'peer-refused', reason, remoteAddress });
      this.#log.warn('hl7.peer.tls-refused', { reason, remoteAddress });
      // Handling this event takes over node's default, which destroys the socket: do it here.
      socket.destroy();
    });
    server.on('error', (err) => this.#log.error('hl7.listener.error', { code: (err as NodeJS.ErrnoException).code ?? '' }));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new EdgeError(
            'EDGE_LISTEN_FAILED',
            `HL7 listener cannot bind ${o.host}:${o.port} (${(err as NodeJS.ErrnoException).code ?? err.message})`,
            { cause: err, detail: { host: o.host, port: o.port } },
          ),
        );
      server.once('error', onError);
      server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.#log.info('hl7.listener.started', { host: o.host, port: this.#port });
    return this.#port;
  }

  /**
   * Stop accepting, let each connection finish the message in flight (its ACK is sent) within
   * `deadlineMs`, then close every socket. Queued, unstarted messages get no ACK: the RIS resends them.
   * Idempotent.
   */
  stop(deadlineMs: number): Promise<void> {
    this.#stopping ??= this.#stop(deadlineMs);
    return this.#stopping;
  }

  async #stop(deadlineMs: number): Promise<void> {
    if (this.#starting !== undefined) await this.#starting.catch(() => undefined);
    const server = this.#server;
    const closed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    const finishing = [...this.#connections].map((c) => c.finish());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(finishing),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadlineMs));
      }),
    ]);
    clearTimeout(timer);
    for (const c of this.#connections) c.destroy('shutdown');
    // Handshakes still in progress would hold server.close() until their timeout.
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#log.info('hl7.listener.stopped', {});
  }

  /**
   * Close the connections of peers `drop` selects (a config reload removed or changed them): the message
   * in flight is answered first, then the socket closes. Returns how many.
   */
  closeWhere(drop: (peer: Hl7Peer) => boolean, reason: string): number {
    let n = 0;
    for (const c of this.#connections) {
      if (!drop(c.peer)) continue;
      const close = (): void => c.destroy(reason);
      c.finish().then(close, close);
      n++;
    }
    return n;
  }

  #onTcpConnection(socket: Socket): void {
    // Read now: a handshake that fails later has lost the peer name (see failedHandshakeAddress).
    const remoteAddress = socket.remoteAddress ?? '';
    if (this.#stopping !== undefined) {
      this.#closedBeforeTls.add(socket);
      socket.destroy();
      return;
    }
    if (this.#options.admitsSource !== undefined && !this.#options.admitsSource(remoteAddress)) {
      this.#refuseUnauthenticated(socket, remoteAddress, SOURCE_NOT_ALLOWED);
      return;
    }
    const key = connectionKey(socket);
    this.#sockets.add(socket);
    this.#pending.admit(key, socket, remoteAddress);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#pending.leave(key);
    });
  }

  /** Closed before its peer was identified: at accept (source not allowed) or by the pool. */
  #refuseUnauthenticated(socket: Socket, remoteAddress: string, reason: string): void {
    const key = connectionKey(socket); // before destroy(), which may forget the peer's address
    this.#options.onEvent({ type: 'peer-refused', reason, remoteAddress });
    this.#log.warn('hl7.peer.refused', { reason, remoteAddress });
    this.#closedBeforeTls.add(socket);
    socket.destroy();
    this.#pending.leave(key);
  }

  /** Authenticated connections that are not closing (read by the metrics scrape). */
  get connectionCount(): number {
    return this.#openConnections;
  }

  /** Authenticated connections that are not closing. */
  get #openConnections(): number {
    let n = 0;
    for (const c of this.#connections) if (!c.closed) n++;
    return n;
  }

  #onConnection(socket: tls.TLSSocket): void {
    const o = this.#options;
    const remoteAddress = socket.remoteAddress ?? '';
    socket.on('error', (err) => this.#log.debug('hl7.connection.error', { code: (err as NodeJS.ErrnoException).code ?? '' }));
    const key = connectionKey(socket);
    if (this.#stopping !== undefined || !this.#pending.has(key)) {
      // Stopping, or the pool closed it (deadline, or it yielded to a newer connection).
      socket.destroy();
      return;
    }
    const refusal = tlsRefusal(socket);
    if (refusal !== undefined) {
      o.onEvent({
        type: 'peer-refused',
        reason: refusal.reason,
        remoteAddress,
        ...(refusal.subject === '' ? {} : { subject: refusal.subject }),
      });
      this.#log.warn('hl7.peer.tls-refused', { reason: refusal.reason, remoteAddress, subject: refusal.subject });
      socket.destroy();
      return;
    }
    const cert = socket.getPeerCertificate();
    const cn = cert.subject?.CN as string | string[] | undefined;
    const certificate: PeerCertificateInfo = {
      subjectCN: Array.isArray(cn) ? (cn[0] ?? '') : (cn ?? ''),
      fingerprint256: cert.fingerprint256 ?? '',
    };
    let identity: ReturnType<IdentifyPeer>;
    try {
      identity = o.identifyPeer({ certificate, remoteAddress });
    } catch (err) {
      this.#log.error('hl7.peer.identify-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
      identity = { refused: 'identify-failed' };
    }
    if ('refused' in identity) {
      o.onEvent({ type: 'peer-refused', reason: identity.refused, remoteAddress });
      this.#log.warn('hl7.peer.refused', { reason: identity.refused, remoteAddress });
      socket.destroy();
      return;
    }
    const peer = identity.peer;
    const count = this.#perPeer.get(peer.name) ?? 0;
    if (count >= o.maxConnectionsPerPeer && !this.#yieldOldestIdle(peer.name, remoteAddress)) {
      o.onEvent({ type: 'peer-refused', reason: 'peer-connection-limit', remoteAddress, peer: peer.name });
      this.#log.warn('hl7.peer.connection-limit', { peer: peer.name, remoteAddress });
      socket.destroy();
      return;
    }
    if (this.#openConnections >= o.maxConnections) {
      o.onEvent({ type: 'peer-refused', reason: 'connection-limit', remoteAddress, peer: peer.name });
      this.#log.warn('hl7.peer.connection-limit', { peer: peer.name, remoteAddress });
      socket.destroy();
      return;
    }
    this.#pending.leave(key);
    socket.allowHalfOpen = true;
    this.#perPeer.set(peer.name, count + 1);
    const connection = new Connection(socket, peer, o, this.#log.child({ peer: peer.name }), () => {
      this.#connections.delete(connection);
      const n = (this.#perPeer.get(peer.name) ?? 1) - 1;
      if (n <= 0) this.#perPeer.delete(peer.name);
      else this.#perPeer.set(peer.name, n);
    });
    this.#connections.add(connection);
    this.#log.info('hl7.connection.opened', { remoteAddress });
  }

  /**
   * A peer at its cap: close its oldest connection that has no message in flight, so the peer's newest
   * connection always gets in (slow or stuck connections of a RIS must not lock the RIS out). False when
   * every connection of the peer is busy with a message.
   */
  #yieldOldestIdle(peerName: string, remoteAddress: string): boolean {
    for (const c of this.#connections) {
      if (c.peer.name !== peerName || c.busy || c.closed) continue;
      this.#options.onEvent({ type: 'connection-superseded', peer: peerName, remoteAddress: c.remoteAddress });
      this.#log.warn('hl7.connection.superseded', { peer: peerName, remoteAddress: c.remoteAddress, newRemoteAddress: remoteAddress });
      c.destroy('superseded');
      return true;
    }
    return false;
  }
}

/** One authenticated MLLP connection: decode, queue, handle one message at a time, ACK. */
class Connection {
  readonly #socket: tls.TLSSocket;
  readonly #peer: Hl7Peer;
  readonly #o: Hl7ListenerOptions;
  readonly #log: Logger;
  readonly #decoder: MllpDecoder;
  readonly #queue: Buffer[] = [];
  #draining: Promise<void> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #frameTimer: NodeJS.Timeout | undefined;
  readonly #frameTimeoutMs: number;
  readonly #remoteAddress: string;
  #closed = false;
  #stopping = false;
  #peerEnded = false;

  constructor(socket: tls.TLSSocket, peer: Hl7Peer, options: Hl7ListenerOptions, log: Logger, onClose: () => void) {
    this.#socket = socket;
    this.#peer = peer;
    this.#o = options;
    this.#log = log;
    this.#decoder = new MllpDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.#frameTimeoutMs = options.frameTimeoutMs ?? Math.min(options.idleTimeoutMs, 30_000);
    this.#remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      // The peer half-closed: answer what is queued, then close our side.
      this.#peerEnded = true;
      if (this.#draining === undefined && !this.#closed) socket.end();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#queue.length = 0;
      clearTimeout(this.#idleTimer);
      clearTimeout(this.#frameTimer);
      onClose();
    });
    this.#armIdle();
  }

  get peer(): Hl7Peer {
    return this.#peer;
  }

  get remoteAddress(): string {
    return this.#remoteAddress;
  }

  /** A message is being handled (its ACK is owed). */
  get busy(): boolean {
    return this.#draining !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop taking new messages; resolves once the message in flight (if any) has been answered. */
  finish(): Promise<void> {
    this.#stopping = true;
    this.#queue.length = 0;
    this.#socket.pause();
    const draining = this.#draining;
    if (draining === undefined) {
      this.destroy('shutdown');
      return Promise.resolve();
    }
    return draining;
  }

  destroy(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#frameTimer);
    this.#o.onEvent({ type: 'connection-closed', peer: this.#peer.name, reason });
    this.#log.info('hl7.connection.closed', { reason });
    this.#socket.destroy();
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      // A slow commit is not idleness: the timer is re-armed when the ACK has gone out.
      if (this.#draining === undefined) this.destroy('idle-timeout');
    }, this.#o.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed || this.#stopping) return;
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#framingError(isEdgeError(err) ? err.code : 'EDGE_HL7_FRAME_INVALID');
      return;
    }
    // Only frame bytes count as activity: CR/LF padding between frames, one byte now and then, must
    // not keep a connection (and its slot) alive; inside a frame the frame deadline bounds it.
    if (frames.length > 0 || this.#decoder.inFrame) this.#armIdle();
    this.#armFrameDeadline(frames.length > 0);
    if (frames.length === 0) return;
    this.#queue.push(...frames);
    if (this.#queue.length >= MAX_QUEUED_FRAMES) this.#socket.pause();
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
    });
  }

  #framingError(code: ErrorCode): void {
    this.#o.onEvent({ type: 'framing-error', peer: this.#peer.name, remoteAddress: this.#remoteAddress, code });
    this.#log.warn('hl7.connection.framing-error', { code });
    // Nothing is answered for bytes that are not a frame; a new connection starts clean.
    this.destroy('framing-error');
  }

  /**
   * The deadline runs from a frame's first byte to its end and is not moved by the bytes in between:
   * the idle timer alone let a sender hold a slot for ever with one byte every few seconds.
   */
  #armFrameDeadline(framesEnded: boolean): void {
    if (framesEnded) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (!this.#decoder.inFrame || this.#frameTimer !== undefined) return;
    const expire = (): void => {
      // Reading is paused while queued messages are handled: the frame's delay is then ours.
      if (this.#draining !== undefined) {
        this.#frameTimer = setTimeout(expire, this.#frameTimeoutMs).unref();
        return;
      }
      this.#framingError('EDGE_HL7_FRAME_TIMEOUT');
    };
    this.#frameTimer = setTimeout(expire, this.#frameTimeoutMs).unref();
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed) {
        const frame = this.#queue.shift();
        if (frame === undefined) break;
        const outcome = await handleInboundMessage(frame, {
          peer: this.#peer,
          repository: this.#o.repository,
          logger: this.#log,
          onEvent: this.#o.onEvent,
          remoteAddress: this.#remoteAddress,
          ...(this.#o.messageLimits === undefined ? {} : { limits: this.#o.messageLimits }),
          ...(this.#o.processingIds === undefined ? {} : { processingIds: this.#o.processingIds }),
          ...(this.#o.newStudyInstanceUid === undefined ? {} : { newStudyInstanceUid: this.#o.newStudyInstanceUid }),
          ...(this.#o.stations === undefined ? {} : { stations: this.#o.stations }),
        });
        if (outcome.ack !== undefined && !(await this.#write(encodeMllpFrame(outcome.ack)))) return;
        if (outcome.close) {
          this.destroy('not-hl7');
          return;
        }
        if (this.#stopping) break;
        if (this.#queue.length < MAX_QUEUED_FRAMES && !this.#closed) this.#socket.resume();
        this.#armIdle();
      }
      if ((this.#stopping || this.#peerEnded) && !this.#closed) {
        this.#closed = true;
        this.#socket.end();
      }
    } catch (err) {
      this.#log.error('hl7.connection.failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
      this.destroy('internal-error');
    }
  }

  /** Write with a deadline: a peer that does not read its ACK loses the connection. */
  #write(frame: Buffer): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#log.warn('hl7.connection.ack-write-timeout', {});
        this.destroy('ack-write-timeout');
        resolve(false);
      }, this.#o.ackWriteTimeoutMs);
      this.#socket.write(frame, (err) => {
        clearTimeout(timer);
        resolve(err == null);
      });
    });
  }
}
