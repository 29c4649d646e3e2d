// Keys that cannot be unsealed (boot chain changed, TPM missing or locked out): no listener starts. The
// box serves only `GET /v1/status` on the control socket with the reason and the way back, and keeps
// the watchdog fed; the safe-mode event is kept for the audit chain of the next normal start.
import type { Logger } from '../core/log.ts';
import type { EdgeConfig } from '../config/index.ts';
import { recordSafeModeEvent, safeModeCodes } from '../security/tpm-safe-mode.ts';
import { safeModeControl } from './control.ts';
import { startWatchdog } from './health.ts';

/** Whether a failed start with this code leaves the box in safe mode rather than exiting. */
export function isSafeModeCause(config: EdgeConfig, code: string): boolean {
  return config.keys.backend === 'tpm' && safeModeCodes.has(code);
}

export async function startSafeMode(config: EdgeConfig, log: Logger, code: string, message: string): Promise<{ stop(): Promise<void> }> {
  const since = Date.now();
  try {
    recordSafeModeEvent(config.dataDir, { at: since, code, message });
  } catch (err) {
    log.error('edged.safe-mode-record-failed', { error: (err as Error).message });
  }
  const control = safeModeControl(config.dataDir, log, {
    site: config.site.name,
    pid: process.pid,
    mode: 'safe',
    keysBackend: config.keys.backend,
    since,
    reason: { code, message },
    recovery: 'see docs/provisioning.md: edgectl keys reseal with the recovery secret, then restart edged',
  });
  await control.start();
  log.error('edged.safe-mode', { code, error: message });
  const watchdog = startWatchdog(config.dataDir, log);
  return {
    async stop() {
      watchdog?.stop();
      await control.stop();
    },
  };
}
