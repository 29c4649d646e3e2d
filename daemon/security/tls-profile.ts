// TLS settings every listener and client of the box uses: BCP 195 (RFC 9325) as DICOM PS3.15 Annex B
// asks — TLS 1.2 or 1.3 only, forward-secret ECDHE key exchange with AEAD ciphers; no CBC, no RSA key
// transport, no DHE.
import { constants } from 'node:crypto';

export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_ECDH_CURVES = 'X25519:P-256:P-384';

/**
 * OpenSSL options for every TLS endpoint of the box: no renegotiation (RFC 9325 §3.5 allows it only with
 * RFC 5746, and nothing here needs it; a client asking for one can make the server repeat expensive
 * handshakes on one connection). TLS 1.3 has no renegotiation at all; this closes it for TLS 1.2.
 * Listeners take it through their TLS options (`secureOptions`).
 */
export const TLS_SERVER_SECURE_OPTIONS: number = constants.SSL_OP_NO_RENEGOTIATION;
