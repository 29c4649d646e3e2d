// `edgectl backup` and `edgectl restore`. A backup of a running edged is taken by edged itself
// (POST /v1/backup: one database snapshot while it keeps serving); of a stopped box, by edgectl opening
// the store. A restore needs edged stopped; it restores into a staging directory beside the data
// directory, verifies it there, and only then swaps it in (the old data directory is kept aside).
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { auditEvent } from '../daemon/core/audit-event-builders.ts';
import { isEdgeError } from '../daemon/core/errors.ts';
import type { KeySource } from '../daemon/core/keys.ts';
import type { Logger } from '../daemon/core/log.ts';
import { checkConfig, formatIssue, loadConfig, type EdgeConfig } from '../daemon/config/index.ts';
import { createJsonLogger } from '../daemon/observability/json-logger.ts';
import { FileKeySource } from '../daemon/security/file-key-source.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { TpmKeySource, resealWithRecovery } from '../daemon/security/tpm-key-source.ts';
import { RecoveryOpener, escrow, type RecoveryPublic } from '../daemon/security/tpm-recovery.ts';
import {
  backupFiles,
  openBackup,
  recoveryPublicOf,
  restoreMarkerPath,
  unwrapForBox,
  verifyStore,
  type BackupResult,
  type RestoreMarker,
} from '../daemon/store/backup.ts';
import { openDatabase } from '../daemon/store/database.ts';
import { openStore } from '../daemon/store/index.ts';
import { DaemonNotRunningError, controlRequest } from './control-client.ts';
import { writeAtomically } from './peer-command.ts';
import { CONTROL_SOCKET_NAME, controlSocketPath } from '../daemon/admin/control-socket.ts';

export const backupHelp = `usage: edgectl backup --config FILE --out FILE [--json]
       edgectl restore --config FILE --in FILE [--recovery-secret-file FILE] [--keep-config] [--json]

backup   writes an encrypted (AES-256-GCM, chunked), integrity-checked snapshot of the store, the config,
         the sealed-key manifest (keys.backend tpm) and spool files to --out (mode 0600, never overwritten).
         With edged running, edged takes the snapshot while it keeps serving; otherwise edgectl does.
         The backup opens only with this box's keys, or (tpm) with the recovery secret.
restore  edged must be stopped. Restores the backup into a staging directory, verifies it (every value
         opens with the keys the box will use, the audit chain is whole), then swaps it in; the previous
         data directory is kept as <dataDir>.pre-restore-<time>. The backed-up config replaces FILE
         (previous kept as FILE.bak) unless --keep-config. --recovery-secret-file: open the backup with the
         recovery secret printed at provisioning and seal its keys into this box's TPM (replacement box).

Exit status: 0 done, 1 refused or failed (nothing changed), 2 usage error.`;

function usage(message: string): number {
  console.error(`edgectl: ${message}\nRun 'edgectl backup --help' for usage.`);
  return 2;
}

function cliLogger(): Logger {
  return createJsonLogger(process.stderr, 'error', { service: 'edgectl' });
}

function keySourceOf(config: EdgeConfig, keysDir: string, logger: Logger): KeySource {
  if (config.keys.backend === 'file') return new FileKeySource(config.keys.file.path);
  const tpm = new TpmClient({ tcti: config.keys.tpm.tcti, commandTimeoutMs: config.keys.tpm.commandTimeoutMs });
  return new TpmKeySource({ tpm, keysDir, logger });
}

function fail(err: unknown): number {
  const code = isEdgeError(err) ? err.code : ((err as NodeJS.ErrnoException).code ?? 'error');
  console.error(`edgectl: ${code}: ${(err as Error).message}`);
  return 1;
}

function report(what: string, r: BackupResult, json: boolean): void {
  if (json) console.log(JSON.stringify(r, null, 2));
  else console.log(`${what} ${r.path}: ${r.records} record(s), ${r.files} file(s), ${r.bytes} bytes in ${r.ms} ms; sha256 ${r.sha256}`);
}

export async function backupCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help === true) return (console.log(backupHelp), 0);
  if (values.config === undefined || values.out === undefined) return usage('backup needs --config FILE and --out FILE');
  const configFile = resolve(values.config);
  const out = resolve(values.out);
  try {
    const { config } = loadConfig(configFile);
    let reply;
    try {
      reply = await controlRequest(controlSocketPath(config.dataDir), 'POST', '/v1/backup', { out }, 600_000);
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError)) throw err;
      reply = undefined;
    }
    if (reply !== undefined) {
      if (reply.status !== 200) {
        const e = (reply.body as { error?: { code: string; message: string } } | undefined)?.error;
        console.error(`edgectl: edged refused the backup: ${e?.code ?? reply.status}: ${e?.message ?? ''}`);
        return 1;
      }
      report('edged wrote', reply.body as BackupResult, values.json === true);
      return 0;
    }
    // edged is stopped: open the store here (its lock keeps a starting edged out meanwhile).
    const logger = cliLogger();
    const store = await openStore({
      dataDir: config.dataDir,
      keySource: keySourceOf(config, join(config.dataDir, 'keys'), logger),
      replayWindowMs: config.hl7.replayWindowHours * 3_600_000,
      logger,
      environment: config.site.environment,
    });
    try {
      const recovery = recoveryPublicOf(config.dataDir);
      const r = await store.writeBackup(out, {
        site: config.site.name,
        keysBackend: config.keys.backend,
        files: await backupFiles(config.dataDir, config.dicom.storage.spool.directory, configFile),
        configName: 'config.json',
        auditLastSeq: store.audit.lastSeq,
        ...(recovery === undefined
          ? {}
          : { escrow: (cek: Buffer) => ({ recovery, envelope: escrow(recovery as RecoveryPublic, 'backup', cek) }) }),
      });
      // The same event edged records (main-backup.ts), written into the chain after the snapshot.
      store.audit.record(
        auditEvent('backup.exported', {
          at: Date.now(),
          participants: [{ kind: 'system', id: config.site.name, requestor: false }],
          detail: `${r.records} record(s), ${r.files} file(s), ${r.bytes} bytes, sha256 ${r.sha256.slice(0, 16)}…, audit through seq ${r.auditLastSeq} (edgectl, edged stopped)`,
        }),
      );
      report('wrote', r, values.json === true);
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return fail(err);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function restoreCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        in: { type: 'string' },
        'recovery-secret-file': { type: 'string' },
        'keep-config': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help === true) return (console.log(backupHelp), 0);
  if (values.config === undefined || values.in === undefined) return usage('restore needs --config FILE and --in FILE');
  const configFile = resolve(values.config);
  const logger = cliLogger();
  let staging: string | undefined;
  try {
    const { config } = loadConfig(configFile);
    const dataDir = config.dataDir;
    // Refuse while edged runs: its control socket answers, or the database lock is held.
    try {
      await controlRequest(controlSocketPath(dataDir), 'GET', '/v1/status', undefined, 5_000);
      console.error('edgectl: EDGE_BACKUP_DAEMON_RUNNING: edged is running on this data directory; stop it first (systemctl stop edged)');
      return 1;
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError)) throw err;
    }
    if (await exists(join(dataDir, 'db'))) {
      const probe = await openDatabase(dataDir).catch((err: unknown) => {
        if (isEdgeError(err, 'EDGE_STORE_LOCKED')) return 'locked' as const;
        return undefined; // a damaged old database is what a restore replaces
      });
      if (probe === 'locked') {
        console.error('edgectl: EDGE_BACKUP_DAEMON_RUNNING: the data directory is locked by another process (edged?); stop it first');
        return 1;
      }
      await probe?.close();
    }

    const backup = await openBackup(resolve(values.in));
    try {
      const recoverySecret =
        values['recovery-secret-file'] === undefined ? undefined : (await readFile(values['recovery-secret-file'], 'utf8')).trim();
      if (recoverySecret !== undefined && config.keys.backend !== 'tpm') {
        console.error('edgectl: --recovery-secret-file needs keys.backend "tpm" (a file-backend box restores with its key file)');
        return 1;
      }
      staging = `${dataDir}.restore-${process.pid}`;
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { recursive: true, mode: 0o700 });
      const spoolDir = config.dicom.storage.spool.directory;
      let cek: Buffer;
      if (recoverySecret !== undefined) {
        const wrap = backup.header.wraps.recovery;
        if (wrap === undefined) {
          console.error('edgectl: EDGE_BACKUP_KEY_MISMATCH: this backup carries no recovery escrow (made on a file-backend box)');
          return 1;
        }
        cek = new RecoveryOpener(recoverySecret, wrap.recovery).open('backup', wrap.envelope);
      } else {
        // This box's keys as they are now (the TPM manifest stays with the box, not the backup's).
        if (await exists(join(dataDir, 'keys'))) await cp(join(dataDir, 'keys'), join(staging, 'keys'), { recursive: true });
        const ring = await keySourceOf(config, join(staging, 'keys'), logger).load();
        try {
          cek = unwrapForBox(ring.indexKey, backup.header.wraps.box);
        } finally {
          ring.destroy();
        }
      }
      const restoreDir = join(staging, '.restore');
      const result = await backup.restoreInto(
        {
          stagingDir: staging,
          placeFile: (name) => {
            if (name === 'config.json') return join(restoreDir, 'config.json');
            if (name === 'keys/keyring.json') return recoverySecret === undefined ? undefined : join(staging!, 'keys', 'keyring.json');
            if (name.startsWith('spool/')) return spoolDir === undefined ? join(staging!, name) : join(restoreDir, name);
            return undefined;
          },
        },
        cek,
      );
      cek.fill(0);

      if (recoverySecret !== undefined) {
        if (config.keys.backend !== 'tpm') throw new Error('unreachable');
        const tpm = new TpmClient({ tcti: config.keys.tpm.tcti, commandTimeoutMs: config.keys.tpm.commandTimeoutMs });
        await resealWithRecovery({ tpm, keysDir: join(staging, 'keys'), recoverySecret });
      }
      const ring = await keySourceOf(config, join(staging, 'keys'), logger).load();
      let verified;
      try {
        verified = await verifyStore(staging, ring, logger);
      } finally {
        ring.destroy();
      }

      // Verified: swap it in. Keep what the box had, in case.
      let kept: string | undefined;
      if (await exists(dataDir)) {
        for (const f of await readdir(dataDir)) {
          if (['db', 'spool', 'keys', CONTROL_SOCKET_NAME, 'restored.json'].includes(f)) continue;
          await cp(join(dataDir, f), join(staging, f), { recursive: true });
        }
        kept = `${dataDir}.pre-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await rename(dataDir, kept);
      }
      const configText = await readFile(join(restoreDir, 'config.json'), 'utf8').catch(() => undefined);
      if (spoolDir !== undefined && (await exists(join(restoreDir, 'spool')))) {
        await mkdir(spoolDir, { recursive: true, mode: 0o700 });
        for (const f of await readdir(join(restoreDir, 'spool'))) await rename(join(restoreDir, 'spool', f), join(spoolDir, f));
      }
      await rm(restoreDir, { recursive: true, force: true });
      await rename(staging, dataDir);
      staging = undefined;
      const marker: RestoreMarker = {
        at: Date.now(),
        backupCreatedAt: backup.header.createdAt,
        site: backup.header.site,
        records: result.manifest.records,
        files: result.manifest.files,
        sha256: result.manifest.sha256,
        via: recoverySecret === undefined ? 'box-keys' : 'recovery-secret',
      };
      await writeFile(restoreMarkerPath(dataDir), JSON.stringify(marker), { mode: 0o600 });

      let configNote = 'config kept (--keep-config)';
      if (values['keep-config'] !== true && configText !== undefined) {
        const checked = checkConfig(JSON.parse(configText) as unknown, { baseDir: dirname(configFile) });
        if (checked.config === undefined) {
          await writeFile(join(dataDir, 'config-from-backup.json'), configText, { mode: 0o600 });
          configNote = `the backed-up config does not check on this box; kept ${basename(configFile)}, saved it as ${join(dataDir, 'config-from-backup.json')}`;
          for (const i of checked.issues) console.error(`  ${formatIssue(i)}`);
        } else if (configText !== (await readFile(configFile, 'utf8'))) {
          await writeAtomically(configFile, configText);
          configNote = `config restored to ${configFile} (previous in ${basename(configFile)}.bak)`;
        } else {
          configNote = 'config unchanged';
        }
      }
      const summary = { ...result.manifest, verified, keptDataDir: kept, config: configNote };
      if (values.json === true) console.log(JSON.stringify(summary, null, 2));
      else {
        console.log(`restored ${result.manifest.records} record(s) and ${result.files.length} file(s) into ${dataDir}`);
        console.log(
          `verified: ${verified.values} value(s) open, audit chain whole (${verified.auditRecords} record(s) through seq ${verified.auditLastSeq})`,
        );
        if (kept !== undefined) console.log(`previous data directory kept as ${kept}`);
        console.log(configNote);
        console.log('start edged now');
      }
      return 0;
    } finally {
      await backup.close();
    }
  } catch (err) {
    return fail(err);
  } finally {
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
  }
}
