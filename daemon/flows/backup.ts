// Backup and restore as the running box sees them: `POST /v1/backup` (edgectl backup while edged runs)
// and the audit record of a restore, which `edgectl restore` leaves as a marker file because the
// restored chain is only opened by the next start.
import { readFileSync, rmSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { ControlRoute } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { EdgeConfig } from '../config/index.ts';
import { escrow, type RecoveryPublic } from '../security/tpm-recovery.ts';
import { backupFiles, recoveryPublicOf, restoreMarkerPath, type BackupResult, type RestoreMarker } from '../store/backup.ts';
import type { RecoveryWrap } from '../store/backup-format.ts';
import type { Store } from '../store/index.ts';

/** Moves a pending restore marker into the audit chain (Import, 110107). */
export function recordRestore(dataDir: string, audit: AuditSink, box: AuditParticipant, logger: Logger): void {
  const path = restoreMarkerPath(dataDir);
  let m: RestoreMarker;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as RestoreMarker;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn('backup.restore-marker-unreadable', { error: (err as Error).message });
    return;
  }
  audit.record({
    eventId: 'Import',
    type: 'backup.restored',
    action: 'C',
    outcome: 0,
    at: m.at,
    participants: [box],
    detail: `backup of ${m.site} made ${new Date(m.backupCreatedAt).toISOString()}: ${m.records} record(s), ${m.files} file(s), sha256 ${m.sha256.slice(0, 16)}…; opened with ${m.via}`,
  });
  rmSync(path, { force: true });
}

export interface BackupDeps {
  readonly config: EdgeConfig;
  readonly configFile: string | undefined;
  readonly store: Store;
  readonly keysBackend: string;
  readonly audit: AuditSink;
  readonly box: AuditParticipant;
  readonly logger: Logger;
}

/** Escrows a backup's content key to the box's recovery public key (TPM backend). */
export function recoveryEscrow(dataDir: string): ((cek: Buffer) => RecoveryWrap) | undefined {
  const recovery = recoveryPublicOf(dataDir);
  return recovery === undefined ? undefined : (cek) => ({ recovery, envelope: escrow(recovery as RecoveryPublic, 'backup', cek) });
}

export function backupRoute(d: BackupDeps): ControlRoute {
  let busy = false;
  const handle: ControlRoute['handle'] = async (req) => {
    const out = (req.body as { out?: unknown } | undefined)?.out;
    if (typeof out !== 'string' || !isAbsolute(out))
      throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'body must be {"out": "/absolute/path"}');
    if (busy) throw new EdgeError('EDGE_STORE_WRITE_FAILED', 'a backup is already running');
    busy = true;
    try {
      // Everything acknowledged so far is in the snapshot the iterator reads.
      await d.store.flush();
      const esc = recoveryEscrow(d.config.dataDir);
      const result: BackupResult = await d.store.writeBackup(out, {
        site: d.config.site.name,
        keysBackend: d.keysBackend,
        files: await backupFiles(d.config.dataDir, d.config.dicom.storage.spool.directory, d.configFile),
        configName: 'config.json',
        auditLastSeq: d.store.audit.durableSeq,
        ...(esc === undefined ? {} : { escrow: esc }),
      });
      d.audit.record({
        eventId: 'Export',
        type: 'backup.exported',
        action: 'R',
        outcome: 0,
        at: Date.now(),
        participants: [d.box],
        detail: `${result.records} record(s), ${result.files} file(s), ${result.bytes} bytes, sha256 ${result.sha256.slice(0, 16)}…, audit through seq ${result.auditLastSeq}`,
      });
      d.logger.info('backup.exported', { records: result.records, files: result.files, bytes: result.bytes, ms: result.ms });
      return { status: 200, body: result };
    } catch (err) {
      d.audit.record({
        eventId: 'Export',
        type: 'backup.export-failed',
        action: 'R',
        outcome: 8,
        at: Date.now(),
        participants: [d.box],
        detail: isEdgeError(err) ? err.code : ((err as NodeJS.ErrnoException).code ?? 'unexpected'),
      });
      throw err;
    } finally {
      busy = false;
    }
  };
  return { method: 'POST', path: '/v1/backup', permission: 'admin', stepUp: true, handle };
}
