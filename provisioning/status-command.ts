// `edgectl status --config FILE`: what the running daemon says about itself, over the control socket.
import { join } from 'node:path';
import { loadConfig } from '../daemon/config/index.ts';
import { controlRequest } from './control-client.ts';

export const statusHelp = `usage: edgectl status --config FILE [--json]

Asks the running daemon (through its control socket in the data directory) for its status.

Exit status: 0 the daemon answered, 1 it is not running or did not answer, 2 usage error.`;

export async function status(configFile: string, json: boolean): Promise<number> {
  const { config } = loadConfig(configFile);
  const reply = await controlRequest(join(config.dataDir, 'control.sock'), 'GET', '/v1/status', undefined, 10_000);
  if (json) console.log(JSON.stringify(reply.body, null, 2));
  else for (const [k, v] of Object.entries(reply.body as Record<string, unknown>)) console.log(`${k.padEnd(12)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return reply.status === 200 ? 0 : 1;
}
