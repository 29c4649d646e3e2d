// A real store in a temp dir for audit tests, with events that name a patient and an order.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../daemon/core/audit.ts';
import type { AuditRecord } from '../../daemon/core/audit-trail.ts';
import type { KeySource } from '../../daemon/core/keys.ts';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource, deriveKeyRing } from '../../daemon/security/file-key-source.ts';
import { type Store, openStore } from '../../daemon/store/index.ts';
import { type StoreInternals, openStoreWithInternals, withDatabaseFiles } from '../../daemon/store/testing/store-internals.ts';
import type { Database } from '../../daemon/store/database.ts';

export function sampleEvent(i: number, at = Date.now()): AuditEvent {
  return {
    eventId: i % 3 === 0 ? 'Query' : 'ProcedureRecord',
    type: i % 3 === 0 ? 'worklist.query' : 'hl7.order-committed',
    action: i % 3 === 0 ? 'E' : 'U',
    outcome: 0,
    at,
    participants: [
      { kind: 'hl7', id: 'RIS^HOSP', address: '127.0.0.1', requestor: true },
      { kind: 'system', id: 'edge-test', requestor: false },
    ],
    patient: { id: `PID${i}`, issuer: 'HOSP' },
    accessionNumber: `ACC${i}`,
    studyInstanceUid: `1.2.3.${i}`,
    controlId: `MSG${i}`,
    detail: `event ${i} <&> "quoted"`,
  };
}

export interface TempStore {
  readonly store: Store;
  /** Test-only: the parts below the facade, for a disk that fails a write. */
  readonly internals: StoreInternals;
  readonly dir: string;
  reopen(): Promise<Store>;
  /** Closes the store, edits its database files as someone with the disk would, and opens it again. */
  tamper(edit: (db: Database) => Promise<void>): Promise<Store>;
  cleanup(): Promise<void>;
}

export async function tempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-audit-store-'));
  const secret = randomBytes(32);
  const keySource: KeySource = { backend: 'memory-for-tests', load: async () => deriveKeyRing(secret) };
  const dataDir = join(dir, 'data');
  const open = () => openStoreWithInternals({ dataDir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
  let opened = await open();
  let store = opened.store;
  const reopen = async (): Promise<Store> => {
    opened = await open();
    store = opened.store;
    return store;
  };
  return {
    get store() {
      return store;
    },
    get internals() {
      return opened.internals;
    },
    dir,
    async reopen() {
      await store.close();
      return reopen();
    },
    async tamper(edit) {
      await store.close();
      await withDatabaseFiles(dataDir, edit);
      return reopen();
    },
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every audit event of a stopped dev site (`edgectl dev-site` layout), read with the site's own key. */
export async function siteAuditEvents(siteDir: string): Promise<AuditEvent[]> {
  return (await siteAuditRecords(siteDir)).map((r) => r.event);
}

/** Every chain record of a stopped dev site, as stored (seq, prevHash, event, environment). */
export async function siteAuditRecords(siteDir: string): Promise<AuditRecord[]> {
  const store = await openStore({
    dataDir: join(siteDir, 'data'),
    keySource: new FileKeySource(join(siteDir, 'keys', 'data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  const records: AuditRecord[] = [];
  try {
    for await (const r of store.audit.read(1)) records.push(JSON.parse(r.line) as AuditRecord);
  } finally {
    await store.close();
  }
  return records;
}
