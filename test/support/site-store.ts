// The store of a dev site that is not running (`edgectl dev-site` layout), opened with the site's own
// key for a test to seed it (users, records) before the daemon starts, and closed again.
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { openStore, type Store } from '../../daemon/store/index.ts';

export async function withSiteStore<T>(siteDir: string, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({
    dataDir: join(siteDir, 'data'),
    keySource: new FileKeySource(join(siteDir, 'keys/data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
