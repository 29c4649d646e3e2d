// Storage commitment requests on classic-level (implements CommitmentRepository from
// core/storage-commitment.ts). One sealed record per request under `c\0<keyed hash of calling AE and
// Transaction UID>`; marking it reported and queueing its report go into one synced batch.
import { EdgeError } from '../core/errors.ts';
import type { NewOutboxEntry } from '../core/outbox.ts';
import type { CommitmentReportPayload, CommitmentRepository, CommitmentRequest } from '../core/storage-commitment.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { LevelOutboxStore, StagedEnqueue } from './outbox-store.ts';
import { Prefix, type RecordKeys, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export class LevelCommitmentRepository implements CommitmentRepository {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #keys: RecordKeys;
  readonly #outbox: LevelOutboxStore;

  constructor(queue: CommitQueue, codec: ValueCodec, keys: RecordKeys, outbox: LevelOutboxStore) {
    this.#queue = queue;
    this.#codec = codec;
    this.#keys = keys;
    this.#outbox = outbox;
  }

  record(request: CommitmentRequest): Promise<'created' | 'exists'> {
    return this.#queue.commit(async () => {
      const key = this.#key(request);
      // While the first is pending a repeat is the same request; once it was reported, a repeat (the
      // modality did not get the report, or asks again) is answered with a report of its own.
      if ((await this.#load(key))?.state === 'pending') return { ops: null, result: 'exists' as const };
      return { ops: [this.#put(key, request)], result: 'created' as const };
    });
  }

  async pending(): Promise<readonly CommitmentRequest[]> {
    const out: CommitmentRequest[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.commitment))) {
      const r = await this.#load(key);
      if (r?.state === 'pending') out.push(r);
    }
    return out.sort((a, b) => a.receivedAt - b.receivedAt);
  }

  async complete(request: CommitmentRequest, reportedAt: number, report: NewOutboxEntry<CommitmentReportPayload>): Promise<void> {
    const staged = await this.#queue.commit<StagedEnqueue>(async () => {
      const key = this.#key(request);
      const staged = this.#outbox.stage([report], reportedAt);
      // The instance list is not needed once the report is queued: the record stays only to recognise a repeat.
      const done: CommitmentRequest = { ...request, items: [], state: 'reported', reportedAt };
      return { ops: [this.#put(key, done), ...staged.ops], result: staged };
    });
    this.#outbox.publish(staged);
  }

  async prune(before: number): Promise<number> {
    const stale: Op[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.commitment))) {
      const r = await this.#load(key);
      if (r?.state === 'reported' && (r.reportedAt ?? 0) < before) stale.push({ type: 'del', key });
    }
    if (stale.length === 0) return 0;
    await this.#queue.commit(async () => ({ ops: stale, result: undefined }));
    return stale.length;
  }

  #key(r: Pick<CommitmentRequest, 'callingAeTitle' | 'transactionUid'>): string {
    return `${Prefix.commitment}\u0000${this.#keys.hash('storage-commitment', r.callingAeTitle, r.transactionUid)}`;
  }

  #put(key: string, r: CommitmentRequest): Op {
    return { type: 'put', key, value: this.#codec.seal(key, Buffer.from(JSON.stringify(r), 'utf8')) };
  }

  async #load(key: string): Promise<CommitmentRequest | undefined> {
    const sealed = await this.#queue.get(key);
    if (sealed === undefined) return undefined;
    try {
      return JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as CommitmentRequest;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'a storage commitment record cannot be read', { cause });
    }
  }
}
