// The admin listener's own routes: the session (who am I, what may I), local sign-in and sign-out, and
// the route table the page reads to show only what the user may do. They exist only on the listener.
import type { ControlRequest, ControlRoute } from '../core/control-route.ts';
import type { AccessControl } from './access-control.ts';
import { SessionStage } from './session-store.ts';

export interface SessionView {
  readonly signedIn: boolean;
  readonly [field: string]: unknown;
}

/** Extra fields of GET /v1/session (the break-glass banner adds `breakGlass`). */
export type SessionExtras = (req: ControlRequest) => Promise<Record<string, unknown>> | Record<string, unknown>;

export function sessionRoutes(
  access: AccessControl,
  table: () => readonly { method: string; path: string; permission: string; stepUp: boolean; background: boolean }[],
  extras: SessionExtras = () => ({}),
): ControlRoute[] {
  const current = (req: ControlRequest) => access.sessionOf(req);
  return [
    {
      method: 'GET',
      path: '/v1/session',
      permission: 'signed-in',
      background: true,
      adminOnly: true,
      handle: async (req) => {
        const s = current(req);
        const rules = access.rules;
        return {
          status: 200,
          body: {
            signedIn: true,
            username: s.username,
            displayName: s.displayName,
            role: s.role,
            ...(req.caller?.elevatedTo === undefined ? {} : { elevatedTo: req.caller.elevatedTo }),
            stage: s.stage,
            stageMeaning: SessionStage[s.stage],
            method: s.method,
            amr: s.amr,
            expiresAt: new Date(s.createdAt + rules.absoluteLifetimeMs).toISOString(),
            idleExpiresAt: new Date(s.lastActivityAt + rules.idleTimeoutMs).toISOString(),
            stepUpValidUntil: new Date(s.verifiedAt + rules.stepUpWindowMs).toISOString(),
            ...(await extras(req)),
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/sign-in',
      permission: 'public',
      adminOnly: true,
      handle: async (req) => {
        const body = (req.body ?? {}) as { username?: unknown; password?: unknown };
        const { cookie, session } = await access.signInWithPassword(body.username, body.password, req.caller?.address ?? 'unknown');
        return {
          status: 200,
          body: { signedIn: true, username: session.username, stage: session.stage },
          headers: { 'set-cookie': cookie },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/sign-out',
      permission: 'signed-in',
      adminOnly: true,
      handle: (req) => {
        const cookie = access.signOut(current(req));
        return { status: 200, body: { signedIn: false }, headers: { 'set-cookie': cookie } };
      },
    },
    {
      method: 'GET',
      path: '/v1/access/routes',
      permission: 'signed-in',
      background: true,
      adminOnly: true,
      handle: () => ({ status: 200, body: { routes: table() } }),
    },
  ];
}
