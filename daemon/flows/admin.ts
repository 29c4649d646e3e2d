// The access and admin flow: who may sign in (AccessControl over the store's users), the routes that
// manage users and review break-glass (on the control socket for `edgectl user`, and on the admin
// listener), and the HTTPS admin listener (admin/admin-listener.ts) with every route the control socket
// serves mounted under /api (same permission, one declaration each) plus the session, account and
// break-glass routes. Absent `admin` in the config: no listener, `edgectl user` still works.
import { readFileSync } from 'node:fs';
import type { ControlRoute } from '../core/control-route.ts';
import type { Service } from '../core/service.ts';
import { AccessControl } from '../admin/access-control.ts';
import { accountRoutes } from '../admin/account-routes.ts';
import { AdminListener } from '../admin/admin-listener.ts';
import { BreakGlass } from '../admin/break-glass.ts';
import { sessionRoutes } from '../admin/session-routes.ts';
import { userRoutes } from '../admin/user-routes.ts';
import type { FlowContext } from './flow-context.ts';
import { signInMethods } from './sign-in-methods.ts';

export interface AdminFlow extends Service {
  readonly listener: AdminListener;
  readonly port: number | undefined;
}

export interface AccessFlow {
  readonly access: AccessControl;
  readonly breakGlass: BreakGlass;
  /** Routes of the control socket too (users, break-glass review). */
  readonly routes: readonly ControlRoute[];
  /** The listener, when `admin` is configured; it mounts the control socket's routes when it starts. */
  admin(controlRoutes: () => readonly ControlRoute[]): AdminFlow | undefined;
}

/** The listener's Host allowlist: configured, or the listen address, `localhost` and the box's name. */
export function adminHostNames(ctx: FlowContext): readonly string[] {
  const admin = ctx.config.admin!;
  return admin.hostNames ?? [...new Set([admin.listen.host, 'localhost', ctx.config.site.name.toLowerCase()])];
}

// Without an admin listener nobody signs in (only the console manages users); these rules then never apply.
const NO_LISTENER_RULES = {
  session: { idleTimeoutMs: 600_000, absoluteLifetimeMs: 43_200_000, stepUpWindowMs: 300_000, bindToAddress: true },
  lockout: {
    backoffAfterFailures: 5,
    addressBackoffAfterFailures: 20,
    initialBackoffMs: 1000,
    maxBackoffMs: 900_000,
    lockAfterFailures: 20,
  },
  breakGlass: { role: 'operator', durationMs: 1_800_000 },
} as const;

export function accessFlow(ctx: FlowContext): AccessFlow {
  const config = ctx.config.admin;
  const logger = ctx.logger.child({ component: 'admin' });
  const access = new AccessControl({
    users: ctx.store.users,
    audit: ctx.audit,
    box: ctx.box,
    logger,
    session: config?.session ?? NO_LISTENER_RULES.session,
    lockout: config?.lockout ?? NO_LISTENER_RULES.lockout,
  });
  const breakGlass = new BreakGlass(access, ctx.store.breakGlass, config?.breakGlass ?? NO_LISTENER_RULES.breakGlass, logger);
  const [startRoute, stopRoute, ...reviewRoutes] = breakGlass.routes();
  return {
    access,
    breakGlass,
    routes: [...userRoutes(access), ...reviewRoutes],
    admin(controlRoutes) {
      if (config === undefined) return undefined;
      const listener = new AdminListener({
        host: config.listen.host,
        port: config.listen.port,
        tls: ctx.tls,
        hostNames: adminHostNames(ctx),
        maxConnections: config.maxConnections,
        requestTimeoutMs: config.requestTimeoutMs,
        headersTimeoutMs: config.headersTimeoutMs,
        maxBodyBytes: config.maxBodyBytes,
        access,
        audit: ctx.audit,
        logger,
        // The scraper's CA: the handshake asks for a client certificate so `/metrics` can check it.
        ...(config.metrics?.clientCa === undefined ? {} : { clientCa: readFileSync(config.metrics.clientCa) }),
      });
      listener.add(
        ...sessionRoutes(
          access,
          () => listener.routes(),
          () => ({ breakGlass: breakGlass.banner() }),
        ),
        ...accountRoutes(access, ctx.config.site.name),
        startRoute!,
        stopRoute!,
      );
      const methods = signInMethods(ctx, listener, access, adminHostNames(ctx));
      let mounted = false;
      return {
        name: 'admin',
        listener,
        get port() {
          return listener.port === 0 ? undefined : listener.port;
        },
        start: async () => {
          // Every control route is declared by now (the control flow was composed before this starts).
          if (!mounted) listener.add(...controlRoutes());
          mounted = true;
          await breakGlass.recover();
          await listener.start();
          await methods.start(listener.port);
        },
        stop: async () => {
          await methods.stop();
          await listener.stop();
        },
        health: () => ({ status: 'ok', detail: `${listener.routes().length} route(s), ${access.sessions.size} session(s)` }),
      };
    },
  };
}
