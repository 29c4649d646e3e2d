// Safe mode's memory. When the keys cannot be unsealed the encrypted audit chain cannot be opened, so
// the reason is appended to a small plain file in the data directory (codes and words only, never
// patient data) and moved into the audit chain at the next start that unseals the keys.
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface SafeModeEvent {
  readonly at: number;
  readonly code: string;
  readonly message: string;
}

/** Error codes that put the daemon into safe mode instead of serving (keys.backend "tpm"). */
export const safeModeCodes: ReadonlySet<string> = new Set([
  'EDGE_TPM_UNAVAILABLE',
  'EDGE_TPM_COMMAND_FAILED',
  'EDGE_TPM_TIMEOUT',
  'EDGE_TPM_POLICY_MISMATCH',
  'EDGE_TPM_LOCKOUT',
  'EDGE_TPM_OBJECT_MISSING',
  'EDGE_KEYS_UNAVAILABLE',
]);

function path(dataDir: string): string {
  return join(dataDir, 'safe-mode-events.jsonl');
}

export function recordSafeModeEvent(dataDir: string, event: SafeModeEvent): void {
  appendFileSync(path(dataDir), `${JSON.stringify(event)}\n`, { mode: 0o600 });
}

/** Events recorded while in safe mode, removed from the file (call once the audit chain is open). */
export function takeSafeModeEvents(dataDir: string): SafeModeEvent[] {
  let text: string;
  try {
    text = readFileSync(path(dataDir), 'utf8');
  } catch {
    return [];
  }
  rmSync(path(dataDir), { force: true });
  const out: SafeModeEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as SafeModeEvent);
    } catch {
      out.push({ at: Date.now(), code: 'unreadable', message: 'a safe-mode record could not be read' });
    }
  }
  return out;
}
