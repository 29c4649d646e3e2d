// Online data-key rotation: add a new key, make it active (every new value is sealed under it at once),
// re-encrypt what the database holds under older keys in batches through the CommitQueue, prove that
// nothing names an old key any more, then retire (destroy) the old keys.
//
// Each batch is one `commit(prepare)`: prepare runs exclusively, so no writer can slip in between the
// read of a value and the write of its re-encrypted copy (no lost update), and concurrent writers keep
// committing between batches, holding up for at most one batch. Index keys are HMACs under the index
// key, which never rotates, so no key of the database changes.
import { EdgeError } from '../core/errors.ts';
import type { DataKeyRotation, KeyRing } from '../core/keys.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { Database } from './database.ts';
import { ValueCodec } from './value-codec.ts';

export interface RekeyTarget {
  readonly db: Database;
  readonly queue: CommitQueue;
  readonly codec: ValueCodec;
}

export interface RekeyProgress {
  readonly scanned: number;
  readonly rewritten: number;
}

export interface RekeyOptions {
  /** Values re-encrypted per commit (one synced batch). */
  readonly batchSize?: number;
  readonly onProgress?: (p: RekeyProgress) => void;
  readonly signal?: AbortSignal;
}

/** Sealed by ValueCodec: [1][key id u32][nonce 12]…[tag 16]; index entries are empty and skipped. */
function sealedKeyId(value: Buffer): number | undefined {
  return value.length >= 33 && value[0] === 1 ? ValueCodec.keyIdOf(value) : undefined;
}

/** Re-encrypt every value whose key id is in `from` under the codec's active key. */
export async function reencryptValues(t: RekeyTarget, from: ReadonlySet<number>, options: RekeyOptions = {}): Promise<RekeyProgress> {
  const batchSize = options.batchSize ?? 2_000;
  // Everything sealed before the switch must be on disk before the snapshot the scan reads.
  await t.queue.drain();
  let scanned = 0;
  let rewritten = 0;
  let pending: string[] = [];
  const flush = async (keys: string[]): Promise<void> => {
    rewritten += await t.queue.commit(async () => {
      const ops: Op[] = [];
      for (const key of keys) {
        const current = await t.queue.get(key);
        if (current === undefined) continue;
        const id = sealedKeyId(current);
        if (id === undefined || !from.has(id)) continue;
        const plain = t.codec.open(key, current);
        ops.push({ type: 'put', key, value: t.codec.seal(key, plain) });
        plain.fill(0);
      }
      return { ops, result: ops.length };
    });
    options.onProgress?.({ scanned, rewritten });
  };
  for await (const [key, value] of t.db.iterator()) {
    scanned++;
    const id = sealedKeyId(value);
    if (id !== undefined && from.has(id)) pending.push(key);
    if (pending.length >= batchSize) {
      options.signal?.throwIfAborted();
      const keys = pending;
      pending = [];
      await flush(keys);
    }
  }
  if (pending.length > 0) await flush(pending);
  return { scanned, rewritten };
}

/** How many values in the database are sealed under each key id. */
export async function countByKeyId(db: Database): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for await (const value of db.values()) {
    const id = sealedKeyId(value);
    if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export interface RotationResult {
  readonly newKeyId: number;
  readonly retiredKeyIds: readonly number[];
  /** Old keys kept because something outside the database still uses them (e.g. spool files). */
  readonly keptKeyIds: readonly number[];
  readonly scanned: number;
  readonly rewritten: number;
  readonly ms: number;
}

let running = false;

/**
 * The whole rotation. `stillUses` lets other holders of sealed data (spool files) keep an old key alive;
 * such a key is retired by a later rotation once nothing uses it.
 */
export async function rotateDataKey(
  t: RekeyTarget,
  ring: KeyRing,
  rotation: DataKeyRotation,
  options: RekeyOptions & { stillUses?: (keyId: number) => Promise<boolean> } = {},
): Promise<RotationResult> {
  if (running) throw new EdgeError('EDGE_KEYS_ROTATION_BUSY');
  running = true;
  const started = Date.now();
  try {
    const old = new Set(ring.keyIds);
    const newKeyId = await rotation.addDataKey(ring);
    await rotation.activate(ring, newKeyId);
    const { scanned, rewritten } = await reencryptValues(t, old, options);
    await t.queue.drain();
    const left = await countByKeyId(t.db);
    const remaining = [...old].filter((id) => (left.get(id) ?? 0) > 0);
    if (remaining.length > 0) {
      throw new EdgeError(
        'EDGE_STORE_WRITE_FAILED',
        `values under key id(s) ${remaining.join(',')} remain after re-encryption; old keys kept`,
      );
    }
    const retiredKeyIds: number[] = [];
    const keptKeyIds: number[] = [];
    for (const id of old) {
      if (options.stillUses !== undefined && (await options.stillUses(id))) {
        keptKeyIds.push(id);
        continue;
      }
      await rotation.retire(ring, id);
      retiredKeyIds.push(id);
    }
    return { newKeyId, retiredKeyIds, keptKeyIds, scanned, rewritten, ms: Date.now() - started };
  } finally {
    running = false;
  }
}
