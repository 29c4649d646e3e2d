// The control flow: the local control API (edgectl; the admin page next) mounting the routes every flow
// owns, and `GET /v1/status` with the health of each service of the box.
import type { ControlRoute } from '../core/control-route.ts';
import type { Logger } from '../core/log.ts';
import type { Service, ServiceStatus } from '../core/service.ts';
import { ControlServer } from '../admin/control-server.ts';
import { controlSocketPath } from '../admin/control-socket.ts';

export interface ControlFlow extends Service {
  readonly server: ControlServer;
}

/**
 * `status` answers `GET /v1/status` with the box's own fields and `services` (name, lifecycle state,
 * health of each part, in start order).
 */
export function controlFlow(
  dataDir: string,
  logger: Logger,
  status: () => Record<string, unknown>,
  services: () => ServiceStatus[],
  routes: readonly ControlRoute[],
): ControlFlow {
  const server = new ControlServer({ socketPath: controlSocketPath(dataDir), logger: logger.child({ component: 'control' }) });
  server.add(
    {
      method: 'GET',
      path: '/v1/status',
      permission: 'viewer',
      handle: () => ({ status: 200, body: { ...status(), services: services() } }),
    },
    ...routes,
  );
  return {
    name: 'control',
    server,
    start: () => server.start(),
    stop: () => server.stop(),
    health: () => ({ status: 'ok', detail: `${server.routes().length} route(s)` }),
  };
}

/**
 * Keys that cannot be unsealed: the box serves no listener, only `GET /v1/status` with the reason, so
 * the operator (and later the admin page) can see why.
 */
export function safeModeControl(dataDir: string, logger: Logger, status: Record<string, unknown>): ControlServer {
  const server = new ControlServer({ socketPath: controlSocketPath(dataDir), logger: logger.child({ component: 'control' }) });
  server.add({ method: 'GET', path: '/v1/status', permission: 'viewer', handle: () => ({ status: 200, body: status }) });
  return server;
}
