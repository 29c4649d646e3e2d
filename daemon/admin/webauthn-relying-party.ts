// WebAuthn (W3C Web Authentication Level 2) as a second factor and for step-up, through
// @simplewebauthn/server. The relying party id must be a DNS name the browser reached the box by:
// browsers refuse an IP address as rpID, so a box whose admin.hostNames holds only addresses offers TOTP
// alone. Credentials (public key, signature counter) live in the user's record in the encrypted store;
// the counter is checked on every assertion so a cloned authenticator shows up as a refusal.
import { isIP } from 'node:net';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { EdgeError } from '../core/errors.ts';
import type { WebAuthnCredential } from '../core/user-account.ts';
import { WebAuthnChallenges } from './webauthn-challenges.ts';

/** A registered authenticator, as kept in the user record. */
export type WebAuthnCredentialRecord = WebAuthnCredential;

export type MfaMethod = 'totp' | 'webauthn';

export interface MfaMethods {
  readonly methods: readonly MfaMethod[];
  /** Why WebAuthn is not offered, when it is not. */
  readonly webauthnUnavailable?: string;
}

export const WEBAUTHN_NEEDS_DNS_NAME =
  'WebAuthn needs the box to have a DNS name: browsers refuse an IP address as relying party; add one to admin.hostNames';

/** The relying party id for the admin host names: the first DNS name (not an IP literal), or undefined. */
export function webauthnRpId(hostNames: readonly string[]): string | undefined {
  return hostNames.find((h) => isIP(h) === 0 && h.trim() !== '')?.toLowerCase();
}

export function mfaMethodsFor(hostNames: readonly string[]): MfaMethods {
  return webauthnRpId(hostNames) === undefined
    ? { methods: ['totp'], webauthnUnavailable: WEBAUTHN_NEEDS_DNS_NAME }
    : { methods: ['totp', 'webauthn'] };
}

export interface WebAuthnRelyingPartyOptions {
  readonly hostNames: readonly string[];
  /** The admin listener's port, for the expected origins. */
  readonly port: number;
  /** Shown by the authenticator: this box's name. */
  readonly rpName: string;
  readonly ceremonyTimeoutMs?: number;
}

export interface WebAuthnUser {
  readonly username: string;
  readonly displayName: string;
  /** Opaque, stable, no personal data (WebAuthn §14.6.1): e.g. random bytes kept in the user record. */
  readonly userHandle: Uint8Array<ArrayBuffer>;
}

export class WebAuthnRelyingParty {
  readonly rpId: string;
  readonly #origins: readonly string[];
  readonly #rpName: string;
  readonly #timeoutMs: number;
  readonly #challenges: WebAuthnChallenges;

  /** Throws EDGE_WEBAUTHN_UNAVAILABLE when no host name is a DNS name. */
  constructor(options: WebAuthnRelyingPartyOptions) {
    const rpId = webauthnRpId(options.hostNames);
    if (rpId === undefined) throw new EdgeError('EDGE_WEBAUTHN_UNAVAILABLE', WEBAUTHN_NEEDS_DNS_NAME);
    this.rpId = rpId;
    const suffix = options.port === 443 ? '' : `:${options.port}`;
    // Every DNS name under the rpID may be an origin (a box reached as edge.x.org and edge-2.x.org is not).
    this.#origins = options.hostNames
      .filter((h) => isIP(h) === 0)
      .map((h) => h.toLowerCase())
      .filter((h) => h === rpId || h.endsWith(`.${rpId}`))
      .map((h) => `https://${h}${suffix}`);
    this.#rpName = options.rpName;
    this.#timeoutMs = options.ceremonyTimeoutMs ?? 120_000;
    this.#challenges = new WebAuthnChallenges(this.#timeoutMs);
  }

  get origins(): readonly string[] {
    return this.#origins;
  }

  /** Options for navigator.credentials.create(); `ceremony` keys the challenge (e.g. the session id's hash). */
  async registrationOptions(
    ceremony: string,
    user: WebAuthnUser,
    existing: readonly WebAuthnCredentialRecord[],
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const options = await generateRegistrationOptions({
      rpName: this.#rpName,
      rpID: this.rpId,
      userName: user.username,
      userDisplayName: user.displayName,
      userID: user.userHandle,
      timeout: this.#timeoutMs,
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.id, ...(c.transports === undefined ? {} : { transports: [...c.transports] }) })),
      authenticatorSelection: { residentKey: 'discouraged', userVerification: 'preferred' },
    });
    this.#challenges.put(`reg:${ceremony}`, options.challenge);
    return options;
  }

  async verifyRegistration(ceremony: string, response: unknown, now = Date.now()): Promise<WebAuthnCredentialRecord> {
    const expected = this.#challenges.take(`reg:${ceremony}`);
    if (expected === undefined) throw failed('no registration is pending (expired or already used): start again');
    let result;
    try {
      result = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: expected,
        expectedOrigin: [...this.#origins],
        expectedRPID: this.rpId,
        requireUserVerification: false,
      });
    } catch (cause) {
      throw failed(`the registration failed verification: ${reason(cause)}`, cause);
    }
    if (!result.verified) throw failed('the registration failed verification');
    const { credential } = result.registrationInfo;
    return {
      id: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      counter: credential.counter,
      ...(credential.transports === undefined ? {} : { transports: [...credential.transports] }),
      createdAt: now,
    };
  }

  /** Options for navigator.credentials.get(), limited to the user's own credentials. */
  async authenticationOptions(
    ceremony: string,
    credentials: readonly WebAuthnCredentialRecord[],
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    if (credentials.length === 0) throw failed('this user has no WebAuthn credential: register one, or use TOTP');
    const options = await generateAuthenticationOptions({
      rpID: this.rpId,
      timeout: this.#timeoutMs,
      userVerification: 'preferred',
      allowCredentials: credentials.map((c) => ({ id: c.id, ...(c.transports === undefined ? {} : { transports: [...c.transports] }) })),
    });
    this.#challenges.put(`auth:${ceremony}`, options.challenge);
    return options;
  }

  /**
   * Verifies an assertion against the user's credentials; returns the credential with its new
   * counter (to be stored before the factor counts). Throws EDGE_WEBAUTHN_FAILED.
   */
  async verifyAuthentication(
    ceremony: string,
    response: unknown,
    credentials: readonly WebAuthnCredentialRecord[],
    now = Date.now(),
  ): Promise<WebAuthnCredentialRecord> {
    const expected = this.#challenges.take(`auth:${ceremony}`);
    if (expected === undefined) throw failed('no WebAuthn sign-in is pending (expired or already used): start again');
    const id = (response as { id?: unknown } | null)?.id;
    const credential = typeof id === 'string' ? credentials.find((c) => c.id === id) : undefined;
    if (credential === undefined) throw failed('the authenticator used is not registered to this user');
    let result;
    try {
      result = await verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge: expected,
        expectedOrigin: [...this.#origins],
        expectedRPID: this.rpId,
        credential: {
          id: credential.id,
          publicKey: Buffer.from(credential.publicKey, 'base64url'),
          counter: credential.counter,
          ...(credential.transports === undefined ? {} : { transports: [...credential.transports] }),
        },
        requireUserVerification: false,
      });
    } catch (cause) {
      throw failed(`the assertion failed verification: ${reason(cause)}`, cause);
    }
    if (!result.verified) throw failed('the assertion failed verification');
    return { ...credential, counter: result.authenticationInfo.newCounter, lastUsedAt: now };
  }
}

function failed(message: string, cause?: unknown): EdgeError {
  return new EdgeError('EDGE_WEBAUTHN_FAILED', message, cause === undefined ? undefined : { cause });
}

/** simplewebauthn's message names the failed check ("Response counter value 3 was lower than expected 9"). */
function reason(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).slice(0, 200);
}
