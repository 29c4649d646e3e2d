import test from 'ava';
import type { AuditEvent } from './audit.ts';
import { auditEvent, securityAlert } from './audit-event-builders.ts';
import { AuditCoalescer, OTHER_SOURCES } from './audit-coalescer.ts';

const TYPES = new Set(['dicom.tls-handshake-failed', 'hl7.peer-refused']);

function refusal(
  address: string,
  reason = 'ECONNRESET',
  type: 'dicom.tls-handshake-failed' | 'hl7.peer-refused' = 'dicom.tls-handshake-failed',
  at = 0,
): AuditEvent {
  return securityAlert(type, [{ kind: 'dicom', id: 'unknown', address, requestor: true }], reason, at);
}

function setup(maxKeys = 100) {
  let clock = 1_000_000;
  const recorded: AuditEvent[] = [];
  const c = new AuditCoalescer({ sink: { record: (e) => recorded.push(e) }, types: TYPES, intervalMs: 60_000, maxKeys, now: () => clock });
  return {
    c,
    recorded,
    advance: (ms: number) => (clock += ms),
    get now() {
      return clock;
    },
  };
}

const total = (events: readonly AuditEvent[]): number => events.reduce((n, e) => n + (e.occurrences?.count ?? 1), 0);

test('the first occurrence is recorded at once, repeats within the interval become one summary', (t) => {
  const s = setup();
  s.c.record(refusal('10.0.0.1'));
  t.is(s.recorded.length, 1, 'visible immediately');
  const firstRepeat = s.advance(10);
  for (let i = 0; i < 999; i++) {
    s.c.record(refusal('10.0.0.1'));
    s.advance(10);
  }
  const lastRepeat = s.now - 10;
  t.is(s.recorded.length, 1, 'repeats are counted, not recorded');
  s.advance(60_000);
  s.c.flushDue();
  t.is(s.recorded.length, 2);
  const summary = s.recorded[1]!;
  t.deepEqual(summary.occurrences, { count: 999, firstAt: firstRepeat, lastAt: lastRepeat });
  t.is(summary.type, 'dicom.tls-handshake-failed');
  t.is(summary.detail, 'ECONNRESET', 'the reason is part of the summary (the key can be read back)');
  t.is(summary.participants[0]!.address, '10.0.0.1');
  t.is(summary.at, s.now);
  t.is(total(s.recorded), 1000);
  t.is(s.c.trackedKeys, 0, 'the key is forgotten after its summary');
});

test('each source and reason has its own key; other event types pass straight through', (t) => {
  const s = setup();
  for (let i = 0; i < 5; i++) {
    s.c.record(refusal('10.0.0.1'));
    s.c.record(refusal('10.0.0.2'));
    s.c.record(refusal('10.0.0.1', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'));
    s.c.record(refusal('10.0.0.1', 'ECONNRESET', 'hl7.peer-refused'));
    s.c.record(
      auditEvent('worklist.query', {
        at: 0,
        participants: [{ kind: 'dicom', id: 'CT01', address: '10.0.0.1', requestor: true }],
        detail: 'ECONNRESET',
      }),
    );
  }
  t.is(s.recorded.length, 4 + 5, 'four firsts, five pass-throughs');
  s.c.stop();
  t.is(s.recorded.length, 13, 'four summaries on stop');
  t.deepEqual(
    s.recorded.filter((e) => e.occurrences !== undefined).map((e) => e.occurrences!.count),
    [4, 4, 4, 4],
  );
  t.is(total(s.recorded.filter((e) => e.type !== 'worklist.query')), 20);
});

test('a key that did not repeat writes no summary, and a repeat after the interval is a new first', (t) => {
  const s = setup();
  s.c.record(refusal('10.0.0.1'));
  s.advance(60_000);
  s.c.flushDue();
  t.is(s.recorded.length, 1);
  s.c.record(refusal('10.0.0.1'));
  t.is(s.recorded.length, 2);
  t.is(s.recorded[1]!.occurrences, undefined);
});

test('intervals end per key, not all at once', (t) => {
  const s = setup();
  s.c.record(refusal('10.0.0.1'));
  s.c.record(refusal('10.0.0.1'));
  s.advance(30_000);
  s.c.record(refusal('10.0.0.2'));
  s.c.record(refusal('10.0.0.2'));
  s.advance(30_000);
  s.c.flushDue();
  t.deepEqual(
    s.recorded.filter((e) => e.occurrences).map((e) => e.participants[0]!.address),
    ['10.0.0.1'],
  );
  s.advance(30_000);
  s.c.flushDue();
  t.deepEqual(
    s.recorded.filter((e) => e.occurrences).map((e) => e.participants[0]!.address),
    ['10.0.0.1', '10.0.0.2'],
  );
});

test('beyond the key cap, new sources share one "other sources" key per type and memory stays bounded', (t) => {
  const s = setup(10);
  for (let i = 0; i < 10_000; i++) s.c.record(refusal(`10.0.${i >> 8}.${i & 255}`));
  t.is(s.c.trackedKeys, 11, 'ten keys and the overflow key');
  t.is(s.recorded.length, 11, 'the first ten sources and the first overflow');
  s.advance(60_000);
  s.c.flushDue();
  const summary = s.recorded.at(-1)!;
  t.is(summary.participants[0]!.id, OTHER_SOURCES);
  t.is(summary.participants[0]!.address, undefined);
  t.is(summary.occurrences!.count, 10_000 - 11);
  t.regex(summary.detail!, /beyond the 10 tracked.*10\.0\.0\.10/);
  t.is(total(s.recorded), 10_000);
});

test('stop writes every open summary and later events pass straight through', (t) => {
  const s = setup();
  for (let i = 0; i < 3; i++) s.c.record(refusal('10.0.0.1'));
  s.c.stop();
  t.is(s.recorded.at(-1)!.occurrences!.count, 2);
  s.c.record(refusal('10.0.0.1'));
  t.is(s.recorded.length, 3);
  t.is(s.recorded[2]!.occurrences, undefined);
});
