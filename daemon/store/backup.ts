// Backup and restore of the store. A backup is one pass of one LevelDB iterator (an iterator reads a
// consistent snapshot, so a running daemon keeps committing while it runs), the values copied as they
// are sealed (never decrypted), plus named files (config, key manifest, spool files), through
// backup-format.ts. A restore writes into a staging directory and verifies it there (every value opens
// with the keys the box will run with, the audit chain links from its anchor to its head and matches its
// latest checkpoint) before the caller swaps it in.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import type { DataKeyRing } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { LevelAuditLog } from './audit-log.ts';
import {
  BackupWriter,
  readBackupHeader,
  readBackupRecords,
  unwrapForBox,
  wrapForBox,
  type BackupHeader,
  type BackupManifest,
  type RecoveryWrap,
} from './backup-format.ts';
import { CommitQueue } from './commit-queue.ts';
import { type Database, openDatabase } from './database.ts';
import { ValueCodec } from './value-codec.ts';

export type { BackupHeader, BackupManifest } from './backup-format.ts';

export interface BackupSource {
  readonly db: Database;
  readonly ring: DataKeyRing;
  readonly site: string;
  readonly keysBackend: string;
  /** Files to carry, by name: `config.json`, `keys/keyring.json`, `spool/<file>`. */
  readonly files: ReadonlyArray<{ readonly name: string; readonly path: string }>;
  /** Name of the config among `files` (its hash goes into the manifest). */
  readonly configName?: string;
  readonly auditLastSeq: number;
  /** Escrows the content key to the recovery public key (TPM backend). */
  readonly escrow?: (cek: Buffer) => RecoveryWrap;
}

export interface BackupResult extends BackupManifest {
  readonly path: string;
  readonly bytes: number;
  readonly ms: number;
}

/** Writes a new backup file (mode 0600; refuses to overwrite). */
export async function writeBackup(path: string, src: BackupSource): Promise<BackupResult> {
  const started = Date.now();
  const cek = randomBytes(32);
  const header: BackupHeader = {
    version: 1,
    createdAt: Date.now(),
    site: src.site,
    keysBackend: src.keysBackend,
    keyIds: src.ring.keyIds,
    wraps: { box: wrapForBox(src.ring.indexKey, cek), ...(src.escrow === undefined ? {} : { recovery: src.escrow(cek) }) },
  };
  const fh = await open(path, 'wx', 0o600);
  let ok = false;
  try {
    const w = await BackupWriter.start(fh, header, cek);
    // One iterator = one snapshot; nextv keeps the native round trips few.
    const it = src.db.iterator();
    try {
      for (;;) {
        const entries = await it.nextv(1000);
        if (entries.length === 0) break;
        for (const [key, value] of entries) await w.dbEntry(key, value);
      }
    } finally {
      await it.close();
    }
    let configSha256: string | undefined;
    for (const f of src.files) {
      let content: Buffer;
      try {
        content = await readFile(f.path);
      } catch (err) {
        // A spool file delivered and deleted since the listing is simply no longer part of the snapshot.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && f.name.startsWith('spool/')) continue;
        throw err;
      }
      if (f.name === src.configName) configSha256 = createHash('sha256').update(content).digest('hex');
      await w.file(f.name, content);
    }
    const manifest = await w.finish({ keyIds: src.ring.keyIds, configSha256, auditLastSeq: src.auditLastSeq });
    await fh.sync();
    ok = true;
    return { ...manifest, path, bytes: (await fh.stat()).size, ms: Date.now() - started };
  } finally {
    cek.fill(0);
    await fh.close();
    if (!ok) await rm(path, { force: true });
  }
}

/** Regular files of a directory (not recursive), as backup file entries under `prefix/`. */
export async function filesIn(dir: string, prefix: string): Promise<Array<{ name: string; path: string }>> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.sort().map((name) => ({ name: `${prefix}/${name}`, path: join(dir, name) }));
}

export interface OpenedBackup {
  readonly header: BackupHeader;
  /** Unwraps the content key: with the box's index key, or through the caller's recovery path. */
  restoreInto(target: RestoreTarget, cek: Buffer): Promise<RestoreResult>;
  close(): Promise<void>;
}

export interface RestoreTarget {
  /** Empty staging data directory; the database goes to `<dir>/db`. */
  readonly stagingDir: string;
  /** Where a file record goes, or undefined to skip it. */
  readonly placeFile: (name: string) => string | undefined;
}

export interface RestoreResult {
  readonly manifest: BackupManifest;
  readonly files: readonly string[];
}

export async function openBackup(path: string): Promise<OpenedBackup> {
  const fh = await open(path, 'r').catch((cause: unknown) => {
    throw new EdgeError('EDGE_BACKUP_INVALID', `cannot read ${path}`, { cause });
  });
  try {
    const { header, headerHash, offset } = await readBackupHeader(fh);
    return {
      header,
      close: () => fh.close(),
      async restoreInto(target, cek) {
        const db = await openDatabase(target.stagingDir);
        const files: string[] = [];
        try {
          const records = readBackupRecords(fh, cek, headerHash, offset);
          let batch = db.batch();
          for (;;) {
            const next = await records.next();
            if (next.done === true) {
              await batch.write({ sync: true } as Parameters<typeof batch.write>[0]);
              return { manifest: next.value, files };
            }
            const r = next.value;
            if (r.type === 'db') {
              batch.put(r.key, r.value);
              if (batch.length >= 1000) {
                await batch.write();
                batch = db.batch();
              }
              continue;
            }
            if (r.name.includes('..') || r.name.startsWith('/'))
              throw new EdgeError('EDGE_BACKUP_INVALID', `file name ${r.name} escapes the data directory`);
            const to = target.placeFile(r.name);
            if (to === undefined) continue;
            await mkdir(join(to, '..'), { recursive: true, mode: 0o700 });
            const out = await open(to, 'w', 0o600);
            try {
              await out.writeFile(r.content);
              await out.sync();
            } finally {
              await out.close();
            }
            files.push(r.name);
          }
        } finally {
          await db.close();
        }
      },
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

export { unwrapForBox };

/** What `edgectl restore` leaves in the data directory for the next start to audit (flows/backup.ts). */
export interface RestoreMarker {
  readonly at: number;
  readonly backupCreatedAt: number;
  readonly site: string;
  readonly records: number;
  readonly files: number;
  readonly sha256: string;
  readonly via: 'box-keys' | 'recovery-secret';
}

export function restoreMarkerPath(dataDir: string): string {
  return join(dataDir, 'restored.json');
}

/** The files a backup carries beside the database: config, the sealed-key manifest (TPM), spool files. */
export async function backupFiles(
  dataDir: string,
  spoolDir: string | undefined,
  configFile: string | undefined,
): Promise<Array<{ name: string; path: string }>> {
  return [
    ...(configFile === undefined ? [] : [{ name: 'config.json', path: configFile }]),
    ...(await filesIn(join(dataDir, 'keys'), 'keys')).filter((f) => f.name === 'keys/keyring.json'),
    ...(await filesIn(spoolDir ?? join(dataDir, 'spool'), 'spool')),
  ];
}

/** The recovery public key in keys/keyring.json (TPM backend), or undefined (file backend). */
export function recoveryPublicOf(dataDir: string): RecoveryWrap['recovery'] | undefined {
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'keys', 'keyring.json'), 'utf8')) as { recovery?: RecoveryWrap['recovery'] }).recovery;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface VerifyResult {
  readonly values: number;
  readonly auditRecords: number;
  readonly auditLastSeq: number;
}

/**
 * Opens the staged store with `ring` and reads every sealed value; walks the audit chain. Throws
 * EDGE_BACKUP_VERIFY_FAILED naming what failed (never a value's content).
 */
export async function verifyStore(dataDir: string, ring: DataKeyRing, logger: Logger): Promise<VerifyResult> {
  const db = await openDatabase(dataDir);
  try {
    const codec = new ValueCodec(ring);
    let values = 0;
    for await (const [key, value] of db.iterator()) {
      if (!(value.length >= 33 && value[0] === 1)) continue; // index entries carry no sealed value
      try {
        codec.open(key, value).fill(0);
      } catch (cause) {
        throw new EdgeError('EDGE_BACKUP_VERIFY_FAILED', `a value (family "${key[0] ?? '?'}") does not open with this box's keys`, {
          cause,
        });
      }
      values++;
    }
    const audit = await LevelAuditLog.open(db, new CommitQueue(db), codec, logger);
    let prev = audit.anchorHash;
    let expected = audit.firstSeq;
    let count = 0;
    for await (const r of audit.read(audit.firstSeq)) {
      const rec = JSON.parse(r.line) as { seq: number; prevHash: string };
      if (r.seq !== expected || rec.seq !== r.seq || rec.prevHash !== prev) {
        throw new EdgeError('EDGE_BACKUP_VERIFY_FAILED', `the audit chain breaks at seq ${r.seq}`);
      }
      prev = r.hash;
      expected++;
      count++;
    }
    const damaged = await audit.checkAgainstCheckpoints();
    if (damaged !== undefined) throw new EdgeError('EDGE_BACKUP_VERIFY_FAILED', `audit chain: ${damaged}`);
    return { values, auditRecords: count, auditLastSeq: audit.lastSeq };
  } finally {
    await db.close();
  }
}
