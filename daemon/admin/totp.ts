// TOTP (RFC 6238: SHA-1, 6 digits, 30 s, the parameters every authenticator app takes) through otpauth,
// a code accepted one step either side of now, and never a second time: a code is accepted only for a
// time step after the last one accepted for that user. The enrolment QR code is drawn on the box
// (uqr, SVG): the secret never goes to an outside service.
import { Secret, TOTP } from 'otpauth';
import { renderSVG } from 'uqr';

const PERIOD_S = 30;
const WINDOW = 1;

export interface TotpSetup {
  readonly secret: string;
  readonly uri: string;
  readonly qrSvg: string;
}

function totp(secret: string, issuer: string, label: string): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD_S, secret: Secret.fromBase32(secret) });
}

export function newTotpSetup(issuer: string, username: string): TotpSetup {
  const secret = new Secret({ size: 20 }).base32;
  const uri = totp(secret, issuer, username).toString();
  return { secret, uri, qrSvg: renderSVG(uri, { ecc: 'M', border: 2 }) };
}

/**
 * The time step `code` is valid for (±1 step of `now`), or undefined when it matches none. The caller
 * refuses a step at or before the last one it accepted (replay).
 */
export function totpStep(secret: string, code: unknown, now = Date.now()): number | undefined {
  if (typeof code !== 'string' || !/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secret, 'edge', 'user').validate({ token: code, timestamp: now, window: WINDOW });
  if (delta === null) return undefined;
  return TOTP.counter({ period: PERIOD_S, timestamp: now }) + delta;
}

/** The current code of a secret (tests and the bench act as the authenticator app). */
export function totpCode(secret: string, now = Date.now()): string {
  return totp(secret, 'edge', 'user').generate({ timestamp: now });
}
