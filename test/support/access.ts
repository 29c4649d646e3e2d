// Accounts for tests of the admin listener, made the way a field engineer makes them: `edgectl user add`
// over the control socket, then the first sign-in through the listener (one-time password, new
// password, TOTP enrolment with the secret the box shows). The test plays the authenticator app.
import { TOTP, Secret } from 'otpauth';
import { dirname, join } from 'node:path';
import { controlRequest } from '../../provisioning/control-client.ts';
import { AdminClient } from './admin-client.ts';
import { run } from './processes.ts';
import { repoRoot } from './site.ts';

export interface SignedInUser {
  readonly username: string;
  readonly role: string;
  readonly password: string;
  readonly totpSecret: string;
  readonly recoveryCodes: readonly string[];
  readonly client: AdminClient;
}

export function totpNow(secret: string, at = Date.now()): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
}

/** The code of the next 30 s step: valid now too (±1 step), and not yet used. */
export function totpNext(secret: string): string {
  return totpNow(secret, Date.now() + 30_000);
}

export async function edgectlUser(configFile: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(join(repoRoot, 'bin/edgectl'), ['user', ...args, '--config', configFile], { timeoutMs: 30_000 });
}

/**
 * A new account's one-time password. Straight over the control socket (what `edgectl user add` sends) by
 * default, which spares a process start on a busy machine; `{ cli: true }` runs `edgectl user add`.
 */
export async function addUser(configFile: string, username: string, role: string, options: { cli?: boolean } = {}): Promise<string> {
  if (options.cli !== true) {
    const socket = join(dirname(configFile), 'data', 'control.sock');
    const r = await controlRequest(socket, 'POST', '/v1/users/add', { username, role, consoleUser: 'test' }, 30_000);
    if (r.status !== 200) throw new Error(`add ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as { oneTimePassword: string }).oneTimePassword;
  }
  const r = await edgectlUser(configFile, 'add', username, '--role', role);
  if (r.code !== 0) throw new Error(`edgectl user add ${username}: ${r.stderr}${r.stdout}`);
  const m = /one-time password[^:]*: (\S+)/.exec(r.stdout);
  if (m === null) throw new Error(`no one-time password in: ${r.stdout}`);
  return m[1]!;
}

/** First sign-in to the end: one-time password → new password → TOTP enrolled → a full session. */
export async function firstSignIn(client: AdminClient, username: string, oneTimePassword: string): Promise<Omit<SignedInUser, 'role'>> {
  const expect = (what: string, r: { status: number; body: any }) => {
    if (r.status !== 200) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  expect('sign-in', await client.signIn(username, oneTimePassword));
  const password = `Zq7!vR2#pL9-${oneTimePassword.slice(0, 6)}`;
  expect('new password', await client.post('/api/v1/session/password', { currentPassword: oneTimePassword, newPassword: password }));
  const enrol = expect('enrol', await client.post('/api/v1/session/totp/enrol'));
  const confirm = expect('confirm', await client.post('/api/v1/session/totp/confirm', { code: totpNow(enrol.secret) }));
  if (confirm.stage !== 'full') throw new Error(`stage after enrolment: ${confirm.stage}`);
  return { username, password, totpSecret: enrol.secret, recoveryCodes: confirm.recoveryCodes, client };
}

export async function userWithRole(
  configFile: string,
  port: number,
  caFile: string,
  username: string,
  role: string,
  options: { cli?: boolean } = {},
): Promise<SignedInUser> {
  const otp = await addUser(configFile, username, role, options);
  const client = await AdminClient.connect(port, caFile);
  return { role, ...(await firstSignIn(client, username, otp)) };
}
