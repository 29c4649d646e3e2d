// `edgectl user add|list|disable|enable|unlock|reset-mfa|set-role --config FILE`: local accounts of the
// admin listener, through the running daemon's control socket (local root only; the CLI never opens
// the store itself). `add` prints the one-time password once; it must be changed at the first sign-in,
// where TOTP enrolment is asked too. Every change is audited by the daemon with the console user's name.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { daemonCall } from './daemon-call.ts';

export const userHelp = `usage: edgectl user <action> --config FILE [options]

Local accounts of the admin listener (docs/access-control.md), through the running daemon.

  list [--json]                                 every account: role, state, MFA, last sign-in
  add NAME --role ROLE [--display-name TEXT]    a new account; prints its one-time password once
  disable NAME | enable NAME                    stop (and sign out) / allow an account
  unlock NAME                                   lift the lockout after failed sign-ins
  reset-mfa NAME                                remove its TOTP and recovery codes; enrolment is asked at
                                                the next sign-in
  set-role NAME --role ROLE                     viewer, operator, admin or auditor (signs the user out)

Exit status: 0 done, 1 the daemon refused or is not running, 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl user --help' for usage.");
  return 2;
}

const ACTIONS = ['list', 'add', 'disable', 'enable', 'unlock', 'reset-mfa', 'set-role'] as const;

export async function userCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        role: { type: 'string' },
        'display-name': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(userHelp);
    return 0;
  }
  const action = positionals[0] as (typeof ACTIONS)[number] | undefined;
  if (action === undefined) return usage(`user needs an action: ${ACTIONS.join(', ')}`);
  if (!ACTIONS.includes(action)) return usage(`unknown user action "${action}"`);
  if (values.config === undefined) return usage(`user ${action} needs --config FILE`);
  const name = positionals[1];
  if (action !== 'list' && name === undefined) return usage(`user ${action} needs a user NAME`);
  if ((action === 'add' || action === 'set-role') && values.role === undefined) return usage(`user ${action} needs --role ROLE`);
  const consoleUser = userInfo().username;
  const call = daemonCall(values.config, 30_000);

  if (action === 'list') {
    const r = await call('GET', '/v1/users');
    if (r.status !== 200) return 1;
    if (values.json === true) {
      console.log(JSON.stringify(r.body, null, 2));
      return 0;
    }
    for (const u of r.body.users as Record<string, unknown>[]) {
      console.log(
        `${String(u['username']).padEnd(20)} ${String(u['role']).padEnd(9)} ${String(u['state']).padEnd(9)} mfa ${String(u['mfa']).padEnd(18)} last sign-in ${String(u['lastLoginAt'] ?? '-')}`,
      );
    }
    return 0;
  }
  const body: Record<string, unknown> = { username: name, consoleUser };
  if (values.role !== undefined) body['role'] = values.role;
  if (values['display-name'] !== undefined) body['displayName'] = values['display-name'];
  const r = await call('POST', `/v1/users/${action}`, body);
  if (r.status !== 200) return 1;
  if (values.json === true) {
    console.log(JSON.stringify(r.body, null, 2));
    return 0;
  }
  const u = r.body.user as Record<string, unknown>;
  console.log(`${String(u['username'])}: role ${String(u['role'])}, ${String(u['state'])}, mfa ${String(u['mfa'])}`);
  if (action === 'add') {
    console.log(`one-time password (shown once; must be changed at the first sign-in): ${String(r.body.oneTimePassword)}`);
  }
  return 0;
}
