// `edgectl status --config FILE`: what the running daemon says about itself, over the control socket.
import { loadConfig } from '../daemon/config/index.ts';
import { controlRequest } from './control-client.ts';
import { controlSocketPath } from '../daemon/admin/control-socket.ts';

export const statusHelp = `usage: edgectl status --config FILE [--json]

Asks the running daemon (through its control socket in the data directory) for its status.

Exit status: 0 the daemon answered, 1 it is not running or did not answer, 2 usage error.`;

export async function status(configFile: string, json: boolean): Promise<number> {
  const { config } = loadConfig(configFile);
  const reply = await controlRequest(controlSocketPath(config.dataDir), 'GET', '/v1/status', undefined, 10_000);
  if (json) console.log(JSON.stringify(reply.body, null, 2));
  else {
    // Nobody should act on a test or training box believing it holds real patients' work.
    const environment = (reply.body as { environment?: string }).environment;
    if (environment !== undefined && environment !== 'production')
      console.log(`*** ${environment.toUpperCase()} BOX: not for patient care ***`);
    for (const [k, v] of Object.entries(reply.body as Record<string, unknown>)) {
      if (k !== 'services') console.log(`${k.padEnd(12)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
    // One line per part of the box, in start order: what the operator looks at first when something is off.
    const services = (reply.body as { services?: { name: string; state: string; status: string; detail?: string }[] }).services ?? [];
    for (const s of services)
      console.log(`service      ${s.name.padEnd(22)} ${s.state.padEnd(8)} ${s.status}${s.detail === undefined ? '' : ` (${s.detail})`}`);
  }
  return reply.status === 200 ? 0 : 1;
}
