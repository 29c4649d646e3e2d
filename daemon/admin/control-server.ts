// The local control API: HTTP/1.1 with JSON bodies over a unix socket (mode 0600) in the data directory.
// `edgectl` reaches the running daemon only through it, so the CLI never opens the store behind the
// daemon's back. Routes are owned by the flows and adapters that serve them (core/control-route.ts), each
// with its permission; this file knows transport, limits and error mapping (admin/http-status.ts).
import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import { type ControlRoute, type ControlRoutes, Permission } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { httpStatusOf } from './http-status.ts';

export type { ControlHandler, ControlRequest, ControlResponse, ControlRoute } from '../core/control-route.ts';

/** Whoever reaches the socket (mode 0600 in the data directory) is the box's console: root. */
const CONSOLE = { kind: 'console', username: 'root' } as const;

export interface ControlServerOptions {
  readonly socketPath: string;
  readonly logger: Logger;
  /** Largest request body accepted (bytes). */
  readonly maxBodyBytes?: number;
  /** A request must arrive whole within this. */
  readonly requestTimeoutMs?: number;
}

export class ControlServer implements ControlRoutes {
  readonly #options: ControlServerOptions;
  readonly #routes = new Map<string, ControlRoute>();
  #server: http.Server | undefined;

  constructor(options: ControlServerOptions) {
    this.#options = options;
  }

  /** Mount routes; a route without a known permission, or mounted twice, is a programming error. */
  add(...routes: readonly ControlRoute[]): void {
    for (const route of routes) {
      if (route.adminOnly === true) continue;
      const key = `${route.method} ${route.path}`;
      if (!Object.hasOwn(Permission, route.permission)) throw new TypeError(`${key}: unknown permission ${route.permission}`);
      if (this.#routes.has(key)) throw new TypeError(`${key} is mounted twice`);
      this.#routes.set(key, route);
    }
  }

  /** The mounted routes, whole: the admin listener mounts the same ones under /api. */
  mounted(): readonly ControlRoute[] {
    return [...this.#routes.values()];
  }

  /** The mounted routes with their permissions (for the admin page's role checks and its docs). */
  routes(): readonly Pick<ControlRoute, 'method' | 'path' | 'permission'>[] {
    return [...this.#routes.values()].map(({ method, path, permission }) => ({ method, path, permission }));
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const { socketPath } = this.#options;
    // A socket left by a killed daemon is stale: the data-directory lock already proved we are alone.
    await rm(socketPath, { force: true });
    const server = http.createServer({ requestTimeout: this.#options.requestTimeoutMs ?? 30_000, headersTimeout: 10_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    server.maxHeadersCount = 50;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    await chmod(socketPath, 0o600);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.#options.socketPath, { force: true });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://control');
      const route = this.#routes.get(`${req.method} ${url.pathname}`);
      if (route === undefined) throw new EdgeError('EDGE_CONTROL_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
      const body = await readJsonBody(req, this.#options.maxBodyBytes ?? 1_048_576);
      const out = await route.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body, caller: CONSOLE });
      send(out.status, out.body);
    } catch (err) {
      const code = isEdgeError(err) ? err.code : 'unexpected';
      const status = httpStatusOf(err);
      this.#options.logger.warn('control.request-failed', { method: req.method, path: req.url, code });
      send(status, { error: { code, message: err instanceof Error ? err.message : String(err) } });
    }
  }
}

async function readJsonBody(req: http.IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `request body over ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'request body is not JSON', { cause });
  }
}
