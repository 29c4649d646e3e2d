// Test-bind every configured listener, so `edgectl config check --bind` finds a taken or foreign
// address before the daemon does. Each socket is closed again before the next is tried.
import { createServer } from 'node:net';
import type { EdgeConfig } from './edge-config-schema.ts';
import { IssueCode } from './schema-kit.ts';
import type { ConfigIssue } from './schema-kit.ts';

export interface ListenerAddress {
  readonly path: string;
  readonly host: string;
  readonly port: number;
}

export function listenersOf(config: EdgeConfig): ListenerAddress[] {
  const out: ListenerAddress[] = [{ path: 'hl7.listen', ...config.hl7.listen }];
  if (config.dicom.tls !== undefined) out.push({ path: 'dicom.tls', ...config.dicom.tls });
  if (config.dicom.plain !== undefined) out.push({ path: 'dicom.plain', ...config.dicom.plain });
  return out;
}

/** Resolves with the reason the address cannot be bound, or undefined when it can. */
export function tryBind(host: string, port: number, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    const timer = setTimeout(() => {
      server.close();
      resolve(`no answer from bind within ${timeoutMs} ms`);
    }, timeoutMs);
    server.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
    server.listen({ host, port, exclusive: true }, () => {
      clearTimeout(timer);
      server.close(() => resolve(undefined));
    });
  });
}

export async function bindCheck(config: EdgeConfig, timeoutMs = 5000): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const l of listenersOf(config)) {
    const problem = await tryBind(l.host, l.port, timeoutMs);
    if (problem !== undefined) {
      issues.push({
        severity: 'error',
        code: IssueCode.BindFailed,
        path: `${l.path}.port`,
        message: `cannot listen on ${l.host}:${l.port} (${problem})`,
      });
    }
  }
  return issues;
}
