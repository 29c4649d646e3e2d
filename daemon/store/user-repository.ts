// Local user accounts of the admin page (seeded by `edgectl provision` with the first admin): one sealed
// record per user under the `u` prefix, the user name as the record's key (never patient data).
import type { CommitQueue } from './commit-queue.ts';
import { Prefix } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

export interface UserRecord {
  readonly username: string;
  readonly role: 'admin' | 'operator' | 'viewer' | 'auditor';
  readonly password: {
    readonly alg: 'scrypt';
    readonly N: number;
    readonly r: number;
    readonly p: number;
    readonly salt: string;
    readonly hash: string;
  };
  readonly mustChange: boolean;
  readonly createdAt: number;
}

export function userKey(username: string): string {
  return `${Prefix.user}\u0000${username}`;
}

export class LevelUserRepository {
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
      return { ops: [{ type: 'put', key, value: this.#codec.seal(key, Buffer.from(JSON.stringify(record), 'utf8')) }], result: undefined };
    });
  }

  async get(username: string): Promise<UserRecord | undefined> {
    const key = userKey(username);
    const sealed = await this.#queue.get(key);
    return sealed === undefined ? undefined : (JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as UserRecord);
  }
}
