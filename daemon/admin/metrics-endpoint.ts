// `GET /metrics` on the admin listener: the Prometheus exposition for the central monitor, and nothing
// else for it. The scraper proves itself with a client certificate issued by the configured metrics CA
// (`admin.metrics.clientCa`) or with the bearer token held in a file (`admin.metrics.tokenFile`); a
// signed-in user's session does not open it, and every refusal is reported (the flow audits it).
import { X509Certificate, timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

export interface MetricsScraper {
  /** `cert` (client certificate, subject CN in `id`) or `token`. */
  readonly by: 'cert' | 'token';
  readonly id: string;
}

export type MetricsRefusal = { readonly refused: true; readonly reason: 'no-credentials' | 'bad-token' | 'untrusted-certificate' };

export interface MetricsAccessOptions {
  /** PEM of the CA whose certificates may scrape (issued by it directly). */
  readonly clientCa?: Buffer;
  /** The bearer token (read from its 0600 file once at start). */
  readonly token?: string;
}

/** Who may scrape: a certificate the metrics CA issued and that is valid now, or the exact token. */
export class MetricsAccess {
  readonly #cas: readonly X509Certificate[];
  readonly #tokenDigest: Buffer | undefined;

  constructor(options: MetricsAccessOptions) {
    const pems = options.clientCa?.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    this.#cas = pems.map((pem) => new X509Certificate(pem));
    const token = options.token?.trim();
    // Compared as digests: equal lengths for timingSafeEqual, and the token itself is not kept around.
    this.#tokenDigest = token === undefined || token === '' ? undefined : sha256(token);
  }

  get configured(): boolean {
    return this.#cas.length > 0 || this.#tokenDigest !== undefined;
  }

  /** The scraper, or why it was refused. `peerCertificate` is the TLS client certificate, if one was sent. */
  check(
    authorization: string | undefined,
    peerCertificate: X509Certificate | undefined,
    now = Date.now(),
  ): MetricsScraper | MetricsRefusal {
    if (peerCertificate !== undefined && this.#cas.length > 0) {
      const issuer = this.#cas.find((ca) => peerCertificate.checkIssued(ca) && peerCertificate.verify(ca.publicKey));
      const valid = Date.parse(peerCertificate.validFrom) <= now && now <= Date.parse(peerCertificate.validTo);
      if (issuer !== undefined && valid) return { by: 'cert', id: commonName(peerCertificate) };
      if (authorization === undefined) return { refused: true, reason: 'untrusted-certificate' };
    }
    if (authorization !== undefined) {
      const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization);
      if (this.#tokenDigest !== undefined && m !== null && timingSafeEqual(sha256(m[1]!), this.#tokenDigest))
        return { by: 'token', id: 'token' };
      return { refused: true, reason: 'bad-token' };
    }
    return { refused: true, reason: 'no-credentials' };
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function commonName(cert: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  return cn.slice(0, 64) || 'unnamed';
}

export type MetricsEndpointEvent =
  | { readonly type: 'refused'; readonly address: string; readonly reason: MetricsRefusal['reason'] }
  | { readonly type: 'scraped'; readonly scraper: MetricsScraper };

export interface MetricsEndpointOptions {
  readonly access: MetricsAccess;
  readonly exposition: () => Promise<{ contentType: string; body: string }>;
  readonly onEvent: (event: MetricsEndpointEvent) => void;
}

/**
 * Serves one `/metrics` request (the admin listener routes it here and applies its own header and body
 * limits and timeouts). 401 with a Bearer challenge when no credentials came, 403 when they were wrong.
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, o: MetricsEndpointOptions): Promise<void> {
  const address = req.socket.remoteAddress ?? '';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
    res.end();
    return;
  }
  const socket = req.socket as Partial<TLSSocket>;
  const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  const auth = req.headers.authorization;
  const who = o.access.check(auth, cert);
  if ('refused' in who) {
    o.onEvent({ type: 'refused', address, reason: who.reason });
    const status = who.reason === 'no-credentials' ? 401 : 403;
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      ...(status === 401 ? { 'www-authenticate': 'Bearer realm="metrics"' } : {}),
    });
    res.end(
      status === 401
        ? 'metrics need a client certificate from admin.metrics.clientCa or the bearer token of admin.metrics.tokenFile\n'
        : 'refused\n',
    );
    return;
  }
  const { contentType, body } = await o.exposition();
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
  o.onEvent({ type: 'scraped', scraper: who });
}
