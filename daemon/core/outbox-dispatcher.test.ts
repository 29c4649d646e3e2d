import test from 'ava';
import type { AuditEvent } from './audit.ts';
import { silentLogger } from './log.ts';
import type { ErrorCode } from './errors.ts';
import { type BackoffPolicy, backoffDelay, decide, deliverInOrder, OutboxDispatcher, type RefusalBound } from './outbox-dispatcher.ts';
import type { DeadLetter, DeliveryResult, NewOutboxEntry, OutboxEntry, OutboxRepository, OutboxSender, SettledEntry } from './outbox.ts';

/** An in-memory OutboxRepository with the store's semantics. */
class MemoryOutbox implements OutboxRepository {
  readonly q = new Map<string, OutboxEntry>();
  readonly dead = new Map<string, DeadLetter>();
  #n = 0;
  #listeners: Array<(d: string) => void> = [];
  async enqueue(entries: readonly NewOutboxEntry[]) {
    const made = entries.map((e) => ({ ...e, id: String(++this.#n).padStart(8, '0'), enqueuedAt: 0, attempts: 0, nextAttemptAt: 0 }));
    for (const e of made) this.q.set(e.id, e);
    for (const l of this.#listeners) l(entries[0]!.destination);
    return made;
  }
  queued(d: string) {
    return [...this.q.values()].filter((e) => e.destination === d).sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  destinations() {
    return [...new Set([...this.q.values()].map((e) => e.destination))];
  }
  deadLetters(d?: string) {
    return [...this.dead.values()].filter((x) => d === undefined || x.entry.destination === d);
  }
  async settle(outcomes: readonly SettledEntry[]) {
    for (const o of outcomes) {
      if (o.outcome === 'delivered') this.q.delete(o.entry.id);
      else if (o.outcome === 'retry')
        this.q.set(o.entry.id, { ...o.entry, attempts: o.entry.attempts + 1, nextAttemptAt: o.nextAttemptAt, lastError: o.error });
      else {
        this.q.delete(o.entry.id);
        this.dead.set(o.entry.id, { entry: o.entry, reason: o.error, deadAt: 0 });
      }
    }
  }
  async requeue(sel: { id: string } | { destination: string }, now: number) {
    const picked = [...this.dead.values()].filter((d) => ('id' in sel ? d.entry.id === sel.id : d.entry.destination === sel.destination));
    for (const d of picked) {
      this.dead.delete(d.entry.id);
      this.q.set(d.entry.id, { ...d.entry, attempts: 0, nextAttemptAt: now });
      for (const l of this.#listeners) l(d.entry.destination);
    }
    return picked.length;
  }
  async hurry(d: string, now: number) {
    let n = 0;
    for (const e of this.queued(d)) {
      this.q.set(e.id, { ...e, nextAttemptAt: now });
      n++;
    }
    for (const l of this.#listeners) l(d);
    return n;
  }
  async discard(id: string) {
    return this.dead.delete(id);
  }
  onChange(l: (d: string) => void) {
    this.#listeners.push(l);
  }
}

const err = (code: ErrorCode, peerStatus?: string) => ({
  code,
  ...(peerStatus === undefined ? {} : { peerStatus }),
  message: code,
  at: Date.now(),
});

function dispatcher(
  repo: OutboxRepository,
  sender: OutboxSender,
  audit: AuditEvent[] = [],
  over: Partial<{ batchSize: number; concurrency: number; backoff: BackoffPolicy; refusalBound: RefusalBound }> = {},
) {
  return new OutboxDispatcher({
    repository: repo,
    audit: { record: (e) => audit.push(e) },
    logger: silentLogger,
    destinations: [
      {
        sender,
        batchSize: over.batchSize ?? 10,
        concurrency: over.concurrency ?? 1,
        deliveryTimeoutMs: 2000,
        backoff: over.backoff ?? { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2, jitter: 0.5 },
        downAfterFailures: 2,
        ...(over.refusalBound === undefined ? {} : { refusalBound: over.refusalBound }),
      },
    ],
  });
}

function until(cond: () => boolean, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() - start > ms) reject(new Error('condition not met in time'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

test('backoff grows exponentially, is capped and jittered within [1-jitter, 1] of the delay', (t) => {
  const p = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.5 };
  t.is(
    backoffDelay(1, p, () => 1),
    100,
  );
  t.is(
    backoffDelay(3, p, () => 1),
    400,
  );
  t.is(
    backoffDelay(10, p, () => 1),
    1000,
  );
  t.is(
    backoffDelay(10, p, () => 0),
    500,
  );
});

test('an outage: nothing lost, per-key order kept, circuit goes down then up', async (t) => {
  const repo = new MemoryOutbox();
  let up = false;
  const received: Array<[string, number]> = [];
  const sender: OutboxSender = {
    destination: 'ris',
    deliver: async (entries, signal) =>
      deliverInOrder(entries, signal, async (e) => {
        if (!up) return { outcome: 'failed', error: err('EDGE_HL7_OUTBOUND_CONNECT'), stopBatch: true };
        received.push([e.orderingKey, (e.payload as { n: number }).n]);
        return { outcome: 'delivered' };
      }),
  };
  const audit: AuditEvent[] = [];
  const d = dispatcher(repo, sender, audit, { batchSize: 7, concurrency: 3 });
  d.start();
  for (let n = 0; n < 60; n++) await repo.enqueue([{ destination: 'ris', orderingKey: `k${n % 10}`, kind: 'test', payload: { n } }]);
  await until(() => d.status()[0]!.state === 'down');
  up = true;
  await until(() => repo.q.size === 0);
  await until(() => d.status()[0]!.state === 'up');
  await d.stop(1000);
  t.is(received.length, 60);
  for (let k = 0; k < 10; k++) {
    const ns = received.filter(([key]) => key === `k${k}`).map(([, n]) => n);
    t.deepEqual(
      ns,
      [...ns].sort((a, b) => a - b),
      `key k${k} in order`,
    );
    t.is(ns.length, 6);
  }
  t.true(audit.some((e) => e.type === 'outbox.destination-down'));
  t.true(audit.some((e) => e.type === 'outbox.destination-up'));
});

test('a rejection dead-letters the entry with the reason; retry-one and discard are audited', async (t) => {
  const repo = new MemoryOutbox();
  let rejectNext = true;
  const sender: OutboxSender = {
    destination: 'ris',
    deliver: async (entries, signal) =>
      deliverInOrder(entries, signal, async (): Promise<DeliveryResult> => {
        if (rejectNext) {
          rejectNext = false;
          return { outcome: 'failed', error: err('EDGE_HL7_OUTBOUND_REJECTED', 'AR') };
        }
        return { outcome: 'delivered' };
      }),
  };
  const audit: AuditEvent[] = [];
  const d = dispatcher(repo, sender, audit);
  d.start();
  const [first] = await repo.enqueue([
    { destination: 'ris', orderingKey: 'k', kind: 'test', payload: {} },
    { destination: 'ris', orderingKey: 'k', kind: 'test', payload: {} },
  ]);
  await until(() => repo.q.size === 0);
  t.deepEqual(
    d.deadLetters().map((x) => [x.id, x.reason.code, x.reason.peerStatus]),
    [[first!.id, 'EDGE_HL7_OUTBOUND_REJECTED', 'AR']],
  );
  const actor = { kind: 'user' as const, id: 'alice', requestor: true };
  await d.retryOne(first!.id, actor);
  await until(() => repo.q.size === 0 && repo.dead.size === 0);
  rejectNext = true;
  const [third] = await repo.enqueue([{ destination: 'ris', orderingKey: 'k', kind: 'test', payload: {} }]);
  await until(() => repo.dead.size === 1);
  await d.discard(third!.id, actor);
  await t.throwsAsync(d.discard(third!.id, actor), { code: 'EDGE_OUTBOX_NOT_FOUND' } as never);
  await d.stop(1000);
  t.deepEqual(
    audit.map((e) => e.type),
    ['outbox.dead-lettered', 'outbox.retry-one', 'outbox.dead-lettered', 'outbox.discarded'],
  );
  t.false(JSON.stringify(d.list('ris')).includes('payload'));
});

test('deliverInOrder stops a key at its first failure but lets other keys go on', async (t) => {
  const entries = ['a', 'a', 'b'].map((k, i) => ({
    id: String(i),
    destination: 'x',
    orderingKey: k,
    kind: 't',
    payload: i,
    enqueuedAt: 0,
    attempts: 0,
    nextAttemptAt: 0,
  }));
  const tried: string[] = [];
  const results = await deliverInOrder(entries, new AbortController().signal, async (e) => {
    tried.push(e.id);
    return e.id === '0' ? { outcome: 'failed', error: err('EDGE_HL7_OUTBOUND_CONNECT') } : { outcome: 'delivered' };
  });
  t.deepEqual(tried, ['0', '2']);
  t.deepEqual(results.map(decide), ['retry', 'retry', 'delivered']);
});

test('an entry the peer keeps refusing backs off alone, the destination stays reachable for the others, and it dead-letters at its bound', async (t) => {
  const repo = new MemoryOutbox();
  const attempts = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  const sender: OutboxSender = {
    destination: 'pacs',
    deliver: async (entries) =>
      entries.map((e): DeliveryResult => {
        attempts.set(e.orderingKey, (attempts.get(e.orderingKey) ?? 0) + 1);
        if (e.orderingKey === 'stuck')
          return {
            outcome: 'failed',
            error: { code: 'EDGE_STORE_SCU_REFUSED', peerStatus: '0xa700', message: 'PACS answered 0xa700', at: Date.now() },
            reachedPeer: true,
          };
        deliveredAt.set(e.orderingKey, Date.now());
        return { outcome: 'delivered' };
      }),
  };
  const audit: AuditEvent[] = [];
  // A long back-off: were the refusals counted against the destination, the later keys would wait for it.
  const d = dispatcher(repo, sender, audit, {
    backoff: { initialDelayMs: 300, maxDelayMs: 2000, multiplier: 2, jitter: 0 },
    refusalBound: { maxAttempts: 3, maxAgeMs: 60_000 },
  });
  d.start();
  await repo.enqueue([{ destination: 'pacs', orderingKey: 'stuck', kind: 'dicom-instance', payload: {} }]);
  await until(() => attempts.get('stuck') === 2);
  const sentAt = Date.now();
  await repo.enqueue([1, 2, 3].map((i) => ({ destination: 'pacs', orderingKey: `study${i}`, kind: 'dicom-instance', payload: {} })));
  await until(() => deliveredAt.size === 3);
  t.true(Math.max(...deliveredAt.values()) - sentAt < 400, 'the other studies waited for the refused one');
  t.not(d.status()[0]!.state, 'down');
  await until(() => repo.dead.size === 1);
  await d.stop(1000);
  t.is(attempts.get('stuck'), 3);
  const dead = d.deadLetters()[0]!;
  t.is(dead.reason.code, 'EDGE_STORE_SCU_REFUSED');
  t.is(dead.reason.peerStatus, '0xa700');
  t.regex(dead.reason.message, /PACS answered 0xa700; dead letter after 3 refusals/);
  t.deepEqual(
    audit.map((e) => e.type),
    ['outbox.dead-lettered'],
  );
});

test('attempts that reached nobody never dead-letter an entry, whatever the bound', async (t) => {
  const repo = new MemoryOutbox();
  let calls = 0;
  const sender: OutboxSender = {
    destination: 'pacs',
    deliver: async (entries) => {
      calls++;
      return entries.map((): DeliveryResult => ({ outcome: 'failed', error: err('EDGE_STORE_SCU_FAILED') }));
    },
  };
  const d = dispatcher(repo, sender, [], { refusalBound: { maxAttempts: 1, maxAgeMs: 1 } });
  d.start();
  await repo.enqueue([{ destination: 'pacs', orderingKey: 'k', kind: 'dicom-instance', payload: {} }]);
  await until(() => calls >= 4);
  await d.stop(1000);
  t.is(repo.dead.size, 0);
  t.is(repo.q.size, 1);
});

test("the dispatcher decides on the code's kind: permanent dead-letters, transient and ambiguous are retried", async (t) => {
  const repo = new MemoryOutbox();
  const tries = new Map<string, number>();
  // What each key's first attempt fails with; the second attempt of a retried entry is delivered.
  const first: Record<string, ErrorCode> = {
    refused: 'EDGE_STORE_SCU_REJECTED',
    unacknowledged: 'EDGE_HL7_OUTBOUND_TIMEOUT',
    unreachable: 'EDGE_STORE_SCU_FAILED',
  };
  const sender: OutboxSender = {
    destination: 'pacs',
    deliver: async (entries) =>
      entries.map((e): DeliveryResult => {
        const n = (tries.get(e.orderingKey) ?? 0) + 1;
        tries.set(e.orderingKey, n);
        return n === 1 ? { outcome: 'failed', error: err(first[e.orderingKey]!) } : { outcome: 'delivered' };
      }),
  };
  const audit: AuditEvent[] = [];
  const d = dispatcher(repo, sender, audit, { backoff: { initialDelayMs: 20, maxDelayMs: 50, multiplier: 2, jitter: 0 } });
  d.start();
  await repo.enqueue(Object.keys(first).map((k) => ({ destination: 'pacs', orderingKey: k, kind: 'dicom-instance', payload: {} })));
  await until(() => tries.get('unacknowledged') === 2 && tries.get('unreachable') === 2);
  await d.stop(1000);
  t.is(tries.get('refused'), 1, 'a permanent failure is not tried again');
  t.deepEqual(
    [...repo.dead.values()].map((x) => [x.entry.orderingKey, x.reason.code]),
    [['refused', 'EDGE_STORE_SCU_REJECTED']],
  );
  t.deepEqual(repo.queued('pacs'), []);
  t.deepEqual(
    audit.map((e) => e.type),
    ['outbox.dead-lettered'],
  );
  t.is(decide({ outcome: 'failed', error: err('EDGE_HL7_OUTBOUND_ACK_INVALID') }), 'retry');
  t.is(decide({ outcome: 'failed', error: err('EDGE_HL7_OUTBOUND_REJECTED', 'AE') }), 'rejected');
});
