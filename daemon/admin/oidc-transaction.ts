// A sign-in that left for the identity provider and has not come back: its state, nonce and PKCE code
// verifier, sealed (AES-256-GCM, a key that lives only in this process) into the browser's pre-sign-in
// cookie. Keeping it in the browser that started it means nothing is held for sign-ins that never
// return (no memory an unauthenticated client can fill), and a callback arriving in another browser
// (login CSRF: an attacker's code pushed into a victim's tab) finds no transaction whose state matches.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface PendingSignIn {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  /** ms since epoch */
  readonly expiresAt: number;
}

const AAD = Buffer.from('edge-oidc-transaction-v1');
const MAX_SEALED_CHARS = 1024;

export class PendingSignInSealer {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    if (key.length !== 32) throw new TypeError('PendingSignInSealer needs a 32-byte key');
    this.#key = key;
  }

  seal(pending: PendingSignIn): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv).setAAD(AAD);
    const body = Buffer.concat([cipher.update(JSON.stringify(pending), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The pending sign-in, or undefined when the value is not one this process sealed or it expired. */
  open(sealed: string | undefined, now = Date.now()): PendingSignIn | undefined {
    if (sealed === undefined || sealed.length > MAX_SEALED_CHARS || !/^[A-Za-z0-9_-]+$/.test(sealed)) return undefined;
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 12 + 16 + 2) return undefined;
    let text: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12)).setAAD(AAD);
      decipher.setAuthTag(raw.subarray(12, 28));
      text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return undefined; // not sealed by this process (forged, altered, or from before a restart)
    }
    const pending = JSON.parse(text) as PendingSignIn;
    return pending.expiresAt > now ? pending : undefined;
  }
}
