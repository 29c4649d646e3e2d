// Server-side sessions of the admin listener. The cookie carries a random 256-bit id; the box keeps
// only its SHA-256, so neither a memory dump of this map nor a log line can be replayed as a cookie.
// Sessions live in memory: a restart signs everyone out, which is the safe failure.
import { createHash, randomBytes } from 'node:crypto';
import type { RoleName } from '../core/control-route.ts';

/** What a session still lacks before it may use the API (sign-in is a small state machine). */
export const SessionStage = {
  /** Password proven; the TOTP code (or a recovery code) is asked next. */
  mfa: 'second factor required',
  /** A one-time or reset password: a new one must be set first. */
  'change-password': 'new password required',
  /** No second factor enrolled yet and the account must have one. */
  'enrol-mfa': 'TOTP enrolment required',
  full: 'signed in',
} as const;
export type SessionStageName = keyof typeof SessionStage;

export interface BreakGlassElevation {
  readonly id: string;
  readonly role: RoleName;
  readonly until: number;
}

export interface Session {
  /** SHA-256 of the cookie's id, hex: the map's key and the only form of the id the box holds. */
  readonly key: string;
  readonly username: string;
  readonly displayName: string;
  readonly role: RoleName;
  /** `password`, `oidc`, … with the RFC 8176 `amr` values proven (pwd, otp, mfa, hwk…). */
  readonly method: string;
  readonly amr: readonly string[];
  readonly address: string;
  readonly createdAt: number;
  readonly epoch: number;
  stage: SessionStageName;
  lastActivityAt: number;
  /** Last time the user proved the password or a TOTP code (sign-in counts): the step-up window. */
  verifiedAt: number;
  breakGlass?: BreakGlassElevation;
  /** A TOTP secret shown for enrolment, not confirmed yet (kept only here, in memory). */
  pendingTotp?: string;
}

export type NewSession = Omit<Session, 'key' | 'createdAt' | 'lastActivityAt' | 'verifiedAt'>;

export const SESSION_COOKIE = '__Host-edge-session';

export function sessionCookie(id: string): string {
  return `${SESSION_COOKIE}=${id}; Secure; HttpOnly; SameSite=Strict; Path=/`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

function keyOf(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  /** A new session with a fresh id (never one the client offered: no fixation). Returns the cookie id. */
  create(fields: NewSession, now = Date.now()): { id: string; session: Session } {
    const id = randomBytes(32).toString('base64url');
    const session: Session = { ...fields, key: keyOf(id), createdAt: now, lastActivityAt: now, verifiedAt: now };
    this.#sessions.set(session.key, session);
    return { id, session };
  }

  /** The session of a cookie id; undefined for an unknown, forged or ended one. */
  find(id: string): Session | undefined {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    return this.#sessions.get(keyOf(id));
  }

  delete(session: Session): void {
    this.#sessions.delete(session.key);
  }

  /** Ends every session of a user (sign-out everywhere); returns them. */
  deleteUser(username: string): Session[] {
    const ended = [...this.#sessions.values()].filter((s) => s.username === username);
    for (const s of ended) this.#sessions.delete(s.key);
    return ended;
  }

  /** Puts back a session `deleteUser` took (the one that made the change stays signed in). */
  keep(session: Session): void {
    this.#sessions.set(session.key, session);
  }

  all(): readonly Session[] {
    return [...this.#sessions.values()];
  }

  get size(): number {
    return this.#sessions.size;
  }
}
