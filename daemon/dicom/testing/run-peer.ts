// Test support: run a DCMTK/openssl peer with a timeout, capturing its output.
import { execFile } from 'node:child_process';

export interface PeerResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runPeer(command: string, args: readonly string[], timeoutMs = 20_000): Promise<PeerResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      // DCMTK waits ~40 ms per small write without TCP_NODELAY (Nagle + delayed ACK).
      { timeout: timeoutMs, env: { ...process.env, TCP_NODELAY: '1' }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}
