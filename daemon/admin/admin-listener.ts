// The admin listener: HTTPS on its own address (`admin.listen`, the admin segment) with the box's
// certificate and the BCP 195 profile of every listener, a JSON API under `/api/v1`, and the admin
// page's files. Limits: header count and size, header and request timeouts, body size, connections.
// DNS rebinding: the Host header must be one of `hostNames`. CSRF: every write (POST) must carry an
// Origin of this listener and, when the browser sends it, `Sec-Fetch-Site: same-origin`; the session
// cookie is `__Host-`, Secure, HttpOnly, SameSite=Strict besides.
//
// Extension points (for code outside this folder; the flows wire them):
//  - `add(...routes)`: mount ControlRoutes (core/control-route.ts) at `/api` + route.path. Every route of
//    the control socket is mounted here too, with the same permission; a route with `adminOnly` exists
//    only here. A handler sees `req.caller` (the signed-in user, role and break-glass elevation, address).
//    The permission table, step-up (`stepUp`) and idle accounting (`background`) are applied here, before
//    the handler runs: a handler never checks roles itself.
//  - `serveStatic(handler)`: the admin page's files. Every GET outside `/api/` (`/`, `/assets/...`, the
//    page's views) is handed to it; it answers a body and a content type, or undefined for 404. The
//    listener adds the security headers (CSP without inline script, no framing, no sniffing, no-store).
//  - `access` (AccessControl, access-control.ts): `establishSession(identity, { method, amr, address })`
//    is how a sign-in method other than the local password (OIDC, WebAuthn) signs a user in once it has
//    proven who they are; it returns the Set-Cookie value for the handler's response headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { securityAlert } from '../core/audit-event-builders.ts';
import type { AuditSink } from '../core/audit.ts';
import { type Caller, type ControlRoute, type ControlRoutes, Permission, callerMay } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { TlsMaterial } from '../core/tls-material.ts';
import type { AccessControl } from './access-control.ts';
import { httpStatusOf } from './http-status.ts';
import { SESSION_COOKIE } from './session-store.ts';

export interface StaticRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
}

export interface StaticResponse {
  readonly status?: number;
  readonly contentType: string;
  readonly body: Buffer | string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type StaticHandler = (req: StaticRequest) => Promise<StaticResponse | undefined> | StaticResponse | undefined;

export interface AdminListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: Omit<TlsMaterial, 'ca'>;
  /** Host header values accepted, without port (compared case-insensitively). */
  readonly hostNames: readonly string[];
  readonly maxConnections: number;
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly access: AccessControl;
  readonly audit: AuditSink;
  readonly logger: Logger;
  /**
   * CA(s) whose client certificates the handshake asks for and a raw handler may check (`/metrics`): a
   * certificate is requested, never required, so browsers without one still connect.
   */
  readonly clientCa?: Buffer;
}

/** A path answered outside the JSON API and the page (`/metrics`), after the Host check; it sets its own headers. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const API_PREFIX = '/api';
const BACKGROUND_HEADER = 'x-edge-background';

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
} as const;

export class AdminListener implements ControlRoutes {
  readonly #o: AdminListenerOptions;
  readonly #routes = new Map<string, ControlRoute>();
  #static: StaticHandler | undefined;
  readonly #raw = new Map<string, RawHandler>();
  #server: https.Server | undefined;
  #port = 0;

  constructor(options: AdminListenerOptions) {
    this.#o = options;
  }

  get access(): AccessControl {
    return this.#o.access;
  }

  get port(): number {
    return this.#port;
  }

  add(...routes: readonly ControlRoute[]): void {
    for (const route of routes) {
      const key = `${route.method} ${API_PREFIX}${route.path}`;
      if (!route.path.startsWith('/v1/')) throw new TypeError(`${key}: API paths start with /v1/`);
      if (!Object.hasOwn(Permission, route.permission)) throw new TypeError(`${key}: unknown permission ${route.permission}`);
      if (this.#routes.has(key)) throw new TypeError(`${key} is mounted twice`);
      this.#routes.set(key, route);
    }
  }

  /** A path outside `/api` and the page, answered by its own handler (the metrics endpoint). */
  serveRaw(path: string, handler: RawHandler): void {
    if (path.startsWith(API_PREFIX) || this.#raw.has(path)) throw new TypeError(`${path} cannot be served raw`);
    this.#raw.set(path, handler);
  }

  /** The page's files: one handler, set once. */
  serveStatic(handler: StaticHandler): void {
    if (this.#static !== undefined) throw new TypeError('the static file handler is set twice');
    this.#static = handler;
  }

  /** The mounted API routes as served (`/api/v1/...`) with their permission, step-up and background flags. */
  routes(): readonly { method: string; path: string; permission: string; stepUp: boolean; background: boolean }[] {
    return [...this.#routes.values()].map((r) => ({
      method: r.method,
      path: `${API_PREFIX}${r.path}`,
      permission: r.permission,
      stepUp: r.stepUp === true,
      background: r.background === true,
    }));
  }

  async start(): Promise<number> {
    if (this.#server !== undefined) return this.#port;
    const o = this.#o;
    const server = https.createServer(
      {
        cert: o.tls.cert,
        key: o.tls.key,
        minVersion: o.tls.minVersion,
        ciphers: o.tls.ciphers,
        ecdhCurve: o.tls.ecdhCurve,
        ...(o.tls.secureOptions === undefined ? {} : { secureOptions: o.tls.secureOptions }),
        ...(o.clientCa === undefined ? {} : { ca: o.clientCa, requestCert: true, rejectUnauthorized: false }),
        // Servers prefer TLS 1.3 by default; the cipher order is ours, not the client's.
        honorCipherOrder: true,
        requestTimeout: o.requestTimeoutMs,
        headersTimeout: o.headersTimeoutMs,
        keepAliveTimeout: 5_000,
        handshakeTimeout: 10_000,
        maxHeaderSize: 16_384,
      },
      (req, res) => {
        this.#handle(req, res).catch((err: unknown) => {
          o.logger.error('admin.request-failed', { code: isEdgeError(err) ? err.code : 'unexpected' });
          if (!res.headersSent) sendJson(res, 500, { error: { code: 'unexpected', message: 'internal error' } });
          else res.destroy();
        });
      },
    );
    server.maxConnections = o.maxConnections;
    server.maxHeadersCount = 64;
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      o.logger.warn('admin.tls-failed', { address: socket.remoteAddress ?? 'unknown', reason: err.code ?? err.message });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new EdgeError('EDGE_LISTEN_FAILED', `admin listener cannot listen on ${o.host}:${o.port}: check admin.listen`, { cause: err }),
        ),
      );
      server.listen(o.port, o.host, () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
    o.access.start();
    return this.#port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#o.access.stop();
    server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const timer = setTimeout(() => server.closeAllConnections(), 2000);
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const refused = this.#refusal(req);
    if (refused !== undefined) {
      this.#o.logger.warn('admin.request-refused', { address, reason: refused.reason });
      this.#o.audit.record(
        securityAlert('access.request-refused', [{ kind: 'system', id: 'admin-listener', address, requestor: true }], refused.reason),
      );
      sendJson(res, refused.status, { error: { code: refused.code, message: refused.reason } });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://admin');
    } catch {
      sendJson(res, 400, { error: { code: 'EDGE_CONTROL_BAD_REQUEST', message: 'bad URL' } });
      return;
    }
    const raw = this.#raw.get(url.pathname);
    if (raw !== undefined) {
      await raw(req, res);
      return;
    }
    if (url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)) {
      await this.#api(req, res, url, address);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: { code: 'EDGE_CONTROL_NOT_FOUND', message: 'the page is read with GET' } });
      return;
    }
    const page = this.#static === undefined ? undefined : await this.#static({ path: url.pathname, headers: req.headers });
    if (page === undefined) {
      sendJson(res, 404, { error: { code: 'EDGE_CONTROL_NOT_FOUND', message: `nothing at ${url.pathname}` } });
      return;
    }
    const body = typeof page.body === 'string' ? Buffer.from(page.body, 'utf8') : page.body;
    res.writeHead(page.status ?? 200, {
      ...SECURITY_HEADERS,
      ...page.headers,
      'content-type': page.contentType,
      'content-length': body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** Host allowlist on every request; Origin and Sec-Fetch-Site on every write. */
  #refusal(
    req: IncomingMessage,
  ): { status: number; code: 'EDGE_ACCESS_HOST_REFUSED' | 'EDGE_ACCESS_ORIGIN_REFUSED'; reason: string } | undefined {
    const host = req.headers.host;
    const hostName = host === undefined ? undefined : hostWithoutPort(host);
    if (hostName === undefined || !this.#o.hostNames.some((h) => h.toLowerCase() === hostName)) {
      return {
        status: 421,
        code: 'EDGE_ACCESS_HOST_REFUSED',
        reason: `Host header ${JSON.stringify(host ?? '')} is not one of admin.hostNames`,
      };
    }
    if (req.method === 'GET' || req.method === 'HEAD') return undefined;
    const origin = req.headers.origin;
    const expected = `https://${host!.toLowerCase()}`;
    if (origin === undefined || origin.toLowerCase() !== expected) {
      return {
        status: 403,
        code: 'EDGE_ACCESS_ORIGIN_REFUSED',
        reason: origin === undefined ? 'a write without an Origin header' : `a write from another origin (${origin.slice(0, 100)})`,
      };
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') {
      return { status: 403, code: 'EDGE_ACCESS_ORIGIN_REFUSED', reason: `a write with Sec-Fetch-Site ${site.slice(0, 40)}` };
    }
    return undefined;
  }

  async #api(req: IncomingMessage, res: ServerResponse, url: URL, address: string): Promise<void> {
    const route = this.#routes.get(`${req.method} ${url.pathname}`);
    try {
      if (route === undefined) throw new EdgeError('EDGE_CONTROL_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
      const background = route.background === true || req.headers[BACKGROUND_HEADER] === '1';
      const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
      const access = this.#o.access;
      const signedIn = cookie === undefined ? undefined : access.resume(cookie, { address, background, path: route.path });
      let caller: Caller;
      if (route.permission === 'public') {
        caller = signedIn?.caller ?? { kind: 'anonymous', username: '', address };
      } else {
        if (signedIn === undefined)
          throw new EdgeError('EDGE_ACCESS_UNAUTHENTICATED', 'sign in first (POST /api/v1/session/sign-in)', {
            detail: { path: route.path },
          });
        if (!access.stageAllows(signedIn.session, route.path)) {
          throw new EdgeError('EDGE_ACCESS_SIGN_IN_INCOMPLETE', `finish signing in first: ${signedIn.session.stage}`, {
            detail: { stage: signedIn.session.stage },
          });
        }
        caller = signedIn.caller;
        if (!callerMay(route.permission, caller)) {
          access.denied(caller, route, address);
          throw new EdgeError('EDGE_ACCESS_FORBIDDEN', `${route.method} /api${route.path} needs the ${route.permission} permission`);
        }
        if (route.stepUp === true && !access.recentlyVerified(signedIn.session)) {
          throw new EdgeError(
            'EDGE_ACCESS_STEP_UP_REQUIRED',
            'confirm with your password or a TOTP code first (POST /api/v1/session/step-up)',
          );
        }
      }
      const body = await readJsonBody(req, this.#o.maxBodyBytes);
      const request = {
        method: route.method,
        path: route.path,
        query: url.searchParams,
        body,
        caller,
        cookie: (name: string) => cookieValue(req.headers.cookie, name),
      };
      if (signedIn !== undefined) this.#o.access.bind(request, signedIn.session);
      const out = await route.handle(request);
      sendJson(res, out.status, out.body, out.headers);
    } catch (err) {
      const code = isEdgeError(err) ? err.code : 'unexpected';
      const status = httpStatusOf(err);
      if (status >= 500) this.#o.logger.error('admin.request-failed', { method: req.method, path: url.pathname, code });
      else this.#o.logger.info('admin.request-refused', { method: req.method, path: url.pathname, code, address });
      const headers: Record<string, string> = {};
      if (isEdgeError(err) && typeof err.detail?.['retryAfterS'] === 'number') headers['retry-after'] = String(err.detail['retryAfterS']);
      sendJson(
        res,
        status,
        {
          error: {
            code,
            message: status >= 500 && !isEdgeError(err) ? 'internal error' : err instanceof Error ? err.message : String(err),
          },
        },
        headers,
      );
    }
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function hostWithoutPort(host: string): string | undefined {
  const h = host.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (bracketed) return bracketed[1];
  const plain = /^([a-z0-9.-]{1,253})(?::\d{1,5})?$/.exec(h);
  return plain?.[1];
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

async function readJsonBody(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `request body over ${max} bytes (admin.maxBodyBytes)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `request body over ${max} bytes (admin.maxBodyBytes)`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'request bodies are application/json');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'request body is not JSON', { cause });
  }
}
