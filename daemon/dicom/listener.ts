// The DICOM listener: binds one address (loopback unless told otherwise), plain TCP or TLS with
// client certificates required, and hands each connection to a DicomAssociation.
//
// Two pools, so that strangers can never keep a known modality out:
// - pre-authentication: every connection from TCP accept until its association is accepted (TLS
//   handshake with a verified certificate, then the A-ASSOCIATE-RQ passing the policy); see
//   core/pre-authentication-pool.ts.
// - authenticated: accepted associations, capped by maxAssociations / maxAssociationsPerAddress. Above
//   the cap the A-ASSOCIATE-RQ is rejected (transient, local limit exceeded; PS3.8 Table 9-21).
// Before either, when every modality of the listener declares its source addresses, a connection from
// any other address is closed at accept: no TLS work is spent on it.
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { EdgeError } from '../core/errors.ts';
import { failedHandshakeAddress, tlsRefusal } from '../core/tls-refusal.ts';
import type { Logger } from '../core/log.ts';
import { connectionKey, PreAuthenticationPool, SOURCE_NOT_ALLOWED } from '../core/pre-authentication-pool.ts';
import type { AssociationDecision, AssociationPolicy, AssociationRequest } from './association-policy.ts';
import { RejectReason, RejectResult, RejectSource } from './association-policy.ts';
import type { DicomEventListener } from './dicom-event.ts';
import type { DimseService, PeerCertificate, Transport } from './dimse-service.ts';
import { DicomAssociation } from './scp.ts';

/**
 * Default Maximum Length Received we announce. DCMTK defaults to 16384; larger PDUs cut per-PDU
 * overhead for C-STORE. 131072 is the largest DCMTK tools accept for -pdu, and bounds the memory one
 * association can make us buffer (one PDU body at a time) to 128 KiB.
 */
export const DEFAULT_MAX_PDU_LENGTH = 131072;

export interface DicomListenerOptions {
  /** Address to bind. Wildcards ('0.0.0.0', '::', '') need `allowAllInterfaces`. */
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly transport: Transport;
  /** Required for 'tls': key, cert, ca (client certificates are verified against `ca`). */
  readonly tls?: tls.SecureContextOptions;
  readonly allowAllInterfaces?: boolean;
  /** Our AE title: A-ASSOCIATE-RQ with another Called AE Title is rejected. */
  readonly aeTitle: string;
  readonly maxPduLength?: number;
  readonly maxAssociations?: number;
  readonly maxAssociationsPerAddress?: number;
  /** Time from TCP accept to an accepted association (TLS handshake and A-ASSOCIATE-RQ included). */
  readonly preAuthenticationTimeoutMs?: number;
  /** Connections not yet authenticated, in total and per source address. */
  readonly maxPreAuthenticationConnections?: number;
  readonly maxPreAuthenticationConnectionsPerAddress?: number;
  /**
   * Whether a source address may start at all, asked at TCP accept (before any TLS work); consulted per
   * connection so a reload of the peers takes effect at once. Omitted = every address may try.
   */
  readonly admitsSource?: (remoteAddress: string) => boolean;
  readonly associationRequestTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxDataSetBytes?: number;
  readonly services: readonly DimseService[];
  readonly onAssociationRequest: AssociationPolicy;
  readonly onEvent?: DicomEventListener;
  readonly logger: Logger;
}

const wildcardHosts = new Set(['', '0.0.0.0', '::', '::0', '[::]']);

type ListenerState = 'idle' | 'starting' | 'listening' | 'stopping';

export class DicomListener {
  readonly #options: DicomListenerOptions;
  readonly #logger: Logger;
  readonly #onEvent: DicomEventListener;
  #state: ListenerState = 'idle';
  #server: net.Server | undefined;
  #starting: Promise<number> | undefined;
  #stopping: Promise<void> | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  /** Not yet authenticated, by connectionKey (the TCP socket and the TLS socket wrapping it differ). */
  readonly #pending: PreAuthenticationPool<Socket>;
  readonly #authenticated = new Set<string>();
  readonly #authenticatedPerAddress = new Map<string, number>();
  readonly #associations = new Set<DicomAssociation>();

  constructor(options: DicomListenerOptions) {
    if (wildcardHosts.has(options.host) && options.allowAllInterfaces !== true) {
      throw new TypeError('DicomListener: binding all interfaces needs allowAllInterfaces: true');
    }
    if (options.transport === 'tls' && options.tls === undefined) {
      throw new TypeError('DicomListener: transport tls needs tls options');
    }
    if (options.aeTitle.length === 0 || options.aeTitle.length > 16) {
      throw new TypeError('DicomListener: aeTitle must have 1 to 16 characters');
    }
    this.#options = options;
    this.#logger = options.logger.child({ component: 'dicom-listener', transport: options.transport });
    this.#onEvent = options.onEvent ?? (() => {});
    this.#pending = new PreAuthenticationPool<Socket>(
      {
        timeoutMs: this.#preAuthenticationTimeoutMs,
        maxConnections: options.maxPreAuthenticationConnections ?? 64,
        maxConnectionsPerAddress: options.maxPreAuthenticationConnectionsPerAddress ?? 8,
      },
      (socket, remoteAddress, why) => this.#refuse(socket, remoteAddress, why),
    );
  }

  /** The bound port (0 before start). */
  get port(): number {
    return this.#port;
  }

  get associationCount(): number {
    return this.#associations.size;
  }

  /**
   * Abort the accepted associations whose policy peer `drop` selects: a config reload removed or changed
   * that peer, and deny by default means its open associations end too. Returns how many.
   */
  abortWhere(drop: (peer: unknown) => boolean, why: string): number {
    let n = 0;
    for (const a of this.#associations) {
      if (a.peer === undefined || !drop(a.peer)) continue;
      a.abort(why);
      n++;
    }
    return n;
  }

  /** Bind and start accepting; resolves with the bound port. Idempotent. */
  start(): Promise<number> {
    if (this.#state === 'listening') return Promise.resolve(this.#port);
    if (this.#state === 'starting' && this.#starting !== undefined) return this.#starting;
    if (this.#state === 'stopping') return Promise.reject(new EdgeError('EDGE_SHUTDOWN', 'listener is stopping'));
    this.#state = 'starting';
    this.#starting = this.#listen().then(
      (port) => {
        this.#state = 'listening';
        this.#port = port;
        return port;
      },
      (err: unknown) => {
        this.#state = 'idle';
        this.#server = undefined;
        throw err;
      },
    );
    return this.#starting;
  }

  #listen(): Promise<number> {
    const o = this.#options;
    let server: net.Server;
    if (o.transport === 'tls') {
      const tlsServer = tls.createServer({
        ...o.tls,
        requestCert: true,
        // Verified on 'secureConnection' instead: with rejectUnauthorized the server only sees the
        // client's reset, and the audit record would lose the reason and the presented subject.
        rejectUnauthorized: false,
        // Never below TLS 1.2 (BCP 195, PS3.15 Annex B), whatever the caller passed.
        minVersion: o.tls?.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
        handshakeTimeout: this.#preAuthenticationTimeoutMs,
        noDelay: true,
      });
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.#onSecureConnection(socket));
      tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        const remoteAddress = failedHandshakeAddress(socket);
        // Node leaves the socket open when a listener handles the error: close it here.
        socket.destroy();
        this.#handshakeFailed(remoteAddress, err.code ?? err.message, undefined);
      });
      server = tlsServer;
    } else {
      server = net.createServer({ noDelay: true });
    }
    // Counting at TCP level (before any TLS work) so a flood of handshakes is bounded too.
    server.prependListener('connection', (socket: Socket) => this.#onConnection(socket));
    server.on('error', (err: NodeJS.ErrnoException) => {
      this.#logger.error('dicom.listener-error', { errno: err.code ?? 'unknown' });
    });
    this.#server = server;
    return new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new EdgeError(
            'EDGE_LISTEN_FAILED',
            `DICOM ${o.transport} listener cannot bind ${o.host}:${o.port} (${err.code ?? err.message})`,
            { cause: err, detail: { host: o.host, port: o.port, errno: err.code ?? 'unknown' } },
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
        server.off('error', onError);
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        this.#logger.info('dicom.listening', { host: o.host, port });
        resolve(port);
      });
    });
  }

  get #preAuthenticationTimeoutMs(): number {
    return this.#options.preAuthenticationTimeoutMs ?? 10_000;
  }

  #onConnection(socket: Socket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    socket.setNoDelay(true);
    if (this.#state !== 'listening') {
      this.#refuse(socket, remoteAddress, 'stopping');
      return;
    }
    if (this.#options.admitsSource !== undefined && !this.#options.admitsSource(remoteAddress)) {
      this.#refuse(socket, remoteAddress, SOURCE_NOT_ALLOWED);
      return;
    }
    this.#sockets.add(socket);
    const key = connectionKey(socket);
    this.#pending.admit(key, socket, remoteAddress);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#pending.leave(key);
      if (this.#authenticated.delete(key)) adjust(this.#authenticatedPerAddress, remoteAddress, -1);
    });
    if (this.#options.transport === 'plain') this.#startAssociation(socket, { remoteAddress, transport: 'plain' });
  }

  #refuse(socket: Socket, remoteAddress: string, why: string): void {
    const key = connectionKey(socket); // before destroy(), which may forget the peer's address
    this.#logger.warn('dicom.connection-refused', { remoteAddress, why });
    this.#onEvent({ type: 'connection-refused', remoteAddress, transport: this.#options.transport, why });
    socket.destroy();
    this.#pending.leave(key);
  }

  /**
   * The policy accepted the association on `socket`: move it into the authenticated pool if that has
   * room. Returns why not otherwise.
   */
  #authenticate(socket: Socket, remoteAddress: string): string | undefined {
    const key = connectionKey(socket);
    if (!this.#pending.has(key) || socket.destroyed) return 'connection closed';
    if (this.#authenticated.size >= (this.#options.maxAssociations ?? 32)) return 'max associations';
    if ((this.#authenticatedPerAddress.get(remoteAddress) ?? 0) >= (this.#options.maxAssociationsPerAddress ?? 4))
      return 'max associations per address';
    this.#pending.leave(key);
    this.#authenticated.add(key);
    adjust(this.#authenticatedPerAddress, remoteAddress, 1);
    return undefined;
  }

  #handshakeFailed(remoteAddress: string, reason: string, subject: string | undefined): void {
    this.#logger.info('dicom.tls-handshake-failed', { remoteAddress, reason, ...(subject === undefined ? {} : { subject }) });
    this.#onEvent({ type: 'tls-handshake-failed', remoteAddress, reason, ...(subject === undefined ? {} : { subject }) });
  }

  #onSecureConnection(socket: tls.TLSSocket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    if (socket.destroyed) return; // refused at TCP level
    const refusal = tlsRefusal(socket);
    if (refusal !== undefined) {
      socket.destroy();
      this.#handshakeFailed(remoteAddress, refusal.reason, refusal.subject === '' ? undefined : refusal.subject);
      return;
    }
    const cert = socket.getPeerCertificate() as Partial<tls.PeerCertificate> | null;
    const subjectCn = cert?.subject?.CN;
    const peerCertificate: PeerCertificate = {
      subjectCn: Array.isArray(subjectCn) ? subjectCn.join(',') : (subjectCn ?? ''),
      fingerprint256: cert?.fingerprint256 ?? '',
    };
    this.#startAssociation(socket, { remoteAddress, transport: 'tls', peerCertificate });
  }

  #startAssociation(socket: Socket, transport: { remoteAddress: string; transport: Transport; peerCertificate?: PeerCertificate }): void {
    const o = this.#options;
    const association = new DicomAssociation(socket, transport, {
      aeTitle: o.aeTitle,
      maxPduLength: o.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
      associationRequestTimeoutMs: o.associationRequestTimeoutMs ?? 10_000,
      idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
      maxDataSetBytes: o.maxDataSetBytes ?? 1024 * 1024,
      services: o.services,
      onAssociationRequest: async (rq: AssociationRequest): Promise<AssociationDecision> => {
        const decision = await o.onAssociationRequest(rq);
        if (!decision.accept) return decision;
        const why = this.#authenticate(socket, transport.remoteAddress);
        if (why === undefined) return decision;
        return {
          accept: false,
          result: RejectResult.Transient,
          source: RejectSource.ServiceProviderPresentation,
          reason: RejectReason.LocalLimitExceeded,
          why,
        };
      },
      onEvent: this.#onEvent,
      logger: this.#logger,
    });
    this.#associations.add(association);
    void association.closed.then(() => this.#associations.delete(association));
  }

  /**
   * Stop accepting, let running associations finish until `deadlineMs` from now, then abort the rest.
   * Idempotent; resolves once every connection is closed.
   */
  stop(deadlineMs = 5000): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#state === 'idle') return Promise.resolve();
    this.#stopping = this.#stop(deadlineMs).finally(() => {
      this.#stopping = undefined;
      this.#state = 'idle';
      this.#port = 0;
    });
    return this.#stopping;
  }

  async #stop(deadlineMs: number): Promise<void> {
    if (this.#state === 'starting' && this.#starting !== undefined) await this.#starting.catch(() => 0);
    this.#state = 'stopping';
    const server = this.#server;
    this.#server = undefined;
    const serverClosed = new Promise<void>((resolve) => {
      if (server === undefined) resolve();
      else server.close(() => resolve());
    });
    const allClosed = Promise.all([...this.#associations].map((a) => a.closed));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([allClosed.then(() => 'drained' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      this.#logger.warn('dicom.stop-deadline', { open: this.#associations.size });
      for (const a of this.#associations) a.abort('listener stopping');
    }
    await Promise.all([...this.#associations].map((a) => a.closed));
    // Connections that never became associations (TLS handshakes in progress) go too.
    for (const s of this.#sockets) s.destroy();
    await serverClosed;
    this.#logger.info('dicom.stopped');
  }
}

function adjust(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
