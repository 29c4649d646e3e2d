// The one classic-level database of the data directory. Keys are utf8 strings with a one-letter
// prefix per record family (see record-keys.ts); values are sealed by the ValueCodec.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { EdgeError } from '../core/errors.ts';

export type Database = ClassicLevel<string, Buffer>;

export async function openDatabase(dataDir: string): Promise<Database> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Values are ciphertext, which does not compress: Snappy would only spend CPU on every write.
  const db = new ClassicLevel<string, Buffer>(join(dataDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'buffer', compression: false });
  try {
    await db.open();
  } catch (cause) {
    const code = (cause as { cause?: { code?: string } }).cause?.code;
    if (code === 'LEVEL_LOCKED') {
      throw new EdgeError('EDGE_STORE_LOCKED', `another process is using the data directory ${dataDir}; is a second edged running?`, {
        cause,
      });
    }
    throw new EdgeError('EDGE_STORE_WRITE_FAILED', `cannot open the database in ${dataDir}`, { cause });
  }
  return db;
}
