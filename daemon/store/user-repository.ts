// Local user accounts of the admin listener (seeded by `edgectl provision` with the first admin): one
// sealed record per user under the `u` prefix, the user name as the record's key (never patient data).
import type { UserDirectory, UserRecord } from '../core/user-account.ts';
import type { CommitQueue } from './commit-queue.ts';
import { Prefix, rangeOf } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export type { UserRecord } from '../core/user-account.ts';

export function userKey(username: string): string {
  return `${Prefix.user}\u0000${username}`;
}

export class LevelUserRepository implements UserDirectory {
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;

  constructor(queue: CommitQueue, codec: ValueCodec) {
    this.#queue = queue;
    this.#codec = codec;
  }

  /** Writes a new user durably; refuses a name that exists (checked inside the same commit). */
  async create(record: UserRecord): Promise<void> {
    const key = userKey(record.username);
    await this.#queue.commit(async () => {
      if ((await this.#queue.get(key)) !== undefined) throw new Error(`user "${record.username}" exists`);
      return { ops: [{ type: 'put', key, value: this.#seal(key, record) }], result: undefined };
    });
  }

  async get(username: string): Promise<UserRecord | undefined> {
    const key = userKey(username);
    const sealed = await this.#queue.get(key);
    return sealed === undefined ? undefined : this.#open(key, sealed);
  }

  async list(): Promise<readonly UserRecord[]> {
    const out: UserRecord[] = [];
    for (const key of await this.#queue.keys(rangeOf(Prefix.user))) {
      const sealed = await this.#queue.get(key);
      if (sealed !== undefined) out.push(this.#open(key, sealed));
    }
    return out;
  }

  async update(username: string, change: (current: UserRecord) => UserRecord | undefined): Promise<UserRecord | undefined> {
    const key = userKey(username);
    return this.#queue.commit(async () => {
      const sealed = await this.#queue.get(key);
      if (sealed === undefined) return { ops: [], result: undefined };
      const current = this.#open(key, sealed);
      const next = change(current);
      if (next === undefined) return { ops: [], result: current };
      if (next.username !== username) throw new TypeError('an update cannot rename a user');
      return { ops: [{ type: 'put', key, value: this.#seal(key, next) }], result: next };
    });
  }

  #seal(key: string, record: UserRecord): Buffer {
    return this.#codec.seal(key, Buffer.from(JSON.stringify(record), 'utf8'));
  }

  #open(key: string, sealed: Uint8Array): UserRecord {
    return JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as UserRecord;
  }
}
