// User management: the same routes on the control socket (`edgectl user …`, the console's root) and on
// the admin listener (an admin, after step-up). Accounts are created with a one-time password shown
// once, which must be changed at the first sign-in, and TOTP enrolment is forced there too. A change of
// role, a disable or a lock ends the user's sessions (sign-out everywhere). The last active admin
// cannot be disabled or demoted, so the box is never left without one (the console can still add one).
import type { Caller, ControlRequest, ControlRoute } from '../core/control-route.ts';
import { RoleNames, type RoleName } from '../core/control-route.ts';
import { EdgeError } from '../core/errors.ts';
import { hashPassword } from '../core/password-hash.ts';
import { type UserRecord, stateOf } from '../core/user-account.ts';
import { randomBytes } from 'node:crypto';
import type { AccessControl } from './access-control.ts';

const USER_NAME = /^[a-z][a-z0-9._-]{1,31}$/;

/** What `GET /v1/users` shows of an account: never a hash, secret or recovery code. */
export function userView(u: UserRecord): Record<string, unknown> {
  return {
    username: u.username,
    displayName: u.displayName ?? u.username,
    role: u.role,
    state: stateOf(u),
    mustChangePassword: u.mustChange,
    mfa: u.totp === undefined ? (u.mustEnrolMfa === true ? 'enrolment pending' : 'none') : 'totp',
    recoveryCodesLeft: u.recoveryCodes?.length ?? 0,
    createdAt: new Date(u.createdAt).toISOString(),
    ...(u.lastLoginAt === undefined ? {} : { lastLoginAt: new Date(u.lastLoginAt).toISOString() }),
  };
}

export function userRoutes(access: AccessControl): ControlRoute[] {
  const body = (req: ControlRequest): Record<string, unknown> =>
    typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};
  const usernameOf = (req: ControlRequest): string => {
    const name = body(req)['username'];
    if (typeof name !== 'string' || !USER_NAME.test(name)) {
      throw new EdgeError('EDGE_ACCESS_USER_INVALID', 'username: 2–32 of a-z 0-9 . _ - starting with a letter');
    }
    return name;
  };
  const roleOf = (req: ControlRequest): RoleName => {
    const role = body(req)['role'];
    if (typeof role !== 'string' || !(RoleNames as readonly string[]).includes(role)) {
      throw new EdgeError('EDGE_ACCESS_USER_INVALID', `role: one of ${RoleNames.join(', ')}`);
    }
    return role as RoleName;
  };
  /** Who did it, for the audit record: the signed-in admin, or the console (with its OS user when told). */
  const actor = (req: ControlRequest): { username: string; address?: string } => {
    const caller: Caller = req.caller ?? { kind: 'console', username: 'root' };
    if (caller.kind === 'user') return { username: caller.username, ...(caller.address === undefined ? {} : { address: caller.address }) };
    const osUser = body(req)['consoleUser'];
    return { username: `console:${typeof osUser === 'string' ? osUser.slice(0, 32) : 'root'}` };
  };
  const change = async (
    req: ControlRequest,
    edit: (u: UserRecord) => UserRecord | undefined,
  ): Promise<{ before: UserRecord; after: UserRecord }> => {
    const username = usernameOf(req);
    const before = await access.users.get(username);
    if (before === undefined) throw new EdgeError('EDGE_ACCESS_USER_NOT_FOUND', `no user "${username}" (edgectl user list)`);
    const after = await access.users.update(username, (u) => edit(u));
    return { before, after: after ?? before };
  };
  const keepsAnAdmin = async (username: string, next: Partial<UserRecord>): Promise<void> => {
    const admins = (await access.users.list()).filter((u) => u.role === 'admin' && stateOf(u) === 'active');
    const remaining = admins.filter(
      (u) => u.username !== username || ((next.role ?? u.role) === 'admin' && (next.state ?? 'active') === 'active'),
    );
    if (admins.length > 0 && remaining.length === 0) {
      throw new EdgeError('EDGE_ACCESS_USER_INVALID', `"${username}" is the last active admin: add or promote another admin first`);
    }
  };
  const ok = (u: UserRecord, extra: Record<string, unknown> = {}) => ({ status: 200, body: { user: userView(u), ...extra } });

  return [
    {
      method: 'GET',
      path: '/v1/users',
      permission: 'admin',
      handle: async () => ({ status: 200, body: { users: (await access.users.list()).map(userView) } }),
    },
    {
      method: 'POST',
      path: '/v1/users/add',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        const username = usernameOf(req);
        const role = roleOf(req);
        const displayName = body(req)['displayName'];
        if (
          displayName !== undefined &&
          (typeof displayName !== 'string' || displayName.length > 128 || /[\u0000-\u001f]/.test(displayName))
        ) {
          throw new EdgeError('EDGE_ACCESS_USER_INVALID', 'displayName: at most 128 printable characters');
        }
        const oneTimePassword = randomBytes(15).toString('base64url');
        const record: UserRecord = {
          username,
          ...(displayName === undefined ? {} : { displayName }),
          role,
          state: 'active',
          password: await hashPassword(oneTimePassword),
          mustChange: true,
          mustEnrolMfa: true,
          createdAt: Date.now(),
          sessionEpoch: 0,
        };
        if ((await access.users.get(username)) !== undefined) throw new EdgeError('EDGE_ACCESS_USER_EXISTS', `user "${username}" exists`);
        await access.users.create(record);
        access.record('access.user-created', actor(req), `${username} as ${role}`);
        return ok(record, { oneTimePassword });
      },
    },
    {
      method: 'POST',
      path: '/v1/users/disable',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        await keepsAnAdmin(usernameOf(req), { state: 'disabled' });
        const { after } = await change(req, (u) => ({ ...u, state: 'disabled', sessionEpoch: (u.sessionEpoch ?? 0) + 1 }));
        access.endSessionsOf(after.username, 'account disabled');
        access.record('access.user-disabled', actor(req), after.username);
        return ok(after);
      },
    },
    {
      method: 'POST',
      path: '/v1/users/enable',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        const { after } = await change(req, (u) => ({ ...u, state: 'active' }));
        access.throttle.clear(after.username);
        access.record('access.user-enabled', actor(req), after.username);
        return ok(after);
      },
    },
    {
      method: 'POST',
      path: '/v1/users/unlock',
      permission: 'admin',
      handle: async (req) => {
        const { before, after } = await change(req, (u) => (stateOf(u) === 'locked' ? { ...u, state: 'active' } : undefined));
        access.throttle.clear(after.username);
        access.record('access.unlocked', actor(req), `${after.username} (was ${stateOf(before)})`);
        return ok(after);
      },
    },
    {
      method: 'POST',
      path: '/v1/users/reset-mfa',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        const { after } = await change(req, (u) => {
          const { totp: _totp, recoveryCodes: _codes, ...rest } = u;
          return { ...rest, mustEnrolMfa: true, sessionEpoch: (u.sessionEpoch ?? 0) + 1 };
        });
        access.endSessionsOf(after.username, 'MFA reset');
        access.record('access.mfa-reset', actor(req), after.username);
        return ok(after);
      },
    },
    {
      method: 'POST',
      path: '/v1/users/set-role',
      permission: 'admin',
      stepUp: true,
      handle: async (req) => {
        const role = roleOf(req);
        await keepsAnAdmin(usernameOf(req), { role });
        const { before, after } = await change(req, (u) =>
          u.role === role ? undefined : { ...u, role, sessionEpoch: (u.sessionEpoch ?? 0) + 1 },
        );
        if (before.role !== after.role) {
          access.endSessionsOf(after.username, 'role changed');
          access.record('access.role-changed', actor(req), `${after.username}: ${before.role} → ${after.role}`);
        }
        return ok(after);
      },
    },
  ];
}
