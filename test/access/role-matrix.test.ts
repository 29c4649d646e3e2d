// The role × route matrix against the live daemon: every API route the listener mounts (read from the
// listener itself) is called by a signed-out client and by a user of each role, and each gets exactly
// what the one permission table (core/control-route.ts) says. The routes and the permission table are
// also what docs/access-control.md lists: a mounted route missing from the page, a listed route that is
// not mounted, or a different permission, step-up or background flag fails here.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Permission, RoleNames, permits, type PermissionName, type RoleName } from '../../daemon/core/control-route.ts';
import { AdminClient } from '../support/admin-client.ts';
import { userWithRole, type SignedInUser } from '../support/access.ts';
import { Daemon, createSite } from '../support/site.ts';

const DENIED = new Set(['EDGE_ACCESS_UNAUTHENTICATED', 'EDGE_ACCESS_FORBIDDEN', 'EDGE_ACCESS_SIGN_IN_INCOMPLETE']);

interface RouteRow {
  readonly method: string;
  readonly path: string;
  readonly permission: string;
  readonly stepUp: boolean;
  readonly background: boolean;
}

const doc = readFileSync(new URL('../../docs/access-control.md', import.meta.url), 'utf8');

function documentedRoutes(): RouteRow[] {
  const out: RouteRow[] = [];
  for (const line of doc.split('\n')) {
    const m = /^\| `(GET|POST) (\/api\/v1\/[^`]*)` \| `([a-z-]+)` \| ([^|]*) \| ([^|]*) \|/.exec(line);
    if (m === null) continue;
    out.push({ method: m[1]!, path: m[2]!, permission: m[3]!, stepUp: m[4]!.trim() === 'yes', background: m[5]!.trim() === 'yes' });
  }
  return out;
}

test('the page lists the permission table as core has it', (t) => {
  for (const [name, spec] of Object.entries(Permission)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    t.truthy(row, `docs/access-control.md has a row for the ${name} permission`);
    const cells = row!
      .split('|')
      .slice(2, 2 + RoleNames.length)
      .map((c) => c.trim());
    t.deepEqual(
      cells.map((c) => c === '✓'),
      RoleNames.map((r) => (spec.roles as readonly RoleName[]).includes(r)),
      `${name}: roles`,
    );
  }
});

test('every role and the signed-out client get exactly what the permission table gives, on every mounted route', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  t.teardown(async () => {
    await daemon.stop();
    await site.cleanup();
  });
  const users = new Map<RoleName, SignedInUser>();
  for (const role of RoleNames)
    users.set(role, await userWithRole(site.configFile, daemon.ports.admin, site.pki.caCert, `matrix-${role}`, role));
  const routes = (await users.get('admin')!.client.get('/api/v1/access/routes')).body.routes as RouteRow[];
  t.true(routes.length >= 30, `${routes.length} routes mounted`);

  // The page and the listener list the same routes with the same flags.
  const key = (r: RouteRow) => `${r.method} ${r.path} ${r.permission} stepUp=${r.stepUp} background=${r.background}`;
  t.deepEqual(documentedRoutes().map(key).sort(), routes.map(key).sort(), 'docs/access-control.md "Routes" table = the mounted routes');
  for (const r of routes) t.true(Object.hasOwn(Permission, r.permission), `${r.method} ${r.path}: a permission of the table`);

  const signedOut = await AdminClient.connect(daemon.ports.admin, site.pki.caCert);
  // Sign-out ends the session the rest of the matrix needs: it goes last.
  const ordered = [...routes].sort((a, b) => Number(a.path.endsWith('/sign-out')) - Number(b.path.endsWith('/sign-out')));
  const mismatches: string[] = [];
  for (const route of ordered) {
    const callers: [RoleName | undefined, AdminClient][] = [
      [undefined, signedOut],
      ...RoleNames.map((r) => [r, users.get(r)!.client] as [RoleName, AdminClient]),
    ];
    for (const [role, client] of callers) {
      // Bodies are left empty: a permitted write then fails its own validation and changes nothing.
      const r = await client.request(route.method, route.path, route.method === 'POST' ? { body: {} } : {});
      const code = (r.body as { error?: { code?: string } } | undefined)?.error?.code;
      const denied = code !== undefined && DENIED.has(code);
      const expected = permits(route.permission as PermissionName, role);
      if (r.status === 404 && code === 'EDGE_CONTROL_NOT_FOUND') mismatches.push(`${route.method} ${route.path}: not found`);
      else if (denied === expected)
        mismatches.push(
          `${route.method} ${route.path} as ${role ?? 'signed out'}: ${r.status} ${code ?? ''}, table says ${expected ? 'allowed' : 'denied'}`,
        );
      else if (denied) t.is(r.status, role === undefined ? 401 : 403, `${route.method} ${route.path} as ${role ?? 'signed out'}`);
    }
  }
  t.deepEqual(mismatches, []);
  // The refusals of signed-in users were audited.
  t.true(daemon.process.lines.some((l) => l.includes('"event":"admin.request-refused"') && l.includes('EDGE_ACCESS_FORBIDDEN')));
});
