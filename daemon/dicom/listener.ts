// The DICOM listener: binds one address (loopback unless told otherwise), plain TCP or TLS with
// client certificates required, caps associations in total and per source address, and hands each
// connection to a DicomAssociation.
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { AssociationPolicy } from './association-policy.ts';
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
  readonly #perAddress = new Map<string, number>();
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
        rejectUnauthorized: true,
        // Never below TLS 1.2 (BCP 195, PS3.15 Annex B), whatever the caller passed.
        minVersion: o.tls?.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
        handshakeTimeout: o.associationRequestTimeoutMs ?? 10_000,
        noDelay: true,
      });
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.#onSecureConnection(socket));
      tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        const remoteAddress = socket.remoteAddress ?? 'unknown';
        const reason = err.code ?? err.message;
        this.#logger.info('dicom.tls-handshake-failed', { remoteAddress, reason });
        this.#onEvent({ type: 'tls-handshake-failed', remoteAddress, reason });
      });
      server = tlsServer;
    } else {
      server = net.createServer({ noDelay: true });
    }
    // Counting at TCP level (before any TLS work) so a flood of handshakes is capped too.
    server.prependListener('connection', (socket: Socket) => this.#onConnection(socket));
    server.on('error', (err: NodeJS.ErrnoException) => {
      this.#logger.error('dicom.listener-error', { errno: err.code ?? 'unknown' });
    });
    this.#server = server;
    return new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new EdgeError('EDGE_LISTEN_FAILED', `DICOM ${o.transport} listener cannot bind ${o.host}:${o.port} (${err.code ?? err.message})`, { cause: err, detail: { host: o.host, port: o.port, errno: err.code ?? 'unknown' } }));
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

  #onConnection(socket: Socket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    socket.setNoDelay(true);
    const maxTotal = this.#options.maxAssociations ?? 32;
    const maxPerAddress = this.#options.maxAssociationsPerAddress ?? 4;
    const fromAddress = this.#perAddress.get(remoteAddress) ?? 0;
    let why: string | undefined;
    if (this.#state !== 'listening') why = 'stopping';
    else if (this.#sockets.size >= maxTotal) why = 'max associations';
    else if (fromAddress >= maxPerAddress) why = 'max associations per address';
    if (why !== undefined) {
      this.#logger.warn('dicom.connection-refused', { remoteAddress, why });
      this.#onEvent({ type: 'connection-refused', remoteAddress, transport: this.#options.transport, why });
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    this.#perAddress.set(remoteAddress, fromAddress + 1);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const n = (this.#perAddress.get(remoteAddress) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(remoteAddress);
      else this.#perAddress.set(remoteAddress, n);
    });
    if (this.#options.transport === 'plain') this.#startAssociation(socket, { remoteAddress, transport: 'plain' });
  }

  #onSecureConnection(socket: tls.TLSSocket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    if (socket.destroyed) return; // refused at TCP level
    const cert = socket.getPeerCertificate();
    const subjectCn = cert.subject?.CN;
    const peerCertificate: PeerCertificate = {
      subjectCn: Array.isArray(subjectCn) ? subjectCn.join(',') : (subjectCn ?? ''),
      fingerprint256: cert.fingerprint256 ?? '',
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
      onAssociationRequest: o.onAssociationRequest,
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
