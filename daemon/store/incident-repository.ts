// Alerts, quarantined peers and the alert rules' baseline (core/incident.ts): small sealed records under
// the `y` prefix, keyed by alert id, by peer kind and name, or the one baseline key (no patient data in
// any key). The baseline is what the rules learned of each subject's usual behaviour.
import type { Alert, IncidentStore, Quarantine } from '../core/incident.ts';
import type { CommitQueue } from './commit-queue.ts';
import type { Database } from './database.ts';
import { Prefix } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

const SEP = '\u0000';
const alertKey = (id: string): string => `${Prefix.incident}${SEP}alert${SEP}${id}`;
const quarantineKey = (kind: string, name: string): string => `${Prefix.incident}${SEP}quarantine${SEP}${kind}${SEP}${name}`;
const BASELINE_KEY = `${Prefix.incident}${SEP}baseline`;

export class LevelIncidentRepository implements IncidentStore {
  readonly #db: Database;
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;

  constructor(db: Database, queue: CommitQueue, codec: ValueCodec) {
    this.#db = db;
    this.#queue = queue;
    this.#codec = codec;
  }

  saveAlert(alert: Alert): Promise<void> {
    return this.#put(alertKey(alert.id), alert);
  }

  alerts(): Promise<Alert[]> {
    return this.#list<Alert>(`${Prefix.incident}${SEP}alert${SEP}`);
  }

  saveQuarantine(q: Quarantine): Promise<void> {
    return this.#put(quarantineKey(q.kind, q.name), q);
  }

  async removeQuarantine(kind: Quarantine['kind'], name: string): Promise<void> {
    const key = quarantineKey(kind, name);
    await this.#queue.commit(async () => ({ ops: [{ type: 'del', key }], result: undefined }));
  }

  quarantines(): Promise<Quarantine[]> {
    return this.#list<Quarantine>(`${Prefix.incident}${SEP}quarantine${SEP}`);
  }

  saveBaseline(state: unknown): Promise<void> {
    return this.#put(BASELINE_KEY, state);
  }

  async baseline(): Promise<unknown> {
    const sealed = await this.#queue.get(BASELINE_KEY);
    return sealed === undefined ? undefined : (JSON.parse(this.#codec.open(BASELINE_KEY, sealed).toString('utf8')) as unknown);
  }

  async #put(key: string, value: unknown): Promise<void> {
    const sealed = this.#codec.seal(key, Buffer.from(JSON.stringify(value), 'utf8'));
    await this.#queue.commit(async () => ({ ops: [{ type: 'put', key, value: sealed }], result: undefined }));
  }

  async #list<T>(prefix: string): Promise<T[]> {
    const out: T[] = [];
    // `prefix` ends with the separator: everything up to the next code point after it.
    const range = { gte: prefix, lt: `${prefix.slice(0, -1)}\u0001` };
    for await (const [key, value] of this.#db.iterator(range)) out.push(JSON.parse(this.#codec.open(key, value).toString('utf8')) as T);
    return out;
  }
}
