// A route of the local control API and of the admin listener's JSON API (`/api/v1/...`), owned by the
// part that serves it: each flow or adapter declares its routes with the permission a caller needs, and
// the servers only mount them. What each permission lets a role do is the one table below (`Permission`),
// so a route's declaration is the only place its access is decided. The control socket (local root only,
// `edgectl`) serves every route; the admin listener checks the signed-in user's role against the table.

/** The roles of hospital IT users (DESIGN.md §7). */
export const Role = {
  viewer: 'health, queues, peers and certificates; no patient data',
  operator: 'viewer, plus queue actions, the worklist with patient data, downtime orders and the upstream worklist import',
  admin: 'operator, plus configuration, peers, users, certificates and keys',
  auditor: 'the audit trail, audit bundles and the break-glass review; nothing else (no configuration)',
} as const;
export type RoleName = keyof typeof Role;
export const RoleNames = Object.keys(Role) as readonly RoleName[];

/**
 * The one permission table: which roles a route of each permission admits. operator ⊃ viewer and
 * admin ⊃ operator; auditor stands apart (separation of duties: nobody who changes the box reviews it).
 * `public` routes answer signed out (sign-in itself); `signed-in` ones any role (the session, sign-out,
 * the own password and MFA, starting break-glass).
 */
export const Permission = {
  public: { summary: 'anyone, signed out too', roles: ['viewer', 'operator', 'admin', 'auditor'] },
  'signed-in': { summary: 'any signed-in user', roles: ['viewer', 'operator', 'admin', 'auditor'] },
  viewer: { summary: 'read health, queues, peers and certificates', roles: ['viewer', 'operator', 'admin'] },
  operator: { summary: 'act on the outbound queues (retry, discard); patient data', roles: ['operator', 'admin'] },
  admin: { summary: 'change keys, peers, users and configuration; take backups', roles: ['admin'] },
  auditor: { summary: 'read and export the audit trail; review break-glass use', roles: ['auditor'] },
} as const satisfies Record<string, { readonly summary: string; readonly roles: readonly RoleName[] }>;

export type PermissionName = keyof typeof Permission;

/** Whether `role` (undefined = signed out) may use a route of `permission`. */
export function permits(permission: PermissionName, role: RoleName | undefined): boolean {
  if (permission === 'public') return true;
  if (role === undefined) return false;
  return (Permission[permission].roles as readonly RoleName[]).includes(role);
}

/** Who is calling: the signed-in user on the admin listener; the console's root on the control socket. */
export interface Caller {
  /** `anonymous`: a public route on the admin listener, signed out. */
  readonly kind: 'user' | 'console' | 'anonymous';
  /** User name; `root` for the console; empty when anonymous. */
  readonly username: string;
  /** The user's own role (absent for the console, which may do everything, and when anonymous). */
  readonly role?: RoleName;
  /** The role break-glass raised the user to, while it lasts. */
  readonly elevatedTo?: RoleName;
  /** The client's address on the admin listener. */
  readonly address?: string;
}

/**
 * The name an action is audited under: the signed-in user on the admin listener (never a name from the
 * request body, which anyone could write); on the control socket the console user `edgectl` names.
 */
export function actorOf(req: ControlRequest, claimed: unknown): string {
  if (req.caller !== undefined && req.caller.kind !== 'console') return req.caller.username;
  return typeof claimed === 'string' && claimed !== '' ? claimed.slice(0, 64) : 'local-console';
}

/** Whether the caller may use a route of `permission` (the console may use all of them). */
export function callerMay(permission: PermissionName, caller: Caller): boolean {
  if (caller.kind === 'console') return true;
  return permits(permission, caller.role) || (caller.elevatedTo !== undefined && permits(permission, caller.elevatedTo));
}

export interface ControlRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
  /** Absent on the control socket's older callers means the console. */
  readonly caller?: Caller;
  /** A cookie of the request by name (admin listener only; the single sign-on's pre-sign-in cookie). */
  readonly cookie?: (name: string) => string | undefined;
}

export interface ControlResponse {
  readonly status: number;
  readonly body: unknown;
  /** Extra response headers (the admin listener's Set-Cookie on sign-in and sign-out). */
  readonly headers?: Readonly<Record<string, string>>;
}

export type ControlHandler = (req: ControlRequest) => Promise<ControlResponse> | ControlResponse;

export interface ControlRoute {
  readonly method: 'GET' | 'POST';
  /** Exact path match (`/v1/...`; the admin listener serves it as `/api/v1/...`). */
  readonly path: string;
  readonly permission: PermissionName;
  /** Sensitive: on the admin listener the user must have proven it again (password or TOTP) within 5 min. */
  readonly stepUp?: boolean;
  /** A refresh the page polls: it never counts as user activity for the idle timeout. */
  readonly background?: boolean;
  /** Only on the admin listener (the session and sign-in routes); the control socket leaves it out. */
  readonly adminOnly?: boolean;
  readonly handle: ControlHandler;
}

/** Where something mounts its routes (the control server, the admin listener). */
export interface ControlRoutes {
  add(...routes: readonly ControlRoute[]): void;
}
