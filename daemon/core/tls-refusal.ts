// Why a TLS client was not verified, and who its certificate said it was: what the audit record of a
// refused handshake needs so a security team can tell an expired RIS certificate from a stranger's.
// Listeners verify client certificates themselves (rejectUnauthorized: false, then this) because a
// handshake that OpenSSL aborts reaches node only as ECONNRESET, without reason or subject.
// Typed structurally so every TLS adapter can use it without importing node:tls into core.

export interface PresentedCertificate {
  /** Attribute type → value (or values), as node reports a certificate's subject. */
  readonly subject?: object;
}

export interface VerifiedTlsSocket {
  readonly authorized: boolean;
  readonly authorizationError: unknown;
  getPeerCertificate(detailed: true): PresentedCertificate | null;
}

export interface TlsRefusal {
  /** OpenSSL's verification code (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) or `NO_CLIENT_CERTIFICATE`. */
  readonly reason: string;
  /** The presented certificate's subject, e.g. `CN=RIS.GENHOSP,O=GENHOSP`; '' when none was presented. */
  readonly subject: string;
}

const MAX_SUBJECT_CHARS = 256;

/** undefined when the peer's certificate verified; else why not and whose it was. */
export function tlsRefusal(socket: VerifiedTlsSocket): TlsRefusal | undefined {
  if (socket.authorized) return undefined;
  const subject = formatSubject(socket.getPeerCertificate(true)?.subject);
  const error = socket.authorizationError;
  // Without a certificate OpenSSL reports UNABLE_TO_GET_ISSUER_CERT, which would send the reader astray.
  const reason =
    error === null || error === undefined || subject === ''
      ? 'NO_CLIENT_CERTIFICATE'
      : String(error instanceof Error ? ((error as { code?: string }).code ?? error.message) : error);
  return { reason: clean(reason, 64), subject };
}

/** `TYPE=value` pairs as node lists them, `,` `+` `\\` escaped, control characters replaced, clipped. */
export function formatSubject(subject: PresentedCertificate['subject']): string {
  if (subject === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(subject)) {
    const values: unknown[] = Array.isArray(value) ? value : [value];
    for (const v of values) if (typeof v === 'string') parts.push(`${key}=${v.replace(/[,+\\]/g, (c) => `\\${c}`)}`);
  }
  return clean(parts.join(','), MAX_SUBJECT_CHARS);
}

function clean(text: string, max: number): string {
  const printable = text.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
  return printable.length > max ? printable.slice(0, max) : printable;
}

/** What a TLS socket whose handshake failed still knows of its client. */
export interface FailedHandshakeSocket {
  readonly remoteAddress?: string | undefined;
  /** node's TCP socket under the TLS one (not public API; pinned by a test against a real tls.Server). */
  readonly _parent?: { readonly remoteAddress?: string | undefined } | null;
}

/**
 * The client's address for a failed handshake. By `tlsClientError` a reset connection has lost its peer
 * name on the TLS socket; the TCP socket underneath keeps the one read when the connection was accepted
 * (listeners read `remoteAddress` in their `connection` handler for that reason). Without an address a
 * scan could not be told apart by source in the audit trail.
 */
export function failedHandshakeAddress(socket: FailedHandshakeSocket): string {
  return socket.remoteAddress ?? socket._parent?.remoteAddress ?? 'unknown';
}
