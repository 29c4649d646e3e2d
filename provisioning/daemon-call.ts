// How an edgectl command asks the running daemon: the control socket of the config's data directory,
// one request per call, and a refusal printed once as `edgectl: CODE: message` (the reason names the
// field or peer at fault) for the command to turn into exit status 1.
import { loadConfig } from '../daemon/config/index.ts';
import { controlSocketPath } from '../daemon/admin/control-socket.ts';
import { controlRequest } from './control-client.ts';

export interface DaemonReply {
  readonly status: number;
  readonly body: any;
}

export type DaemonCall = (method: string, path: string, body?: unknown) => Promise<DaemonReply>;

export function daemonCall(configFile: string, timeoutMs: number): DaemonCall {
  const { config } = loadConfig(configFile);
  const socket = controlSocketPath(config.dataDir);
  return async (method, path, body) => {
    const reply = await controlRequest(socket, method, path, body, timeoutMs);
    if (reply.status !== 200) {
      const e = (reply.body as { error?: { code?: string; message?: string } } | undefined)?.error;
      console.error(`edgectl: ${e?.code ?? reply.status}: ${e?.message ?? 'request failed'}`);
    }
    return reply as DaemonReply;
  };
}
