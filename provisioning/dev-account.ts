// `edgectl dev-account --dir DIR`: the development site's account for the admin page, so `make run`
// can say how to sign in. An admin named `dev` with a random password kept in DIR/admin-dev-password
// (mode 0600); no forced change and no second factor: a development box only (keys.backend file).
// Idempotent: once the password file exists nothing is done. The daemon must not be running (the
// store is opened here).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../daemon/core/log.ts';
import { hashPassword } from '../daemon/core/password-hash.ts';
import { FileKeySource } from '../daemon/security/file-key-source.ts';
import { openStore } from '../daemon/store/index.ts';

export const DEV_ACCOUNT = 'dev';
export const DEV_PASSWORD_FILE = 'admin-dev-password';

export const devAccountHelp = `usage: edgectl dev-account --dir DIR

Creates the development site's admin page account "${DEV_ACCOUNT}" (role admin) with a random password
in DIR/${DEV_PASSWORD_FILE}. Development sites only; edged must be stopped.`;

export async function ensureDevAccount(dir: string): Promise<{ created: boolean; passwordFile: string }> {
  const passwordFile = join(dir, DEV_PASSWORD_FILE);
  if (existsSync(passwordFile)) return { created: false, passwordFile };
  const site = JSON.parse(await readFile(join(dir, 'site.json'), 'utf8')) as { dataKeyFile: string; configFile: string };
  const config = JSON.parse(await readFile(site.configFile, 'utf8')) as { dataDir: string };
  const store = await openStore({
    dataDir: join(dir, config.dataDir),
    keySource: new FileKeySource(site.dataKeyFile),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  try {
    const password = randomBytes(12).toString('base64url');
    const hash = await hashPassword(password);
    // An account left from an earlier run whose password file was removed gets the new password.
    const updated = await store.users.update(DEV_ACCOUNT, (u) => ({ ...u, password: hash, mustChange: false, state: 'active' }));
    if (updated === undefined) {
      await store.users.create({
        username: DEV_ACCOUNT,
        displayName: 'Development account',
        role: 'admin',
        state: 'active',
        password: hash,
        mustChange: false,
        createdAt: Date.now(),
        sessionEpoch: 0,
      });
    }
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
  } finally {
    await store.close();
  }
  return { created: true, passwordFile };
}
