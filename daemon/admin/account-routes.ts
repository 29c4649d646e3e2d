// What signed-in users do to their own account on the admin listener: set a new password (forced after
// a one-time password), enrol TOTP (QR code drawn on the box, ten recovery codes shown once), give the
// second factor at sign-in (a TOTP or a recovery code), and step up before a sensitive action.
import type { ControlRequest, ControlRoute } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import { hashPassword, verifyPasswordHash } from '../core/password-hash.ts';
import type { UserRecord } from '../core/user-account.ts';
import type { AccessControl } from './access-control.ts';
import { checkPassword } from './password-policy.ts';
import { looksLikeRecoveryCode, newRecoveryCodes, recoveryCodeHash } from './recovery-codes.ts';
import type { Session } from './session-store.ts';
import { newTotpSetup, totpStep } from './totp.ts';

const wrongCode = (): EdgeError => new EdgeError('EDGE_ACCESS_MFA_INVALID', 'the code is wrong or was used already: wait for the next one');

export function accountRoutes(access: AccessControl, issuer: string): ControlRoute[] {
  const userOf = async (session: Session): Promise<UserRecord> => {
    const user = await access.users.get(session.username);
    if (user === undefined) throw new EdgeError('EDGE_ACCESS_UNAUTHENTICATED', 'the account no longer exists');
    return user;
  };
  const field = (req: ControlRequest, name: string): unknown => (req.body as Record<string, unknown> | undefined)?.[name];
  const throttled = (session: Session): void => {
    const waitMs = access.throttle.waitMs(session.username, session.address);
    if (waitMs > 0) {
      throw new EdgeError('EDGE_ACCESS_THROTTLED', `too many failed attempts: wait ${Math.ceil(waitMs / 1000)} s`, {
        detail: { retryAfterS: Math.ceil(waitMs / 1000) },
      });
    }
  };

  /** A TOTP code accepted once: the step is written in the same commit that checks it is new. */
  const acceptTotp = async (session: Session, code: unknown): Promise<UserRecord | undefined> => {
    const user = await userOf(session);
    if (user.totp === undefined) return undefined;
    const step = totpStep(user.totp.secret, code);
    if (step === undefined) return undefined;
    let fresh = false;
    const updated = await access.users.update(session.username, (u) => {
      if (u.totp === undefined || step <= u.totp.lastStep) return undefined;
      fresh = true;
      return { ...u, totp: { ...u.totp, lastStep: step } };
    });
    return fresh ? updated : undefined;
  };

  const acceptRecoveryCode = async (session: Session, code: string): Promise<UserRecord | undefined> => {
    const hash = recoveryCodeHash(code);
    let used = false;
    const updated = await access.users.update(session.username, (u) => {
      const left = (u.recoveryCodes ?? []).filter((h) => h !== hash);
      if (left.length === (u.recoveryCodes ?? []).length) return undefined;
      used = true;
      return { ...u, recoveryCodes: left };
    });
    if (!used || updated === undefined) return undefined;
    access.record('access.recovery-code-used', session, `${updated.recoveryCodes?.length ?? 0} recovery code(s) left`);
    return updated;
  };

  return [
    {
      method: 'POST',
      path: '/v1/session/totp',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const session = access.sessionOf(req);
        if (session.stage !== 'mfa') throw new EdgeError('EDGE_ACCESS_MFA_INVALID', 'no second factor is asked for this session');
        throttled(session);
        const code = field(req, 'code');
        const user = looksLikeRecoveryCode(code) ? await acceptRecoveryCode(session, code) : await acceptTotp(session, code);
        if (user === undefined) {
          await access.failedProof(session, 'wrong or reused second-factor code');
          throw wrongCode();
        }
        access.throttle.succeeded(session.username, session.address);
        access.advance(session, user, 'otp');
        return { status: 200, body: { stage: session.stage } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/password',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const session = access.sessionOf(req);
        throttled(session);
        const user = await userOf(session);
        const current = field(req, 'currentPassword');
        if (typeof current !== 'string' || !(await verifyPasswordHash(user.password, current))) {
          await access.failedProof(session, 'wrong current password at a password change');
          throw new EdgeError('EDGE_ACCESS_SIGN_IN_FAILED', 'the current password is wrong');
        }
        const next = checkPassword(field(req, 'newPassword'), user.username);
        if (next === current) throw new EdgeError('EDGE_ACCESS_PASSWORD_POLICY', 'the new password must differ from the current one');
        const password = await hashPassword(next);
        const updated = await access.users.update(user.username, (u) => ({
          ...u,
          password,
          mustChange: false,
          sessionEpoch: (u.sessionEpoch ?? 0) + 1,
        }));
        if (updated === undefined) throw new EdgeError('EDGE_ACCESS_UNAUTHENTICATED', 'the account no longer exists');
        // Sign-out everywhere else: whoever knew the old password keeps no session.
        access.endSessionsOf(user.username, 'password changed', session);
        access.record('access.password-changed', session);
        access.verified(session, 'password');
        access.advance(session, updated);
        return { status: 200, body: { stage: session.stage } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/totp/enrol',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const session = access.sessionOf(req);
        const user = await userOf(session);
        if (user.totp !== undefined) {
          throw new EdgeError('EDGE_ACCESS_MFA_INVALID', 'TOTP is enrolled already; an admin can reset it (edgectl user reset-mfa)');
        }
        const setup = newTotpSetup(issuer, user.username);
        session.pendingTotp = setup.secret;
        return { status: 200, body: { secret: setup.secret, uri: setup.uri, qrSvg: setup.qrSvg } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/totp/confirm',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const session = access.sessionOf(req);
        const secret = session.pendingTotp;
        if (secret === undefined) throw new EdgeError('EDGE_ACCESS_MFA_INVALID', 'start with POST /api/v1/session/totp/enrol');
        throttled(session);
        const step = totpStep(secret, field(req, 'code'));
        if (step === undefined) {
          await access.failedProof(session, 'wrong code at TOTP enrolment');
          throw wrongCode();
        }
        const { codes, hashes } = newRecoveryCodes();
        const updated = await access.users.update(session.username, (u) =>
          u.totp !== undefined
            ? undefined
            : { ...u, totp: { secret, lastStep: step, enrolledAt: Date.now() }, recoveryCodes: hashes, mustEnrolMfa: false },
        );
        if (updated?.totp?.secret !== secret) throw new EdgeError('EDGE_ACCESS_MFA_INVALID', 'TOTP is enrolled already');
        delete session.pendingTotp;
        access.record('access.mfa-enrolled', session, 'TOTP and 10 recovery codes');
        access.advance(session, updated, 'otp');
        return { status: 200, body: { stage: session.stage, recoveryCodes: codes } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/step-up',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const session = access.sessionOf(req);
        throttled(session);
        const password = field(req, 'password');
        const code = field(req, 'code');
        let how: string | undefined;
        if (typeof password === 'string') {
          if (await verifyPasswordHash((await userOf(session)).password, password)) how = 'password';
        } else if (code !== undefined) {
          if ((await acceptTotp(session, code)) !== undefined) how = 'totp';
        } else {
          throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'send {"password": "..."} or {"code": "123456"}');
        }
        if (how === undefined) {
          access.stepUpFailed(session, typeof password === 'string' ? 'password' : 'totp');
          await access.failedProof(session, 'wrong step-up proof');
          throw new EdgeError('EDGE_ACCESS_SIGN_IN_FAILED', 'the password or code is wrong');
        }
        access.throttle.succeeded(session.username, session.address);
        access.verified(session, how);
        return { status: 200, body: { stepUpValidUntil: new Date(session.verifiedAt + access.rules.stepUpWindowMs).toISOString() } };
      },
    },
  ];
}
