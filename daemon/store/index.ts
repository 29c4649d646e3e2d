// The store: one database, one commit queue, the repositories on top. flows/edge.ts opens it; it closes last.
// The facade (store.ts) names what its users do (record, back up, rotate the data key, recover); the
// database, the commit queue, the codec and the key ring stay inside store/ (assemble.ts).
import { assembleStore } from './assemble.ts';
import type { Store, StoreOptions } from './store.ts';

export { LevelAuditLog, hashRecord, auditKey, type AuditRecord, type ChainVerification, type DamagedRange } from './audit-log.ts';
export { LevelOrderRepository } from './order-repository.ts';
export { LevelOutboxStore, type StagedEnqueue } from './outbox-store.ts';
export { LevelMppsRepository } from './mpps-repository.ts';
export { ValueCodec } from './value-codec.ts';
export { LevelUserRepository, type UserRecord } from './user-repository.ts';
export type { Store, StoreOptions } from './store.ts';

export async function openStore(options: StoreOptions): Promise<Store> {
  return (await assembleStore(options)).store;
}
