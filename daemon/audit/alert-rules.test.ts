import test from 'ava';
import type { AuditEvent, AuditParticipant } from '../core/audit.ts';
import type { Alert } from '../core/incident.ts';
import { WorkingHours } from '../core/working-hours.ts';
import { AlertEngine } from './alert-engine.ts';
import { type AlertRulesConfig, type Baseline, alertRules, emptyBaseline } from './alert-rules.ts';

const MIN = 60_000;
const DAY = 86_400_000;
// Monday 2026-11-02 00:00 UTC; the tests' working hours are UTC.
const MONDAY = Date.UTC(2026, 10, 2);

function config(over: Partial<AlertRulesConfig> = {}): AlertRulesConfig {
  return {
    massAccess: { distinctPatients: 50, windowMinutes: 10, baselineFactor: 5, baselineMinPatients: 30, baselineDays: 30 },
    afterHours: { workingHours: WorkingHours.parse('Mon-Fri 07:00-19:00, Sat 08:00-12:00', 'UTC'), normalDays: 3 },
    knocking: { refusals: 20, windowMinutes: 5 },
    refusalBurst: { refusals: 500, windowMinutes: 5 },
    newMessageType: { afterMessages: 100 },
    securityEvents: true,
    learningDays: 7,
    ...over,
  };
}

const modality = (ae: string): AuditParticipant => ({ kind: 'dicom', id: ae, address: '10.1.0.5', requestor: true });
const box: AuditParticipant = { kind: 'dicom', id: 'EDGE', requestor: false };
const ris: AuditParticipant = { kind: 'hl7', id: 'ris', address: '10.2.0.1', requestor: true };

function query(ae: string, at: number, patients: readonly string[]): AuditEvent {
  return {
    eventId: 'Query',
    type: 'worklist.query',
    action: 'E',
    outcome: 0,
    at,
    participants: [modality(ae), box],
    disclosed: { patients: patients.map((id) => ({ id, issuer: 'H' })), accessionNumbers: [], omitted: 0 },
  };
}

function stored(ae: string, at: number, patient: string): AuditEvent {
  return {
    eventId: 'DicomInstancesTransferred',
    type: 'dicom.instance-stored',
    action: 'C',
    outcome: 0,
    at,
    participants: [modality(ae), box],
    patient: { id: patient, issuer: 'H' },
    detail: '1.2.840.10008.5.1.4.1.1.2; 524288 bytes',
  };
}

function order(at: number, patient: string, type = 'ORM^O01'): AuditEvent {
  return {
    eventId: 'ProcedureRecord',
    type: 'hl7.order-committed',
    action: 'C',
    outcome: 0,
    at,
    participants: [ris],
    patient: { id: patient, issuer: 'H' },
    detail: `${type} new-order; 1 worklist item(s) changed`,
  };
}

function refusal(address: string, at: number, occurrences = 0): AuditEvent {
  return {
    eventId: 'SecurityAlert',
    type: 'dicom.tls-handshake-failed',
    action: 'E',
    outcome: 4,
    at,
    participants: [{ kind: 'dicom', id: 'unknown', address, requestor: true }],
    detail: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    ...(occurrences === 0 ? {} : { occurrences: { count: occurrences, firstAt: at, lastAt: at } }),
  };
}

/** An engine over the rules, its raised and repeated alerts collected. */
function harness(c = config(), baseline: Baseline = emptyBaseline(), groupMs = 15 * MIN) {
  const raised: Alert[] = [];
  const repeated: Alert[] = [];
  let seq = 0;
  let now = MONDAY;
  const engine = new AlertEngine({
    rules: alertRules(c, baseline),
    groupMs,
    raised: (a) => {
      raised.push(a);
      return ++seq;
    },
    repeated: (a) => void repeated.push(a),
    now: () => now,
  });
  const feed = (e: AuditEvent): number => {
    now = e.at;
    const s = ++seq;
    engine.observe({ seq: s, event: e });
    return s;
  };
  return { engine, raised, repeated, feed, baseline };
}

/**
 * One ordinary department day: 10 modalities, each scoped to its own ~15 patients, querying every 5 min
 * during working hours, storing images and an order per patient from the RIS; one night-shift CT (CT10)
 * queries around the clock.
 */
function normalDay(feed: (e: AuditEvent) => number, day: number): void {
  const start = MONDAY + day * DAY;
  for (let m = 0; m < 10; m++) {
    const ae = `MOD${m}`;
    const patients = Array.from({ length: 15 }, (_, i) => `D${day}-M${m}-P${i}`);
    for (const p of patients) feed(order(start + 6 * 60 * MIN + m * MIN, p));
    const from = m === 9 ? 0 : 7 * 60;
    const to = m === 9 ? 24 * 60 : 19 * 60;
    for (let t = from; t < to; t += 5) {
      // A modality sees the patients scheduled so far today (its worklist fills through the day).
      const seen = patients.slice(0, 1 + Math.floor(((t - from) / (to - from)) * patients.length));
      feed(query(m === 9 ? 'CT10' : ae, start + t * MIN + m * 1000, seen));
      if (t % 60 === 0) feed(stored(m === 9 ? 'CT10' : ae, start + t * MIN + m * 1000 + 500, seen.at(-1)!));
    }
  }
}

test('a normal week raises no alert; then a worklist sweep raises mass-access with the queries as evidence', (t) => {
  const h = harness();
  // Mon..Fri of week one learns the baseline (CT10's night shift included).
  for (let d = 0; d < 5; d++) normalDay(h.feed, d);
  t.deepEqual(
    h.raised.map((a) => `${a.rule} ${a.subject.id}`),
    [],
    'false positives on a normal week',
  );
  // Monday of week two at 10:00: MOD3 sweeps the whole worklist, 100 wildcard queries in 2 minutes.
  const at = MONDAY + 7 * DAY + 10 * 60 * MIN;
  const everyone = Array.from({ length: 150 }, (_, i) => `W-P${i}`);
  const seqs: number[] = [];
  for (let q = 0; q < 100; q++) seqs.push(h.feed(query('MOD3', at + q * 1200, everyone.slice(0, 60 + q))));
  const sweep = h.raised.filter((a) => a.subject.id === 'MOD3');
  t.is(sweep.length, 1, 'one alert, the repeats grouped into it');
  t.is(sweep[0]!.rule, 'mass-access');
  t.is(sweep[0]!.evidence[0], seqs[0], 'the first query is the first evidence');
  t.regex(sweep[0]!.observed, /^6\d distinct patients in 10 min$/);
  t.is(h.engine.list().find((a) => a.subject.id === 'MOD3')!.count, 100);
});

test('mass access against the subject’s own baseline, below the absolute threshold', (t) => {
  const h = harness(
    config({ massAccess: { distinctPatients: 1000, windowMinutes: 10, baselineFactor: 3, baselineMinPatients: 20, baselineDays: 30 } }),
  );
  for (let d = 0; d < 5; d++) normalDay(h.feed, d);
  t.is(h.raised.length, 0);
  const at = MONDAY + 8 * DAY + 10 * 60 * MIN;
  h.feed(
    query(
      'MOD1',
      at,
      Array.from({ length: 80 }, (_, i) => `X${i}`),
    ),
  );
  t.deepEqual(
    h.raised.map((a) => a.rule),
    ['mass-access-baseline'],
  );
  t.regex(h.raised[0]!.threshold, /more than 3 × its usual daily peak of 15\.0/);
});

test('the RIS sending many orders is not access', (t) => {
  const h = harness();
  for (let i = 0; i < 500; i++) h.feed(order(MONDAY + 8 * 60 * MIN + i * 100, `P${i}`));
  t.is(h.raised.length, 0);
});

test('after hours: a query at 23:00 by a modality that never works then raises one; a night-shift modality does not', (t) => {
  const h = harness();
  for (let d = 0; d < 5; d++) normalDay(h.feed, d);
  const night = MONDAY + 7 * DAY + 23 * 60 * MIN;
  h.feed(query('MOD2', night, ['N1']));
  h.feed(query('MOD2', night + 5 * MIN, ['N1']));
  h.feed(query('CT10', night, ['N2']));
  t.deepEqual(
    h.raised.map((a) => `${a.rule} ${a.subject.id}`),
    ['after-hours MOD2'],
  );
  t.regex(h.raised[0]!.observed, /worklist\.query at 2026-11-09T23:00:00\.000Z; after-hours activity on 0 earlier day/);
});

test('a stranger certificate knocking 50 times raises one alert, grouped, counting coalesced occurrences', (t) => {
  const h = harness();
  const at = MONDAY + 9 * 60 * MIN;
  // The audit coalescer records the first refusal, then summaries.
  h.feed(refusal('10.9.9.9', at));
  for (let i = 0; i < 7; i++) h.feed(refusal('10.9.9.9', at + (i + 1) * 10_000, 6));
  const alerts = h.engine.list();
  t.is(alerts.length, 1);
  t.is(alerts[0]!.rule, 'unknown-peer-knocking');
  t.deepEqual(alerts[0]!.subject, { kind: 'address', id: '10.9.9.9' });
  t.is(alerts[0]!.observed, '50 refusals (unknown) in 5 min', 'the latest observation');
  t.true(alerts[0]!.count > 1, 'repeats grouped');
  t.is(alerts[0]!.evidence.length, 8, 'every record of the window is evidence');
});

test('an HL7 message type never seen from an established sender', (t) => {
  const h = harness();
  for (let i = 0; i < 150; i++) h.feed(order(MONDAY + i * 1000, `P${i}`));
  t.is(h.raised.length, 0, 'the first types of a new sender are learned, not alerted');
  h.feed(order(MONDAY + DAY, 'P0', 'ADT^A04'));
  t.is(h.raised.length, 0, 'learning: a new type in the first week is learned too');
  h.feed(order(MONDAY + 8 * DAY, 'P1', 'ADT^A08'));
  h.feed(order(MONDAY + 8 * DAY + 1000, 'P2', 'ADT^A08'));
  t.deepEqual(
    h.raised.map((a) => `${a.rule} ${a.subject.id}`),
    ['new-message-type ris'],
  );
});

test('security events are alerts in themselves; their all-clear is not', (t) => {
  const h = harness();
  const sa = (type: string): AuditEvent =>
    ({
      eventId: 'SecurityAlert',
      type,
      action: 'E',
      outcome: 8,
      at: MONDAY,
      participants: [{ kind: 'system', id: 'edge', requestor: false }],
      detail: 'x',
    }) as unknown as AuditEvent;
  h.feed(sa('network.segmentation-drift'));
  h.feed(sa('network.segmentation-restored'));
  h.feed(sa('keys.safe-mode'));
  h.feed(sa('alert.raised'));
  t.deepEqual(
    h.raised.map((a) => a.observed.split(':')[0]),
    ['network.segmentation-drift', 'keys.safe-mode'],
  );
});

test('acknowledged alerts close; the rule firing again raises a new one; repeats are recorded once per group interval', (t) => {
  const h = harness(config(), emptyBaseline(), 60_000);
  const at = MONDAY + 9 * 60 * MIN;
  const all = Array.from({ length: 60 }, (_, i) => `P${i}`);
  h.feed(query('MOD1', at, all));
  for (let i = 1; i <= 5; i++) h.feed(query('MOD1', at + i * 20_000, all));
  t.is(h.raised.length, 1);
  t.is(h.repeated.length, 1, 'five repeats over 100 s with a 60 s interval: one repeat record');
  const first = h.raised[0]!;
  t.is(h.engine.acknowledge(first.id, 'alice', 'asked the CT team: a misconfigured query; fixed')?.state, 'acknowledged');
  h.feed(query('MOD1', at + 200_000, all));
  t.is(h.raised.length, 2);
  t.is(h.engine.openCount, 1);
  t.is(h.engine.acknowledge('no-such-alert', 'alice', 'x'), undefined);
});

test('working hours: parse errors name the part; spans, days and time zones', (t) => {
  t.throws(() => WorkingHours.parse('Mon-Fri 7-19'), { message: /"Mon-Fri 7-19" is not like "Mon-Fri 07:00-19:00"/ });
  t.throws(() => WorkingHours.parse('Mon-Fri 19:00-07:00'), { message: /must run forward/ });
  t.throws(() => WorkingHours.parse('Mon-Fri 07:00-19:00', 'Mars/Olympus'), { message: /not a time zone/ });
  const h = WorkingHours.parse('Mon-Fri 07:00-19:00, Sat 08:00-12:00', 'Europe/Berlin');
  t.false(h.isAfterHours(Date.UTC(2026, 10, 2, 8, 0)), 'Monday 09:00 in Berlin');
  t.true(h.isAfterHours(Date.UTC(2026, 10, 2, 18, 30)), 'Monday 19:30 in Berlin');
  t.false(h.isAfterHours(Date.UTC(2026, 10, 7, 10, 0)), 'Saturday 11:00');
  t.true(h.isAfterHours(Date.UTC(2026, 10, 8, 10, 0)), 'Sunday');
  const wrap = WorkingHours.parse('Fri-Mon 00:00-24:00', 'UTC');
  t.false(wrap.isAfterHours(Date.UTC(2026, 10, 8, 3, 0)), 'a day range may wrap the week');
  t.true(wrap.isAfterHours(Date.UTC(2026, 10, 4, 3, 0)), 'Wednesday');
});
