// edgectl's side of the local control API (daemon/admin/control-server.ts): JSON over the daemon's
// unix socket, with a timeout.
import http from 'node:http';

export interface ControlReply {
  readonly status: number;
  readonly body: unknown;
}

export class DaemonNotRunningError extends Error {
  constructor(socketPath: string, cause: unknown) {
    super(`cannot reach the daemon at ${socketPath}: is edged running?`, { cause });
  }
}

export function controlRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`the daemon did not answer ${method} ${path} within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new DaemonNotRunningError(socketPath, err));
      else reject(err);
    });
    req.end(payload);
  });
}
