// The OrderRepository port on classic-level. An order is stored once (o!), indexed by patient (p!) and
// shown on the worklist through one record per scheduled procedure step (w!) that carries the whole
// item, so a worklist query is one ordered range scan with no second lookup.
import { EdgeError } from '../core/errors.ts';
import {
  type MessageReceipt,
  type Order,
  type OrderCommand,
  OrderOrigin,
  type Patient,
  type PatientIdentifier,
  type WorklistItem,
  WORKLIST_STATUSES,
  orderIdentity,
  orderRecordIdentity,
  upstreamItemIdentity,
} from '../core/order.ts';
import type { UpstreamChange, UpstreamItemRecord } from '../core/upstream-worklist.ts';
import type { ApplyOutcome, DowntimeLink, OrderLookup, OrderReference, OrderRepository, WorklistFilter } from '../core/ports.ts';
import { linkDowntimeOrder } from '../core/downtime-order.ts';
import type { CommitQueue, Op } from './commit-queue.ts';
import type { Database } from './database.ts';
import type { NewOutboxEntry } from '../core/outbox.ts';
import type { LevelOutboxStore, StagedEnqueue } from './outbox-store.ts';
import { Prefix, RecordKeys, parseWorklistKey, rangeOf, worklistRange } from './record-keys.ts';
import type { ValueCodec } from './value-codec.ts';

/** Worklist records read per native iterator call. */
const WORKLIST_SLICE = 256;
/**
 * Changes of an upstream merge per commit: a large answer never holds the commit queue, or the event
 * loop the modalities' queries run on, for long (bench/downtime-bench.ts measures the query latency).
 */
const UPSTREAM_CHANGES_PER_COMMIT = 50;

export interface OrderRepositoryOptions {
  /** How long a sender's MSH-10 is remembered to refuse replays. */
  readonly replayWindowMs: number;
}

export class LevelOrderRepository implements OrderRepository, OrderLookup {
  readonly #db: Database;
  readonly #queue: CommitQueue;
  readonly #codec: ValueCodec;
  readonly #keys: RecordKeys;
  readonly #options: OrderRepositoryOptions;
  readonly #outbox: LevelOutboxStore | undefined;

  constructor(
    db: Database,
    queue: CommitQueue,
    codec: ValueCodec,
    keys: RecordKeys,
    options: OrderRepositoryOptions,
    outbox?: LevelOutboxStore,
  ) {
    this.#db = db;
    this.#queue = queue;
    this.#codec = codec;
    this.#keys = keys;
    this.#options = options;
    this.#outbox = outbox;
  }

  apply(commands: readonly OrderCommand[], receipt: MessageReceipt): Promise<ApplyOutcome> {
    return this.#queue.commit<ApplyOutcome>(async () => {
      const idHash = this.#keys.hash('msh10', receipt.sender, receipt.controlId);
      const idKey = this.#keys.controlId(idHash);
      const seen = await this.#queue.get(idKey);
      if (seen !== undefined) {
        const at = Number(JSON.parse(this.#codec.open(idKey, seen).toString('utf8')).receivedAt);
        if (receipt.receivedAt - at < this.#options.replayWindowMs) return { ops: null, result: { status: 'duplicate' } as const };
      }
      const tx = new Transaction(this);
      let changedItems = 0;
      let unknownOrders = 0;
      for (const c of commands) {
        const r = await tx.run(c);
        changedItems += r.changed;
        unknownOrders += r.unknown;
      }
      tx.put(idKey, JSON.stringify({ receivedAt: receipt.receivedAt }));
      tx.ops.push({ type: 'put', key: this.#keys.controlIdByTime(receipt.receivedAt, idHash), value: Buffer.alloc(0) });
      const links = tx.downtimeLinks;
      return {
        ops: tx.ops,
        result: { status: 'committed', changedItems, unknownOrders, ...(links.length === 0 ? {} : { downtimeLinks: links }) } as const,
      };
    });
  }

  async *worklist(filter: WorklistFilter): AsyncIterable<WorklistItem> {
    const stations = filter.stationAeTitles === undefined ? undefined : new Set(filter.stationAeTitles);
    const modalities = filter.modalities === undefined ? undefined : new Set(filter.modalities);
    const single = stations?.size === 1 ? [...stations][0] : undefined;
    const range = worklistRange(filter.startDateFrom, filter.startDateTo, single);
    // Read in slices: one native call fills a whole slice, so a day's items come back in one event-loop
    // turn and their C-FIND responses leave in one socket write instead of one write per item.
    const iterator = this.#db.iterator(range);
    try {
      for (;;) {
        const slice = await iterator.nextv(WORKLIST_SLICE);
        if (slice.length === 0) break;
        for (const [key, value] of slice) {
          if (stations !== undefined || modalities !== undefined) {
            const parts = parseWorklistKey(key);
            if (parts === undefined) continue;
            if (stations !== undefined && !stations.has(parts.station)) continue;
            if (modalities !== undefined && !modalities.has(parts.modality)) continue;
          }
          yield JSON.parse(this.#codec.open(key, value).toString('utf8')) as WorklistItem;
        }
      }
    } finally {
      await iterator.close();
    }
  }

  async ordersByReference(ref: OrderReference): Promise<readonly Order[]> {
    const hashes = new Set<string>();
    const collect = async (family: string, purpose: string, value: string | undefined): Promise<void> => {
      if (value === undefined || value === '') return;
      for await (const key of this.#db.keys(this.#keys.referenceRange(family, this.#keys.hash(purpose, value)))) {
        hashes.add(key.slice(key.lastIndexOf('\u0000') + 1));
      }
    };
    await collect(Prefix.orderByAccession, 'accession', ref.accessionNumber);
    if (hashes.size === 0) await collect(Prefix.orderByStudy, 'study', ref.studyInstanceUid);
    const orders: Order[] = [];
    for (const hash of hashes) {
      const key = this.#keys.order(hash);
      const sealed = await this.#db.get(key);
      if (sealed !== undefined) orders.push(JSON.parse(this.#codec.open(key, sealed).toString('utf8')) as Order);
    }
    return orders;
  }

  /** Every item pulled from the upstream worklist provider that the box holds, by identity. */
  async upstreamItems(): Promise<Map<string, UpstreamItemRecord>> {
    const held = new Map<string, UpstreamItemRecord>();
    for await (const [key, value] of this.#db.iterator(rangeOf(Prefix.upstreamItem))) {
      const record = JSON.parse(this.#codec.open(key, value).toString('utf8')) as UpstreamItemRecord;
      held.set(record.identity, record);
    }
    return held;
  }

  /** Which of these (Accession Number, SPS ID) keys an order from HL7 already has: it takes precedence. */
  async coveredByHl7(keys: ReadonlyArray<{ readonly accessionNumber: string; readonly spsId: string }>): Promise<Set<string>> {
    const covered = new Set<string>();
    const byAccession = new Map<string, Set<string>>();
    for (const k of keys) {
      const ids = byAccession.get(k.accessionNumber) ?? new Set<string>();
      ids.add(k.spsId);
      byAccession.set(k.accessionNumber, ids);
    }
    for (const [accession, spsIds] of byAccession) {
      const own = new Set([...spsIds].map((id) => this.#keys.hash('order', upstreamItemIdentity(accession, id))));
      const range = this.#keys.referenceRange(Prefix.orderByAccession, this.#keys.hash('accession', accession));
      for await (const key of this.#db.keys(range)) {
        const hash = key.slice(key.lastIndexOf('\u0000') + 1);
        if (own.has(hash)) continue;
        const orderKey = this.#keys.order(hash);
        const sealed = await this.#db.get(orderKey);
        if (sealed === undefined) continue;
        const order = JSON.parse(this.#codec.open(orderKey, sealed).toString('utf8')) as Order;
        if (order.origin === OrderOrigin.UpstreamMwl) continue;
        for (const step of order.steps) if (spsIds.has(step.id)) covered.add(upstreamItemIdentity(accession, step.id));
      }
    }
    return covered;
  }

  /** Apply a merge plan (core/upstream-worklist.ts), each item's order and record in one commit. */
  async applyUpstream(changes: readonly UpstreamChange[]): Promise<void> {
    for (let i = 0; i < changes.length; i += UPSTREAM_CHANGES_PER_COMMIT) {
      const slice = changes.slice(i, i + UPSTREAM_CHANGES_PER_COMMIT);
      await this.#queue.commit(async () => {
        const tx = new Transaction(this);
        for (const c of slice) await tx.upstream(c);
        return { ops: tx.ops, result: undefined };
      });
      // Let queries waiting on the event loop run between slices.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Take the next number of the local downtime range and commit the order built from it, with the
   * range's counter, in one write. Throws EDGE_DOWNTIME_RANGE_EXHAUSTED past `last`.
   */
  async enterDowntimeOrder(
    range: { readonly first: number; readonly last: number },
    build: (n: number) => Order,
    outboxOf: (order: Order) => readonly NewOutboxEntry[] = () => [],
  ): Promise<Order> {
    const { order, staged } = await this.#queue.commit<{ order: Order; staged: StagedEnqueue | undefined }>(async () => {
      const counterKey = `${Prefix.meta}\u0000downtime.next-number`;
      const sealed = await this.#queue.get(counterKey);
      const stored = sealed === undefined ? range.first : Number(JSON.parse(this.#codec.open(counterKey, sealed).toString('utf8')).next);
      const n = Math.max(stored, range.first);
      if (n > range.last) {
        throw new EdgeError(
          'EDGE_DOWNTIME_RANGE_EXHAUSTED',
          `the local accession range ${range.first}–${range.last} is used up: widen downtime.accessionNumbers.last`,
        );
      }
      const order = build(n);
      const tx = new Transaction(this);
      await tx.run({ type: 'order-upsert', order });
      const hash = this.#keys.hash('order', orderRecordIdentity(order));
      tx.ops.push({ type: 'put', key: this.#keys.downtimeOrder(hash), value: Buffer.alloc(0) });
      tx.put(counterKey, JSON.stringify({ next: n + 1 }));
      // The order the box places with the RIS commits with the order itself: entered means queued.
      const entries = outboxOf(order);
      if (entries.length > 0 && this.#outbox === undefined) throw new TypeError('this repository has no outbox to place orders through');
      const staged = entries.length === 0 ? undefined : this.#outbox!.stage(entries, Date.now());
      return { ops: [...tx.ops, ...(staged?.ops ?? [])], result: { order, staged } };
    });
    if (staged !== undefined) this.#outbox!.publish(staged);
    return order;
  }

  /** Change one downtime order's mark (a person resolved its conflict); undefined when there is no such order. */
  async resolveDowntimeOrder(
    placerOrderNumber: string,
    placerIssuer: string,
    resolved: NonNullable<NonNullable<Order['downtime']>['resolved']>,
  ): Promise<Order | undefined> {
    return this.#queue.commit<Order | undefined>(async () => {
      const tx = new Transaction(this);
      const hash = this.#keys.hash('order', orderIdentity(placerOrderNumber, placerIssuer));
      const before = await tx.load(hash);
      if (before?.downtime === undefined) return { ops: null, result: undefined };
      const after: Order = { ...before, downtime: { ...before.downtime, resolved } };
      tx.write(hash, before, after);
      return { ops: tx.ops, result: after };
    });
  }

  /** Every order entered at the box during a downtime, oldest first. */
  async downtimeOrders(): Promise<Order[]> {
    const orders: Order[] = [];
    for await (const key of this.#db.keys(rangeOf(Prefix.downtimeOrder))) {
      const orderKey = this.#keys.order(key.slice(key.lastIndexOf('\u0000') + 1));
      const sealed = await this.#db.get(orderKey);
      if (sealed !== undefined) orders.push(JSON.parse(this.#codec.open(orderKey, sealed).toString('utf8')) as Order);
    }
    return orders.sort((a, b) => (a.downtime?.enteredAt ?? 0) - (b.downtime?.enteredAt ?? 0));
  }

  /** Forget control ids older than the replay window. */
  async pruneControlIds(now: number): Promise<number> {
    const cutoff = this.#keys.controlIdByTime(now - this.#options.replayWindowMs, '');
    const ops: Op[] = [];
    for await (const key of this.#db.keys({ gte: 'n\u0000', lt: cutoff })) {
      const hash = key.slice(key.lastIndexOf('\u0000') + 1);
      ops.push({ type: 'del', key }, { type: 'del', key: this.#keys.controlId(hash) });
    }
    if (ops.length > 0) await this.#queue.commit(async () => ({ ops, result: undefined }));
    return ops.length / 2;
  }

  // Internals used by Transaction.
  get queue(): CommitQueue {
    return this.#queue;
  }
  get codec(): ValueCodec {
    return this.#codec;
  }
  get keys(): RecordKeys {
    return this.#keys;
  }
}

/** The ops one message produces; reads see its own earlier writes. */
class Transaction {
  readonly ops: Op[] = [];
  readonly downtimeLinks: DowntimeLink[] = [];
  readonly #local = new Map<string, Order | null>();
  readonly #repo: LevelOrderRepository;

  constructor(repo: LevelOrderRepository) {
    this.#repo = repo;
  }

  put(key: string, json: string): void {
    this.ops.push({ type: 'put', key, value: this.#repo.codec.seal(key, Buffer.from(json, 'utf8')) });
  }

  del(key: string): void {
    this.ops.push({ type: 'del', key });
  }

  async run(c: OrderCommand): Promise<{ changed: number; unknown: number }> {
    switch (c.type) {
      case 'order-upsert': {
        const hash = this.#repo.keys.hash('order', orderRecordIdentity(c.order));
        const before = await this.#load(hash);
        // An order from the RIS takes precedence over an item pulled for the same (accession, step).
        if (c.order.origin !== OrderOrigin.UpstreamMwl) {
          for (const step of c.order.steps) await this.#removeUpstream(upstreamItemIdentity(c.order.accessionNumber, step.id));
        }
        let order = c.order;
        // A generated Study Instance UID must stay stable across order updates, or images taken
        // before and after an XO would land in two studies.
        if (before !== undefined && order.studyInstanceUidGenerated && before.studyInstanceUidGenerated) {
          order = { ...order, studyInstanceUid: before.studyInstanceUid };
        }
        // The RIS answered a downtime order the box placed: link it (its accession and patient, the box's study).
        if (before?.origin === OrderOrigin.Downtime && before.downtime !== undefined && c.order.origin !== OrderOrigin.Downtime) {
          order = linkDowntimeOrder(before, c.order);
          const d = order.downtime!;
          this.downtimeLinks.push({
            placerOrderNumber: order.placerOrderNumber,
            placerIssuer: order.placerIssuer,
            originalAccessionNumber: d.original?.accessionNumber ?? '',
            accessionNumber: order.accessionNumber,
            patient: { id: order.patient.id, issuer: order.patient.issuer },
            ...(d.conflict === undefined ? {} : { conflict: d.conflict.detail }),
          });
        }
        this.#write(hash, before, order);
        return { changed: order.steps.length, unknown: 0 };
      }
      case 'order-status': {
        const hash = this.#orderHash(c.placerOrderNumber, c.placerIssuer);
        const before = await this.#load(hash);
        if (before === undefined) return { changed: 0, unknown: 1 };
        this.#write(hash, before, { ...before, status: c.status, source: c.source });
        return { changed: before.steps.length, unknown: 0 };
      }
      case 'patient-update': {
        let changed = 0;
        for (const hash of await this.#ordersOf(c.patient)) {
          const before = await this.#load(hash);
          if (before === undefined) continue;
          this.#write(hash, before, { ...before, patient: mergePatient(before.patient, c.patient), source: c.source });
          changed += before.steps.length;
        }
        return { changed, unknown: 0 };
      }
      case 'patient-merge': {
        let changed = 0;
        for (const hash of await this.#ordersOf(c.prior)) {
          const before = await this.#load(hash);
          if (before === undefined) continue;
          this.#write(hash, before, { ...before, patient: c.surviving, source: c.source });
          changed += before.steps.length;
        }
        return { changed, unknown: 0 };
      }
    }
  }

  async upstream(c: UpstreamChange): Promise<void> {
    const keys = this.#repo.keys;
    switch (c.type) {
      case 'put': {
        const hash = keys.hash('order', c.record.identity);
        this.#write(hash, await this.#load(hash), c.order);
        this.put(keys.upstreamItem(hash), JSON.stringify(c.record));
        return;
      }
      case 'mark':
        this.put(keys.upstreamItem(keys.hash('order', c.record.identity)), JSON.stringify(c.record));
        return;
      case 'remove':
        await this.#removeUpstream(c.identity);
        return;
    }
  }

  async #removeUpstream(identity: string): Promise<void> {
    const keys = this.#repo.keys;
    const hash = keys.hash('order', identity);
    const before = await this.#load(hash);
    if (before === undefined || before.origin !== OrderOrigin.UpstreamMwl) return;
    for (const k of worklistKeys(keys, hash, before)) this.del(k);
    this.del(keys.patientOrder(this.#patientHash(before.patient), hash));
    for (const k of referenceKeys(keys, hash, before)) this.del(k);
    this.del(keys.order(hash));
    this.del(keys.upstreamItem(hash));
    this.#local.set(hash, null);
  }

  #orderHash(placer: string, issuer: string): string {
    return this.#repo.keys.hash('order', orderIdentity(placer, issuer));
  }

  #patientHash(p: PatientIdentifier): string {
    return this.#repo.keys.hash('patient', p.issuer, p.id);
  }

  async #ordersOf(p: PatientIdentifier): Promise<string[]> {
    const range = this.#repo.keys.patientOrdersRange(this.#patientHash(p));
    const fromStore = (await this.#repo.queue.keys(range)).map((k) => k.slice(k.lastIndexOf('\u0000') + 1));
    // Orders this same message added or moved under the patient are in #local only.
    const prefixHash = this.#patientHash(p);
    const result = new Set(fromStore);
    for (const [hash, o] of this.#local) {
      if (o === null) continue;
      if (this.#patientHash(o.patient) === prefixHash) result.add(hash);
      else result.delete(hash);
    }
    return [...result];
  }

  load(hash: string): Promise<Order | undefined> {
    return this.#load(hash);
  }

  write(hash: string, before: Order | undefined, after: Order): void {
    this.#write(hash, before, after);
  }

  async #load(hash: string): Promise<Order | undefined> {
    const local = this.#local.get(hash);
    if (local !== undefined) return local ?? undefined;
    const key = this.#repo.keys.order(hash);
    const sealed = await this.#repo.queue.get(key);
    if (sealed === undefined) return undefined;
    try {
      return JSON.parse(this.#repo.codec.open(key, sealed).toString('utf8')) as Order;
    } catch (cause) {
      throw new EdgeError('EDGE_STORE_DECRYPT_FAILED', `order record ${hash} cannot be read`, { cause });
    }
  }

  #write(hash: string, before: Order | undefined, after: Order): void {
    const keys = this.#repo.keys;
    if (before !== undefined) {
      for (const k of worklistKeys(keys, hash, before)) this.del(k);
      const oldP = this.#patientHash(before.patient);
      if (oldP !== this.#patientHash(after.patient)) this.del(keys.patientOrder(oldP, hash));
      for (const k of referenceKeys(keys, hash, before)) this.del(k);
    }
    for (const k of referenceKeys(keys, hash, after)) this.ops.push({ type: 'put', key: k, value: Buffer.alloc(0) });
    this.put(keys.order(hash), JSON.stringify(after));
    this.ops.push({ type: 'put', key: keys.patientOrder(this.#patientHash(after.patient), hash), value: Buffer.alloc(0) });
    if (WORKLIST_STATUSES.has(after.status)) {
      after.steps.forEach((step, i) => {
        const item: WorklistItem = { order: { ...after, steps: [] }, step };
        this.put(keys.worklist(step.startDate, step.stationAeTitle, step.modality, step.startTime, hash, i), JSON.stringify(item));
      });
    }
    this.#local.set(hash, after);
  }
}

/** Index entries by accession number and Study Instance UID (keyed hashes), for MPPS and image linking. */
function referenceKeys(keys: RecordKeys, hash: string, order: Order): string[] {
  const out: string[] = [];
  if (order.accessionNumber !== '') out.push(keys.reference(Prefix.orderByAccession, keys.hash('accession', order.accessionNumber), hash));
  // A linked downtime order is still found by the accession its images were taken under.
  const original = order.downtime?.original?.accessionNumber;
  if (original !== undefined && original !== '' && original !== order.accessionNumber) {
    out.push(keys.reference(Prefix.orderByAccession, keys.hash('accession', original), hash));
  }
  if (order.studyInstanceUid !== '') out.push(keys.reference(Prefix.orderByStudy, keys.hash('study', order.studyInstanceUid), hash));
  return out;
}

function worklistKeys(keys: RecordKeys, hash: string, order: Order): string[] {
  if (!WORKLIST_STATUSES.has(order.status)) return [];
  return order.steps.map((s, i) => keys.worklist(s.startDate, s.stationAeTitle, s.modality, s.startTime, hash, i));
}

/** A08 carries the patient's current demographics; fields the message leaves empty keep their value. */
function mergePatient(before: Patient, update: Patient): Patient {
  return {
    ...before,
    ...Object.fromEntries(Object.entries(update).filter(([, v]) => v !== '' && v !== undefined)),
    id: before.id,
    issuer: before.issuer,
  } as Patient;
}
