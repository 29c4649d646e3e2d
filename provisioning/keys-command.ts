// `edgectl keys reseal` (after a firmware / boot-chain change, with the recovery secret) and
// `edgectl keys rotate-data-key` (asks the running daemon to rotate online).
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { loadConfig } from '../daemon/config/index.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { resealWithRecovery } from '../daemon/security/tpm-key-source.ts';
import { DaemonNotRunningError, controlRequest } from './control-client.ts';
import { controlSocketPath } from '../daemon/admin/control-socket.ts';

export const keysHelp = `usage: edgectl keys reseal --config FILE [--recovery-secret-file FILE] [--pcrs SEL]
       edgectl keys rotate-data-key --config FILE [--json]

reseal           seals every key again under the PCR values the TPM has now, using the recovery secret
                 printed at provisioning (read from FILE, or asked for on the console). Use it after a
                 firmware or boot-chain change put edged into safe mode; restart edged afterwards.
                 --pcrs changes the PCR selection (default: the one the keys were sealed under).
rotate-data-key  asks the running edged to make a new data key, re-encrypt the store under it while
                 serving, and destroy the old key.

Exit status: 0 done, 1 failed, 2 usage error.`;

async function daemonMode(socketPath: string): Promise<'serving' | 'safe' | 'stopped'> {
  try {
    const r = await controlRequest(socketPath, 'GET', '/v1/status', undefined, 5_000);
    return (r.body as { mode?: string } | undefined)?.mode === 'safe' ? 'safe' : 'serving';
  } catch (err) {
    if (err instanceof DaemonNotRunningError) return 'stopped';
    throw err;
  }
}

export async function keysReseal(configFile: string, secretFile: string | undefined, pcrs: string | undefined): Promise<number> {
  const { config } = loadConfig(configFile);
  if (config.keys.backend !== 'tpm') {
    console.error('edgectl: keys.backend is not "tpm": nothing is sealed');
    return 1;
  }
  if ((await daemonMode(controlSocketPath(config.dataDir))) === 'serving') {
    console.error('edgectl: edged is running and serving; reseal is for a box in safe mode (or stopped)');
    return 1;
  }
  let secret: string;
  if (secretFile !== undefined) {
    secret = (await readFile(secretFile, 'utf8')).trim();
  } else {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    secret = (await rl.question('recovery secret: ')).trim();
    rl.close();
  }
  const tpm = new TpmClient({ tcti: config.keys.tpm.tcti, commandTimeoutMs: config.keys.tpm.commandTimeoutMs });
  const m = await resealWithRecovery({
    tpm,
    keysDir: join(config.dataDir, 'keys'),
    recoverySecret: secret,
    ...(pcrs === undefined ? {} : { pcrs }),
  });
  console.log(`resealed ${m.data.length + 1 + (m.tls === undefined ? 0 : 1)} key(s) under ${m.pcrs}; restart edged`);
  return 0;
}

export async function keysRotate(configFile: string, json: boolean): Promise<number> {
  const { config } = loadConfig(configFile);
  const reply = await controlRequest(controlSocketPath(config.dataDir), 'POST', '/v1/keys/rotate-data-key', {}, 600_000);
  if (json) console.log(JSON.stringify(reply.body, null, 2));
  else if (reply.status === 200) {
    const r = reply.body as { newKeyId: number; retiredKeyIds: number[]; keptKeyIds: number[]; rewritten: number; ms: number };
    console.log(
      `data key ${r.newKeyId} active; ${r.rewritten} value(s) re-encrypted in ${r.ms} ms; retired ${r.retiredKeyIds.join(', ') || 'none'}${r.keptKeyIds.length > 0 ? `; kept ${r.keptKeyIds.join(', ')} (still in use)` : ''}`,
    );
  } else {
    console.error(`edgectl: rotation failed: ${JSON.stringify(reply.body)}`);
  }
  return reply.status === 200 ? 0 : 1;
}

export { daemonMode };
