// Performed procedure steps on classic-level (implements MppsRepository from core/mpps.ts). One record
// per step under `r\0<keyed hash of the SOP Instance UID>`, sealed; its status messages are staged into
// the same synced batch through the outbox store, so a step and what it tells the RIS commit together.
import { EdgeError } from '../core/errors.ts';
import type { MppsRefusal, MppsRepository, PerformedProcedureStep } from '../core/mpps.ts';
import { MppsRefusalReason, isMppsRefusal } from '../core/mpps.ts';
import type { NewOutboxEntry } from '../core/outbox.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { LevelOutboxStore, StagedEnqueue } from './outbox-store.ts';
import { Prefix, type RecordKeys } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export class LevelMppsRepository implements MppsRepository {
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

  async create(step: PerformedProcedureStep, outbox: readonly NewOutboxEntry[]): Promise<'created' | MppsRefusal> {
    const result = await this.#queue.commit<StagedEnqueue | MppsRefusal>(async () => {
      const key = this.#key(step.sopInstanceUid);
      if ((await this.#queue.get(key)) !== undefined) {
        return { ops: null, result: { refused: MppsRefusalReason.Duplicate, comment: 'SOP Instance UID already exists' } };
      }
      const staged = this.#outbox.stage(outbox, Date.now());
      return { ops: [this.#put(key, step), ...staged.ops], result: staged };
    });
    if (isMppsRefusal(result)) return result;
    this.#outbox.publish(result);
    return 'created';
  }

  async update(
    sopInstanceUid: string,
    change: (
      prev: PerformedProcedureStep,
    ) => { readonly step: PerformedProcedureStep; readonly outbox: readonly NewOutboxEntry[] } | MppsRefusal,
  ): Promise<PerformedProcedureStep | MppsRefusal> {
    const result = await this.#queue.commit<{ step: PerformedProcedureStep; staged: StagedEnqueue } | MppsRefusal>(async () => {
      const key = this.#key(sopInstanceUid);
      const prev = await this.#load(key);
      if (prev === undefined) return { ops: null, result: { refused: MppsRefusalReason.NoSuchInstance, comment: 'no such MPPS instance' } };
      const next = change(prev);
      if (isMppsRefusal(next)) return { ops: null, result: next };
      const staged = this.#outbox.stage(next.outbox, Date.now());
      const ops: Op[] = [this.#put(key, next.step), ...staged.ops];
      return { ops, result: { step: next.step, staged } };
    });
    if (isMppsRefusal(result)) return result;
    this.#outbox.publish(result.staged);
    return result.step;
  }

  async get(sopInstanceUid: string): Promise<PerformedProcedureStep | undefined> {
    return this.#load(this.#key(sopInstanceUid));
  }

  #key(sopInstanceUid: string): string {
    return `${Prefix.mpps}\u0000${this.#keys.hash('mpps', sopInstanceUid)}`;
  }

  #put(key: string, step: PerformedProcedureStep): Op {
    return { type: 'put', key, value: this.#codec.seal(key, Buffer.from(JSON.stringify(step), 'utf8')) };
  }

  async #load(key: string): Promise<PerformedProcedureStep | undefined> {
    const sealed = await this.#queue.get(key);
    if (sealed === undefined) return undefined;
    try {
      return JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as PerformedProcedureStep;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', 'an MPPS record cannot be read', { cause });
    }
  }
}
