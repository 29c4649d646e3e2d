// The box's keys as the running process sees them: which key source the config names (TPM, or a file
// for development), the alarms about them at start, and online data-key rotation (`edgectl keys
// rotate-data-key`).
import { join } from 'node:path';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { EdgeConfig } from '../config/index.ts';
import { FileKeySource } from '../security/file-key-source.ts';
import { TpmClient } from '../security/tpm-client.ts';
import { TpmKeySource } from '../security/tpm-key-source.ts';
import { takeSafeModeEvents } from '../security/tpm-safe-mode.ts';
import type { Store } from '../store/index.ts';
import { appActivity, securityAlert } from '../core/audit-event-builders.ts';

export function keySourceFor(config: EdgeConfig, logger: Logger): KeySource {
  if (config.keys.backend === 'file') {
    logger.warn('keys.development-backend', {
      message: 'keys.backend is "file": the data key is NOT sealed by a TPM. For development only.',
    });
    return new FileKeySource(config.keys.file.path);
  }
  const tpm = new TpmClient({
    tcti: config.keys.tpm.tcti,
    commandTimeoutMs: config.keys.tpm.commandTimeoutMs,
    logger: logger.child({ component: 'tpm' }),
  });
  return new TpmKeySource({ tpm, keysDir: join(config.dataDir, 'keys'), logger: logger.child({ component: 'keys' }) });
}

/** What the chain must say about the keys once it is open: a development backend, core dumps, past safe modes. */
export function recordKeyAlarms(
  dataDir: string,
  keySource: KeySource,
  coreLimitBy: string | undefined,
  audit: AuditSink,
  box: AuditParticipant,
): void {
  if (keySource.backend === 'file') {
    audit.record(securityAlert('keys.development-backend', [box], 'keys.backend is file: data key not sealed by a TPM'));
  }
  if (coreLimitBy === 'edged')
    audit.record(
      securityAlert(
        'process.core-dumps-were-enabled',
        [box],
        'started with core dumps enabled (not by bin/edged or the unit); edged set its core limit to 0',
      ),
    );
  for (const e of takeSafeModeEvents(dataDir))
    audit.record({ ...securityAlert('keys.safe-mode', [box], `${e.code}: ${e.message}`), at: e.at });
}

/** Online data-key rotation, asked for by `edgectl keys rotate-data-key`. */
export function keyRotationRoute(
  store: Store,
  keySource: KeySource,
  audit: AuditSink,
  box: AuditParticipant,
  logger: Logger,
): ControlRoute {
  return {
    method: 'POST',
    path: '/v1/keys/rotate-data-key',
    permission: 'admin',
    stepUp: true,
    handle: async () => {
      if (keySource.rotation === undefined) {
        throw new EdgeError('EDGE_KEYS_ROTATION_UNSUPPORTED', `keys.backend "${keySource.backend}" cannot rotate the data key`);
      }
      try {
        const result = await store.rotateDataKey(keySource.rotation, {
          onStarted: (keyIds) => logger.info('keys.rotation-started', { keyIds: keyIds.join(',') }),
          onProgress: (p) => {
            if (p.rewritten % 20_000 < 2_000) logger.info('keys.rotation-progress', { ...p });
          },
        });
        logger.info('keys.rotation-finished', {
          ...result,
          retiredKeyIds: result.retiredKeyIds.join(','),
          keptKeyIds: result.keptKeyIds.join(','),
        });
        audit.record({
          ...appActivity('keys.data-key-rotated', [box]),
          detail: `new key id ${result.newKeyId}; retired ${result.retiredKeyIds.join(',') || 'none'}; ${result.rewritten} value(s) re-encrypted`,
        });
        return { status: 200, body: result };
      } catch (err) {
        audit.record(securityAlert('keys.data-key-rotation-failed', [box], isEdgeError(err) ? err.code : 'unexpected'));
        throw err;
      }
    },
  };
}
