// Break-glass uses (core/break-glass.ts): one sealed record each under the `b` prefix, keyed by its
// random id. Records are kept after review; they name a user and a reason, never patient data.
import type { BreakGlassLog, BreakGlassRecord } from '../core/break-glass.ts';
import type { CommitQueue } from './commit-queue.ts';
import { Prefix, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

function recordKey(id: string): string {
  return `${Prefix.breakGlass}\u0000${id}`;
}

export class LevelBreakGlassLog implements BreakGlassLog {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;

  constructor(queue: CommitQueue, codec: ValueCodec) {
    this.#queue = queue;
    this.#codec = codec;
  }

  async list(): Promise<readonly BreakGlassRecord[]> {
    const out: BreakGlassRecord[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.breakGlass))) {
      const sealed = await this.#queue.get(key);
      if (sealed !== undefined) out.push(JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as BreakGlassRecord);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }

  async get(id: string): Promise<BreakGlassRecord | undefined> {
    const key = recordKey(id);
    const sealed = await this.#queue.get(key);
    return sealed === undefined ? undefined : (JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as BreakGlassRecord);
  }

  async put(record: BreakGlassRecord): Promise<void> {
    const key = recordKey(record.id);
    const value = this.#codec.seal(key, Buffer.from(JSON.stringify(record), 'utf8'));
    await this.#queue.commit(async () => ({ ops: [{ type: 'put', key, value }], result: undefined }));
  }
}
