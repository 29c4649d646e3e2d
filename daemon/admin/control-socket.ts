// Where the local control API listens: a unix socket in the data directory (the daemon and `edgectl`
// both find it here; a backup leaves it out).
import { join } from 'node:path';

export const CONTROL_SOCKET_NAME = 'control.sock';

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET_NAME);
}
