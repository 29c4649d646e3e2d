// The admin flow: the HTTPS admin listener (admin/admin-listener.ts) with every route the control
// socket serves mounted under /api (same permission, one declaration each), the session routes, and the
// access routes other flows add. Absent `admin` in the config: no listener.
import { readFileSync } from 'node:fs';
import type { ControlRoute } from '../core/control-route.ts';
import type { Service } from '../core/service.ts';
import { AccessControl } from '../admin/access-control.ts';
import { AdminListener } from '../admin/admin-listener.ts';
import { sessionRoutes, type SessionExtras } from '../admin/session-routes.ts';
import type { FlowContext } from './flow-context.ts';

export interface AdminFlow extends Service {
  readonly listener: AdminListener;
  readonly access: AccessControl;
  readonly port: number | undefined;
}

/** The listener's Host allowlist: configured, or the listen address, `localhost` and the box's name. */
export function adminHostNames(ctx: FlowContext): readonly string[] {
  const admin = ctx.config.admin!;
  return admin.hostNames ?? [...new Set([admin.listen.host, 'localhost', ctx.config.site.name.toLowerCase()])];
}

export function adminFlow(
  ctx: FlowContext,
  controlRoutes: () => readonly ControlRoute[],
  options: { readonly extras?: SessionExtras } = {},
): AdminFlow | undefined {
  const admin = ctx.config.admin;
  if (admin === undefined) return undefined;
  const logger = ctx.logger.child({ component: 'admin' });
  const access = new AccessControl({
    users: ctx.store.users,
    audit: ctx.audit,
    box: ctx.box,
    logger,
    session: admin.session,
    lockout: admin.lockout,
  });
  const listener = new AdminListener({
    host: admin.listen.host,
    port: admin.listen.port,
    tls: ctx.tls,
    hostNames: adminHostNames(ctx),
    maxConnections: admin.maxConnections,
    requestTimeoutMs: admin.requestTimeoutMs,
    headersTimeoutMs: admin.headersTimeoutMs,
    maxBodyBytes: admin.maxBodyBytes,
    access,
    audit: ctx.audit,
    logger,
    // The scraper's CA: the handshake asks for a client certificate so `/metrics` can check it.
    ...(admin.metrics?.clientCa === undefined ? {} : { clientCa: readFileSync(admin.metrics.clientCa) }),
  });
  listener.add(...sessionRoutes(access, () => listener.routes(), options.extras));
  let mounted = false;
  return {
    name: 'admin',
    listener,
    access,
    get port() {
      return listener.port === 0 ? undefined : listener.port;
    },
    start: async () => {
      // The control routes are all declared by now (the control flow is composed before this starts).
      if (!mounted) listener.add(...controlRoutes());
      mounted = true;
      await listener.start();
    },
    stop: () => listener.stop(),
    health: () => ({ status: 'ok', detail: `${listener.routes().length} route(s), ${access.sessions.size} session(s)` }),
  };
}
