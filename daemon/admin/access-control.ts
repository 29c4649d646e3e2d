// Who is signed in on the admin listener and what their session still allows: sign-in with the local
// password (argon2id, core/password-hash.ts), the session's stages (second factor, forced password
// change, forced TOTP enrolment), idle timeout counted on user actions only, absolute lifetime, the
// step-up window, binding to the client address, back-off and lockout after failures, and the audit
// record of each. Other sign-in methods (OIDC, WebAuthn) end in `establishSession`.
import { securityAlert } from '../core/audit-event-builders.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { AuditEventType } from '../core/audit-events.ts';
import type { Caller, ControlRequest, ControlRoute, RoleName } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { DummyPasswordHash, hashPassword, needsRehash, verifyPasswordHash } from '../core/password-hash.ts';
import { type UserDirectory, type UserRecord, stateOf } from '../core/user-account.ts';
import { type Session, type SessionStageName, SessionStore, clearedSessionCookie, sessionCookie } from './session-store.ts';
import { SignInThrottle, type ThrottleOptions } from './sign-in-throttle.ts';

/** The audit types of this area (all: one Event ID, action E). */
export type AccessEventType = Extract<AuditEventType, `access.${string}`>;

export interface SessionRules {
  readonly idleTimeoutMs: number;
  readonly absoluteLifetimeMs: number;
  readonly stepUpWindowMs: number;
  readonly bindToAddress: boolean;
}

export interface LockoutRules extends ThrottleOptions {
  readonly lockAfterFailures: number;
}

export interface AccessControlOptions {
  readonly users: UserDirectory;
  readonly audit: AuditSink;
  readonly box: AuditParticipant;
  readonly logger: Logger;
  readonly session: SessionRules;
  readonly lockout: LockoutRules;
  /** How often expired sessions are swept (and their timeout audited). */
  readonly sweepIntervalMs?: number;
}

/** Who a sign-in method proved the user to be. */
export interface SignedInIdentity {
  readonly username: string;
  readonly displayName?: string;
  readonly role: RoleName;
  /** Session epoch of the local account (sign-out everywhere); 0 for users the IdP vouches for. */
  readonly epoch?: number;
}

export interface EstablishOptions {
  /** `password`, `oidc`, `webauthn`, … */
  readonly method: string;
  /** RFC 8176 authentication method references proven so far (`pwd`, `otp`, `mfa`, `hwk`, …). */
  readonly amr: readonly string[];
  readonly address: string;
  /** What the session still lacks; `full` when omitted. */
  readonly stage?: SessionStageName;
}

export interface Established {
  /** The Set-Cookie header value to answer with. */
  readonly cookie: string;
  readonly session: Session;
}

/** Routes a session that has not finished signing in may still use, by stage. */
const PARTIAL_STAGE_PATHS: Readonly<Record<Exclude<SessionStageName, 'full'>, readonly string[]>> = {
  mfa: ['/v1/session', '/v1/session/sign-out', '/v1/session/totp'],
  'change-password': ['/v1/session', '/v1/session/sign-out', '/v1/session/password'],
  'enrol-mfa': ['/v1/session', '/v1/session/sign-out', '/v1/session/totp/enrol', '/v1/session/totp/confirm'],
};

const MAX_PASSWORD_CHARS = 1024;

export class AccessControl {
  readonly #o: AccessControlOptions;
  readonly sessions = new SessionStore();
  readonly throttle: SignInThrottle;
  readonly #requests = new WeakMap<ControlRequest, Session>();
  #sweep: NodeJS.Timeout | undefined;
  readonly #onEnd: ((session: Session, why: string) => void)[] = [];
  readonly #onSweep: ((now: number) => void)[] = [];

  constructor(options: AccessControlOptions) {
    this.#o = options;
    this.throttle = new SignInThrottle(options.lockout);
  }

  get users(): UserDirectory {
    return this.#o.users;
  }

  get rules(): SessionRules {
    return this.#o.session;
  }

  start(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setInterval(() => this.sweep(), this.#o.sweepIntervalMs ?? 1000);
    this.#sweep.unref();
  }

  stop(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /** Called whenever a session ends (sign-out, timeout, sign-out everywhere): break-glass stops with it. */
  onSessionEnd(listener: (session: Session, why: string) => void): void {
    this.#onEnd.push(listener);
  }

  /** Called on every sweep (once a second): time limits of other parts (break-glass) run on it. */
  onSweep(listener: (now: number) => void): void {
    this.#onSweep.push(listener);
  }

  /** Ends sessions past their idle timeout or lifetime, auditing each (the automatic logoff). */
  sweep(now = Date.now()): void {
    for (const s of this.sessions.all()) {
      const why = this.#expiry(s, now);
      if (why !== undefined) this.#expire(s, why);
    }
    for (const l of this.#onSweep) l(now);
  }

  #ended(session: Session, why: string): void {
    for (const l of this.#onEnd) l(session, why);
  }

  /**
   * The session of a cookie, if it may still be used from `address`: a request that is not a background
   * refresh counts as activity. An expired session ends here (audited) if the sweep did not get it first.
   */
  resume(
    cookieId: string,
    request: { address: string; background: boolean; path: string },
    now = Date.now(),
  ): { session: Session; caller: Caller } | undefined {
    const session = this.sessions.find(cookieId);
    if (session === undefined) return undefined;
    const why = this.#expiry(session, now);
    if (why !== undefined) {
      this.#expire(session, why);
      return undefined;
    }
    if (this.#o.session.bindToAddress && session.address !== request.address) {
      // A cookie used from elsewhere was copied: end the session rather than let either side keep it.
      this.sessions.delete(session);
      this.#ended(session, 'session refused');
      this.#o.logger.warn('access.session-refused', { user: session.username, address: request.address, reason: 'other client address' });
      this.#o.audit.record(
        securityAlert(
          'access.session-refused',
          [this.#participant(session.username, request.address), this.#o.box],
          `session used from ${request.address}, began on ${session.address}: ended`,
        ),
      );
      return undefined;
    }
    if (!request.background) session.lastActivityAt = now;
    return { session, caller: this.callerOf(session, now) };
  }

  /** The listener ties each request to the session it resumed, for the handlers that act on it. */
  bind(req: ControlRequest, session: Session): void {
    this.#requests.set(req, session);
  }

  sessionOf(req: ControlRequest): Session {
    const session = this.#requests.get(req);
    if (session === undefined) throw new EdgeError('EDGE_ACCESS_UNAUTHENTICATED', 'sign in first (POST /api/v1/session/sign-in)');
    return session;
  }

  callerOf(session: Session, now = Date.now()): Caller {
    const elevated = session.breakGlass !== undefined && session.breakGlass.until > now ? session.breakGlass.role : undefined;
    return {
      kind: 'user',
      username: session.username,
      role: session.role,
      ...(elevated === undefined ? {} : { elevatedTo: elevated }),
      address: session.address,
    };
  }

  stageAllows(session: Session, path: string): boolean {
    return session.stage === 'full' || PARTIAL_STAGE_PATHS[session.stage].includes(path);
  }

  recentlyVerified(session: Session, now = Date.now()): boolean {
    return now - session.verifiedAt <= this.#o.session.stepUpWindowMs;
  }

  denied(caller: Caller, route: Pick<ControlRoute, 'method' | 'path' | 'permission'>, address: string): void {
    this.#o.audit.record(
      securityAlert(
        'access.permission-denied',
        [this.#participant(caller.username, address), this.#o.box],
        `${route.method} /api${route.path} needs ${route.permission}; role ${caller.role ?? 'none'}`,
      ),
    );
  }

  /** Signs a user in whom a sign-in method has proven; always a fresh session id (no fixation). */
  establishSession(identity: SignedInIdentity, how: EstablishOptions): Established {
    const { id, session } = this.sessions.create({
      username: identity.username,
      displayName: identity.displayName ?? identity.username,
      role: identity.role,
      method: how.method,
      amr: how.amr,
      address: how.address,
      epoch: identity.epoch ?? 0,
      stage: how.stage ?? 'full',
    });
    if (session.stage === 'full') this.#signedIn(session);
    return { cookie: sessionCookie(id), session };
  }

  /** Moves a session one stage on (second factor proven, password changed, TOTP enrolled). */
  advance(session: Session, user: UserRecord, proven?: string): void {
    if (proven !== undefined && !session.amr.includes(proven)) (session as { amr: readonly string[] }).amr = [...session.amr, proven];
    const before = session.stage;
    session.stage = nextStage(user, session);
    if (before !== 'full' && session.stage === 'full') this.#signedIn(session);
  }

  /**
   * The local password sign-in. A wrong password, an unknown user, a disabled or locked account all
   * answer EDGE_ACCESS_SIGN_IN_FAILED after one argon2id verification; during a back-off every attempt
   * for that name or from that address answers EDGE_ACCESS_THROTTLED before any verification.
   */
  async signInWithPassword(username: unknown, password: unknown, address: string): Promise<Established> {
    if (typeof username !== 'string' || typeof password !== 'string' || username.length === 0 || username.length > 64)
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'send {"username": "...", "password": "..."}');
    if (password.length > MAX_PASSWORD_CHARS)
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', `a password has at most ${MAX_PASSWORD_CHARS} characters`);
    const name = username.toLowerCase();
    const waitMs = this.throttle.waitMs(name, address);
    if (waitMs > 0) {
      throw new EdgeError(
        'EDGE_ACCESS_THROTTLED',
        `too many failed sign-ins: wait ${Math.ceil(waitMs / 1000)} s, or ask an admin to unlock the account`,
        {
          detail: { retryAfterS: Math.ceil(waitMs / 1000) },
        },
      );
    }
    const user = await this.#o.users.get(name);
    const matches = await verifyPasswordHash(user?.password ?? DummyPasswordHash, password);
    const state = user === undefined ? undefined : stateOf(user);
    if (user === undefined || !matches || state !== 'active') {
      await this.#failed(
        name,
        address,
        user === undefined ? 'unknown user or wrong password' : !matches ? 'unknown user or wrong password' : `account ${state}`,
      );
      throw new EdgeError(
        'EDGE_ACCESS_SIGN_IN_FAILED',
        'user name or password wrong, or the account is locked or disabled (an admin can tell)',
      );
    }
    this.throttle.succeeded(name, address);
    const rehashed = needsRehash(user.password) ? await hashPassword(password) : undefined;
    const updated =
      (await this.#o.users.update(name, (u) => ({
        ...u,
        lastLoginAt: Date.now(),
        ...(rehashed === undefined ? {} : { password: rehashed }),
      }))) ?? user;
    const draft = { amr: ['pwd'] } as Pick<Session, 'amr'>;
    return this.establishSession(
      {
        username: updated.username,
        role: updated.role,
        epoch: updated.sessionEpoch ?? 0,
        ...(updated.displayName === undefined ? {} : { displayName: updated.displayName }),
      },
      { method: 'password', amr: draft.amr, address, stage: nextStage(updated, draft) },
    );
  }

  /** Password or TOTP proven again: the step-up window starts now. */
  verified(session: Session, how: string): void {
    session.verifiedAt = Date.now();
    this.#o.audit.record(
      auditEvent('access.step-up', {
        at: Date.now(),
        participants: [this.#participant(session.username, session.address), this.#o.box],
        detail: how,
      }),
    );
  }

  stepUpFailed(session: Session, how: string): void {
    this.#o.audit.record(
      auditEvent('access.step-up-failed', {
        at: Date.now(),
        participants: [this.#participant(session.username, session.address), this.#o.box],
        detail: how,
      }),
    );
  }

  signOut(session: Session): string {
    this.sessions.delete(session);
    this.#ended(session, 'signed out');
    this.#o.logger.info('access.sign-out', { user: session.username, address: session.address });
    this.#o.audit.record(
      auditEvent('access.sign-out', { at: Date.now(), participants: [this.#participant(session.username, session.address), this.#o.box] }),
    );
    return clearedSessionCookie();
  }

  /** Sign-out everywhere (password or role change, disable, lock): returns how many sessions ended. */
  endSessionsOf(username: string, reason: string, except?: Session): number {
    const ended = this.sessions.deleteUser(username).filter((s) => s !== except);
    if (except !== undefined && except.username === username) this.sessions.keep(except);
    for (const s of ended) {
      this.#ended(s, reason);
      this.#o.audit.record(
        auditEvent('access.sign-out', {
          at: Date.now(),
          participants: [this.#participant(s.username, s.address), this.#o.box],
          detail: reason,
        }),
      );
    }
    return ended.length;
  }

  /** An audit record of the access area with the user (and address) as requestor, and the box. */
  record(type: AccessEventType, who: { readonly username: string; readonly address?: string }, detail?: string): void {
    this.#o.audit.record(
      auditEvent<AccessEventType>(type, {
        at: Date.now(),
        participants: [this.#participant(who.username, who.address), this.#o.box],
        ...(detail === undefined ? {} : { detail }),
      }),
    );
  }

  /** A failed proof of a second factor or password after sign-in began: counted like a failed sign-in. */
  async failedProof(session: Session, reason: string): Promise<void> {
    await this.#failed(session.username, session.address, reason);
  }

  #participant(username: string, address?: string): AuditParticipant {
    return { kind: 'user', id: username, ...(address === undefined ? {} : { address }), requestor: true };
  }

  #signedIn(session: Session): void {
    this.#o.logger.info('access.sign-in', { user: session.username, address: session.address, method: session.method });
    this.#o.audit.record(
      auditEvent('access.sign-in', {
        at: Date.now(),
        participants: [this.#participant(session.username, session.address), this.#o.box],
        detail: `${session.method} (${session.amr.join(', ')}), role ${session.role}`,
      }),
    );
  }

  async #failed(name: string, address: string, reason: string): Promise<void> {
    const { failures, backoffStarted } = this.throttle.failed(name, address);
    this.#o.logger.info('access.sign-in-failed', { address, failures });
    this.#o.audit.record(
      auditEvent('access.sign-in-failed', {
        at: Date.now(),
        participants: [this.#participant(name, address), this.#o.box],
        detail: reason,
      }),
    );
    if (backoffStarted) {
      this.#o.logger.warn('access.locked-out', { address, failures });
      this.#o.audit.record(
        securityAlert('access.locked-out', [this.#participant(name, address), this.#o.box], `back-off after ${failures} failed sign-ins`),
      );
    }
    if (failures === this.#o.lockout.lockAfterFailures) {
      const locked = await this.#o.users.update(name, (u) => (stateOf(u) === 'active' ? { ...u, state: 'locked' } : undefined));
      if (locked !== undefined && locked.state === 'locked') {
        this.#o.logger.warn('access.locked-out', { user: name, address, failures, accountLocked: true });
        this.endSessionsOf(name, 'account locked');
        this.#o.audit.record(
          securityAlert(
            'access.locked-out',
            [this.#participant(name, address), this.#o.box],
            `account locked after ${failures} failed sign-ins`,
          ),
        );
      }
    }
  }

  #expiry(session: Session, now: number): string | undefined {
    if (now - session.createdAt >= this.#o.session.absoluteLifetimeMs) return 'absolute lifetime reached';
    if (now - session.lastActivityAt >= this.#o.session.idleTimeoutMs) return 'idle timeout';
    return undefined;
  }

  #expire(session: Session, why: string): void {
    this.sessions.delete(session);
    this.#ended(session, why);
    this.#o.logger.info('access.session-expired', { user: session.username, reason: why });
    this.#o.audit.record(
      auditEvent('access.session-expired', {
        at: Date.now(),
        participants: [this.#participant(session.username, session.address), this.#o.box],
        detail: why,
      }),
    );
  }
}

/** The stage a signed-in user is at once `session.amr` is proven. */
function nextStage(user: UserRecord, session: Pick<Session, 'amr'>): SessionStageName {
  if (user.totp !== undefined && !session.amr.includes('otp')) return 'mfa';
  if (user.mustChange) return 'change-password';
  if (user.totp === undefined && user.mustEnrolMfa === true) return 'enrol-mfa';
  return 'full';
}

export { clearedSessionCookie };
