// Test-only: a store with its parts in reach, for tests and benches that act below the facade (an
// attacker editing the database, a disk that fails a write, bulk sealed values). Production code opens
// the store through openStore (index.ts), which keeps these inside store/.
import { assembleStore, type StoreInternals } from '../assemble.ts';
import { type Database, openDatabase } from '../database.ts';
import type { Store, StoreOptions } from '../store.ts';

export type { StoreInternals };

export function openStoreWithInternals(options: StoreOptions): Promise<{ store: Store; internals: StoreInternals }> {
  return assembleStore(options);
}

/**
 * Opens a closed store's database files directly, as someone with the disk would: no codec, no queue.
 * The store must be closed first (LevelDB's lock keeps a second opener out, as it keeps out edged).
 */
export async function withDatabaseFiles<T>(dataDir: string, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(dataDir);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
