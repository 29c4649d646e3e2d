// A real HTTPS client of the admin listener (node:https), with the cookie the box set and the headers a
// browser sends on a same-origin fetch: Origin on writes, Sec-Fetch-Site. Options take them away or
// change them for the CSRF and rebinding tests.
import { readFile } from 'node:fs/promises';
import https from 'node:https';

export interface AdminResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: any;
}

export interface RequestOptions {
  readonly body?: unknown;
  /** undefined = this listener's origin; null = no Origin header. */
  readonly origin?: string | null;
  readonly host?: string;
  readonly secFetchSite?: string | null;
  readonly headers?: Record<string, string>;
  /** Send this cookie instead of the one held. */
  readonly cookie?: string | null;
  readonly timeoutMs?: number;
}

export class AdminClient {
  readonly port: number;
  readonly #ca: Buffer;
  readonly #localAddress: string | undefined;
  // One kept-alive TLS connection per client, as a browser keeps one.
  readonly #agent: https.Agent;
  cookie: string | undefined;

  private constructor(port: number, ca: Buffer, localAddress?: string) {
    this.port = port;
    this.#ca = ca;
    this.#localAddress = localAddress;
    // An idle socket is let go (timeout) before the listener's 5 s keep-alive ends, so none is reused as it closes.
    this.#agent = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      timeout: 2500,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  static async connect(port: number, caFile: string, localAddress?: string): Promise<AdminClient> {
    return new AdminClient(port, await readFile(caFile), localAddress);
  }

  /** A second browser: same listener, no cookie. */
  fresh(localAddress?: string): AdminClient {
    return new AdminClient(this.port, this.#ca, localAddress ?? this.#localAddress);
  }

  get(path: string, options: RequestOptions = {}): Promise<AdminResponse> {
    return this.request('GET', path, options);
  }

  post(path: string, body?: unknown, options: RequestOptions = {}): Promise<AdminResponse> {
    return this.request('POST', path, { ...options, body });
  }

  async signIn(username: string, password: string): Promise<AdminResponse> {
    return this.post('/api/v1/session/sign-in', { username, password });
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<AdminResponse> {
    const host = options.host ?? `127.0.0.1:${this.port}`;
    const headers: Record<string, string> = { host, ...options.headers };
    const origin = options.origin === undefined ? `https://${host}` : options.origin;
    if (method !== 'GET' && origin !== null) headers['origin'] = origin;
    const site = options.secFetchSite === undefined ? 'same-origin' : options.secFetchSite;
    if (site !== null) headers['sec-fetch-site'] = site;
    const cookie = options.cookie === undefined ? this.cookie : (options.cookie ?? undefined);
    if (cookie !== undefined) headers['cookie'] = `__Host-edge-session=${cookie}`;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          headers,
          ca: this.#ca,
          servername: 'localhost',
          agent: this.#agent,
          timeout: options.timeoutMs ?? 20_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const setCookie = res.headers['set-cookie']?.find((c) => c.startsWith('__Host-edge-session='));
            if (setCookie !== undefined) {
              const value = /^__Host-edge-session=([^;]*)/.exec(setCookie)?.[1] ?? '';
              this.cookie = value === '' ? undefined : value;
            }
            let body: unknown = text;
            try {
              body = text === '' ? undefined : JSON.parse(text);
            } catch {
              // not JSON: the page's files
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
