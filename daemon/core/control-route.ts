// A route of the local control API (and, next, of the admin page), owned by the part that serves it:
// each flow or adapter declares its routes with the permission a caller needs, and the control server
// only mounts them. The permissions are the roles of DESIGN.md §7, in one table.

/** Roles of hospital IT users, least to most (auditor stands apart: it reads the audit trail only). */
export const Permission = {
  viewer: 'read health, queues, peers and certificates',
  operator: 'act on the outbound queues (retry, discard); enter downtime orders; import the upstream worklist',
  admin: 'change keys, peers and configuration; take backups',
  auditor: 'read and export the audit trail',
} as const;

export type PermissionName = keyof typeof Permission;

export interface ControlRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

export interface ControlResponse {
  readonly status: number;
  readonly body: unknown;
}

export type ControlHandler = (req: ControlRequest) => Promise<ControlResponse> | ControlResponse;

export interface ControlRoute {
  readonly method: 'GET' | 'POST';
  /** Exact path match. */
  readonly path: string;
  readonly permission: PermissionName;
  readonly handle: ControlHandler;
}

/** Where something mounts its routes (the control server; later the admin listener too). */
export interface ControlRoutes {
  add(...routes: readonly ControlRoute[]): void;
}
