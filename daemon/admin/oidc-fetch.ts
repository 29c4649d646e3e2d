// The one HTTP path to the identity provider: TLS verified against the configured CA (or Node's public
// CAs), a deadline per request, a cap on header and body size. openid-client makes every request
// (discovery, key set, token) through it, so none of them can hang the admin listener or fill memory.
import { Agent, request } from 'undici';
import { EdgeError } from '../core/errors.ts';

export interface IdpFetchOptions {
  /** PEM CA bundle the IdP's certificate must chain to; undefined = Node's public CAs. */
  readonly ca?: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

export interface IdpFetchInit {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
  readonly signal?: AbortSignal;
}

export type IdpFetch = ((url: string, init: IdpFetchInit) => Promise<Response>) & { close(): Promise<void> };

const MAX_HEADER_BYTES = 16 * 1024;

export function idpFetch(options: IdpFetchOptions): IdpFetch {
  const agent = new Agent({
    connect: {
      timeout: options.timeoutMs,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    maxHeaderSize: MAX_HEADER_BYTES,
    connections: 4,
  });
  const fetchIt = async (url: string, init: IdpFetchInit): Promise<Response> => {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const signal = init.signal === undefined ? deadline : AbortSignal.any([init.signal, deadline]);
    // undici's request() follows no redirect: an IdP endpoint that redirects is answered as it is.
    const res = await request(url, {
      method: init.method === 'POST' ? 'POST' : 'GET',
      headers: init.headers,
      body: bodyOf(init.body),
      dispatcher: agent,
      signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > options.maxResponseBytes) {
        res.body.destroy();
        throw new EdgeError(
          'EDGE_OIDC_UNAVAILABLE',
          `the identity provider answered ${new URL(url).pathname} with more than ${options.maxResponseBytes} bytes`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const nullBody = res.statusCode === 204 || res.statusCode === 304 || (res.statusCode >= 100 && res.statusCode < 200);
    return new Response(nullBody ? null : Buffer.concat(chunks), { status: res.statusCode, headers });
  };
  return Object.assign(fetchIt, { close: () => agent.close() });
}

function bodyOf(body: unknown): string | Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new TypeError('the identity provider client sent a streamed body');
}
