// The store's public face: what flows, the CLI and benches may use. The parts under it (the database,
// the commit queue, the codec, the key ring) are put together in assemble.ts and stay inside store/.
import type { DataKeyRotation, KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { LevelAuditLog } from './audit-log.ts';
import type { BackupResult, BackupSource } from './backup.ts';
import type { LevelOrderRepository } from './order-repository.ts';
import type { LevelOutboxStore } from './outbox-store.ts';
import type { LevelMppsRepository } from './mpps-repository.ts';
import type { RekeyOptions, RotationResult } from './rekey.ts';
import type { LevelUserRepository } from './user-repository.ts';
import type { LevelBreakGlassLog } from './break-glass-repository.ts';
import type { Spool, SpoolOptions } from './spool.ts';
import type { StoreRecovery, StoreRecoveryOptions } from './store-recovery.ts';

export interface StoreOptions {
  readonly dataDir: string;
  readonly keySource: KeySource;
  readonly replayWindowMs: number;
  readonly logger: Logger;
}

export interface Store {
  readonly orders: LevelOrderRepository;
  readonly audit: LevelAuditLog;
  readonly outbox: LevelOutboxStore;
  readonly mpps: LevelMppsRepository;
  /** Local accounts of the admin page. */
  readonly users: LevelUserRepository;
  /** Break-glass uses and their review. */
  readonly breakGlass: LevelBreakGlassLog;
  /** Resolves once every write accepted so far is durable (or has failed). */
  flush(): Promise<void>;
  /** Milliseconds the current synced write has been running (0 when none is): the watchdog's hung-disk check. */
  writeAgeMs(): number;
  /**
   * Bytes the audit chain's records take in the database files: LevelDB's estimate from its table
   * index (no scan, cheap enough to ask every minute). The newest records still in the write buffer
   * (at most 4 MiB) are counted once they reach a table.
   */
  auditBytes(): Promise<number>;
  /**
   * Opens the encrypted spool of large DICOM objects beside the database (its entries are in the
   * database, staged with their outbox entries). A start step of its own: it reads the spool folder.
   */
  openSpool(options: SpoolOptions): Promise<Spool>;
  /**
   * Writes a backup of the database (a snapshot read now, re-sealed under a backup content key) and the
   * given files. Call `flush()` first for everything acknowledged to be in it.
   */
  writeBackup(path: string, source: Omit<BackupSource, 'db' | 'ring'>): Promise<BackupResult>;
  /**
   * Online data-key rotation (rekey.ts). Refused with EDGE_KEYS_ROTATION_UNSUPPORTED when the key ring
   * cannot take a new key; `onStarted` is told the key ids in use before anything changes.
   */
  rotateDataKey(
    rotation: DataKeyRotation,
    options?: RekeyOptions & { onStarted?: (keyIds: readonly number[]) => void },
  ): Promise<RotationResult>;
  /** Seals, writes, reads back and deletes a probe value: throws when the store does not round-trip. */
  selfTest(): Promise<void>;
  /**
   * Watches for a failed synced write (disk full, I/O error) and brings the store back without a restart
   * once the disk has room (store-recovery.ts): reopen the database (LevelDB refuses every write after
   * one failed, until it is reopened), prove with a synced write that it takes writes again, and let the
   * commit queue take writes again.
   */
  watchRecovery(options: Omit<StoreRecoveryOptions, 'store'>): StoreRecovery;
  close(): Promise<void>;
}
