// The audit pull API for central security teams: HTTPS on its own listener, client certificates from
// the central CA only (a modality's or the RIS's certificate from the site CA is refused in the TLS
// handshake), scoped to audit: list what is held, download a signed bundle. Every refusal and every
// successful pull is reported to the audit trail flow (flows/audit-trail.ts), which audits it.
import { createReadStream } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { TlsMaterial } from '../core/tls-material.ts';

export interface PullClient {
  /** Subject CN of the client certificate. */
  readonly cn: string;
  readonly address: string;
}

export interface BundleRequest {
  readonly fromSeq?: number;
  readonly toSeq?: number;
  /** ms since epoch */
  readonly from?: number;
  readonly to?: number;
}

export interface PreparedBundle {
  readonly path: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly count: number;
  readonly bytes: number;
  cleanup(): Promise<void>;
}

export type AuditPullEvent =
  | { readonly type: 'refused'; readonly address: string; readonly reason: string; readonly cn?: string }
  | { readonly type: 'ranges-viewed'; readonly client: PullClient }
  | {
      readonly type: 'bundle-pulled';
      readonly client: PullClient;
      readonly fromSeq: number;
      readonly toSeq: number;
      readonly count: number;
    }
  | { readonly type: 'bundle-failed'; readonly client: PullClient; readonly code: string };

export interface AuditPullApiOptions {
  readonly host: string;
  readonly port: number;
  /** The box's material, with the central security team's CA in place of the site CA. */
  readonly tls: Omit<TlsMaterial, 'ca'> & { readonly centralCa: Buffer };
  readonly allowedCns?: readonly string[];
  readonly maxConnections: number;
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
  readonly ranges: () => Promise<unknown>;
  readonly prepareBundle: (request: BundleRequest) => Promise<PreparedBundle>;
  readonly onEvent: (event: AuditPullEvent) => void;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `${name} must be a positive integer`);
  return Number(v);
}

function timeParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const t = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\dT/.test(v) || Number.isNaN(t))
    throw new EdgeError('EDGE_AUDIT_RANGE_INVALID', `${name} must be an ISO 8601 date-time`);
  return t;
}

export class AuditPullApi {
  readonly #o: AuditPullApiOptions;
  #server: https.Server | undefined;
  #port = 0;

  constructor(options: AuditPullApiOptions) {
    this.#o = options;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<number> {
    if (this.#server !== undefined) return this.#port;
    const o = this.#o;
    const server = https.createServer(
      {
        cert: o.tls.cert,
        key: o.tls.key,
        ca: o.tls.centralCa,
        minVersion: o.tls.minVersion,
        ...(o.tls.ciphers === undefined ? {} : { ciphers: o.tls.ciphers }),
        ...(o.tls.ecdhCurve === undefined ? {} : { ecdhCurve: o.tls.ecdhCurve }),
        ...(o.tls.secureOptions === undefined ? {} : { secureOptions: o.tls.secureOptions }),
        requestCert: true,
        // Checked on 'secureConnection' below instead, where the peer's address and the exact reason
        // (no certificate, unknown CA, expired) are still known for the audit record.
        rejectUnauthorized: false,
        requestTimeout: o.requestTimeoutMs,
        headersTimeout: 10_000,
        keepAliveTimeout: 5_000,
        handshakeTimeout: 10_000,
      },
      (req, res) => {
        this.#handle(req, res).catch((err: unknown) => {
          o.logger.error('audit.pull-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
          res.destroy();
        });
      },
    );
    server.maxConnections = o.maxConnections;
    server.maxHeadersCount = 50;
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.authorized) return;
      const address = socket.remoteAddress ?? 'unknown';
      const reason = socket.authorizationError === null ? 'no client certificate' : String(socket.authorizationError);
      const cnValue = (socket.getPeerCertificate() as Partial<ReturnType<TLSSocket['getPeerCertificate']>> | null)?.subject?.CN;
      const cn = Array.isArray(cnValue) ? cnValue[0] : cnValue;
      o.logger.warn('audit.pull-refused', { address, reason, cn });
      o.onEvent({ type: 'refused', address, reason, ...(cn === undefined || cn === '' ? {} : { cn }) });
      socket.destroy();
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const address = socket.remoteAddress ?? 'unknown';
      const reason = err.code ?? err.message;
      o.logger.warn('audit.pull-refused', { address, reason });
      o.onEvent({ type: 'refused', address, reason });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new EdgeError('EDGE_LISTEN_FAILED', `audit pull API cannot listen on ${o.host}:${o.port}`, { cause: err })),
      );
      server.listen(o.port, o.host, () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
    return this.#port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const timer = setTimeout(() => server.closeAllConnections(), 2000);
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    if (socket.destroyed) return;
    const address = socket.remoteAddress ?? 'unknown';
    const cnValue = (socket.getPeerCertificate() as Partial<ReturnType<TLSSocket['getPeerCertificate']>> | null)?.subject?.CN;
    const cn = Array.isArray(cnValue) ? (cnValue[0] ?? '') : (cnValue ?? '');
    if (!socket.authorized || cn === '' || (this.#o.allowedCns !== undefined && !this.#o.allowedCns.includes(cn))) {
      const reason = socket.authorized ? 'client certificate CN not allowed' : 'client certificate not authorized';
      this.#o.logger.warn('audit.pull-refused', { address, reason, cn });
      this.#o.onEvent({ type: 'refused', address, reason, cn });
      send(res, 403, { error: { code: 'forbidden', message: reason } });
      return;
    }
    const client: PullClient = { cn, address };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://audit');
    } catch {
      send(res, 400, { error: { code: 'EDGE_AUDIT_RANGE_INVALID', message: 'bad URL' } });
      return;
    }
    if (req.method !== 'GET') {
      send(res, 405, { error: { code: 'method-not-allowed', message: 'only GET' } });
      return;
    }
    try {
      if (url.pathname === '/v1/audit/ranges') {
        const body = await this.#o.ranges();
        this.#o.onEvent({ type: 'ranges-viewed', client });
        send(res, 200, body);
        return;
      }
      if (url.pathname === '/v1/audit/bundle') {
        await this.#bundle(url.searchParams, client, res);
        return;
      }
      send(res, 404, { error: { code: 'not-found', message: `no route ${url.pathname}` } });
    } catch (err) {
      const code = isEdgeError(err) ? err.code : 'unexpected';
      this.#o.logger.warn('audit.pull-failed', { path: url.pathname, code, cn });
      if (url.pathname === '/v1/audit/bundle') this.#o.onEvent({ type: 'bundle-failed', client, code });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status =
        code === 'EDGE_AUDIT_RANGE_EMPTY'
          ? 404
          : code === 'EDGE_AUDIT_RANGE_INVALID'
            ? 400
            : code === 'EDGE_AUDIT_CHAIN_BROKEN'
              ? 409
              : 500;
      send(res, status, { error: { code, message: isEdgeError(err) ? err.message : 'internal error' } });
    }
  }

  async #bundle(q: URLSearchParams, client: PullClient, res: ServerResponse): Promise<void> {
    const request: BundleRequest = {
      ...optional('fromSeq', intParam(q, 'fromSeq')),
      ...optional('toSeq', intParam(q, 'toSeq')),
      ...optional('from', timeParam(q, 'from')),
      ...optional('to', timeParam(q, 'to')),
    };
    const bundle = await this.#o.prepareBundle(request);
    try {
      res.writeHead(200, {
        'content-type': 'application/x-tar',
        'content-length': bundle.bytes,
        'content-disposition': `attachment; filename="audit-${bundle.fromSeq}-${bundle.toSeq}.tar"`,
        'cache-control': 'no-store',
      });
      const stream = createReadStream(bundle.path, { highWaterMark: 1 << 20 });
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        res.on('finish', () => resolve());
        // A client that has the whole content-length may close before the file stream's 'end' (and so
        // res.end() and 'finish') reaches us: every byte was handed over, so that pull happened.
        res.on('close', () =>
          res.writableFinished || stream.bytesRead === bundle.bytes
            ? resolve()
            : reject(new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', 'the client went away during the download')),
        );
        stream.pipe(res);
      });
      this.#o.onEvent({ type: 'bundle-pulled', client, fromSeq: bundle.fromSeq, toSeq: bundle.toSeq, count: bundle.count });
    } finally {
      await bundle.cleanup();
    }
  }
}

function optional<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}
