// The alert rules: each looks at audit records as they are recorded and says when something a security
// officer should look at happened, with the threshold, what it observed and the records that are its
// evidence. Rules keep only counters and sliding windows in memory; what they learn about a subject's
// normal behaviour (its baseline) is a small JSON document the engine saves in the store.
//
// Times are the records' own `at`, so a replayed trail gives the same alerts as the live one.
import type { AuditEvent, AuditParticipant } from '../core/audit.ts';
import type { Alert, AlertSubject } from '../core/incident.ts';
import type { WorkingHours } from '../core/working-hours.ts';

export interface ObservedRecord {
  readonly seq: number;
  readonly event: AuditEvent;
}

/**
 * What a rule says when it fires: the alert's explanation, without the engine's bookkeeping. The
 * evidence is asked for only when the engine has room for it (a rule above its threshold fires on every
 * record, and listing a window's records each time would cost more than the rule).
 */
export type RuleFiring = Pick<Alert, 'rule' | 'subject' | 'threshold' | 'observed'> & {
  readonly evidence: () => { readonly evidence: readonly number[]; readonly omitted: number };
};

export interface AlertRule {
  observe(record: ObservedRecord): RuleFiring | undefined;
}

export interface AlertRulesConfig {
  readonly massAccess: {
    readonly distinctPatients: number;
    readonly windowMinutes: number;
    /** Fire also when a subject touches more than this × its own baseline (0 = off). */
    readonly baselineFactor: number;
    /** The baseline rule needs at least this many distinct patients in the window (small numbers are noise). */
    readonly baselineMinPatients: number;
    readonly baselineDays: number;
  };
  readonly afterHours: {
    /** undefined = the rule is off. */
    readonly workingHours: WorkingHours | undefined;
    /** A subject with after-hours activity on at least this many of the baseline days is normal then. */
    readonly normalDays: number;
  };
  readonly knocking: { readonly refusals: number; readonly windowMinutes: number };
  readonly refusalBurst: { readonly refusals: number; readonly windowMinutes: number };
  readonly newMessageType: { readonly afterMessages: number };
  readonly securityEvents: boolean;
  /**
   * Days the rules that compare with a baseline (after hours, new message types, k × baseline) only
   * learn, counted from the first record they saw: on a new box everything is new.
   */
  readonly learningDays: number;
}

/** Evidence listed per alert; the rest is counted. */
export const MAX_EVIDENCE = 50;

const MINUTE = 60_000;
const DAY = 86_400_000;

/** What the rules learn, per subject key; saved by the engine and given back at start. */
export interface Baseline {
  version: 1;
  /** Day number (ms / DAY) of the first record the rules saw. */
  since?: number;
  subjects: Record<string, SubjectBaseline>;
}

/** Whether the rules are still only learning at `at` (and note the first day seen). */
function learning(b: Baseline, at: number, learningDays: number): boolean {
  const today = Math.floor(at / DAY);
  b.since ??= today;
  return today - b.since < learningDays;
}

export interface SubjectBaseline {
  /** [day number (ms / DAY), the highest distinct-patient count in any window that day]. */
  peaks: Array<[number, number]>;
  /** Day numbers with after-hours queries or views. */
  afterHoursDays: number[];
  /** HL7 message types seen from this sender, with counts. */
  messageTypes: Record<string, number>;
}

export function emptyBaseline(): Baseline {
  return { version: 1, subjects: {} };
}

export function subjectKey(s: AlertSubject): string {
  return `${s.kind}:${s.id}`;
}

/** The requestor of an event, if it is someone other than the box itself. */
export function requestorOf(event: AuditEvent): AuditParticipant | undefined {
  return event.participants.find((p) => p.requestor && p.kind !== 'system');
}

function subjectOf(p: AuditParticipant): AlertSubject {
  return { kind: p.kind, id: p.id };
}

function ofBaseline(b: Baseline, key: string): SubjectBaseline {
  return (b.subjects[key] ??= { peaks: [], afterHoursDays: [], messageTypes: {} });
}

/** The patients an event touched (the subject of the record, and everyone a query answer disclosed). */
export function patientsOf(event: AuditEvent): string[] {
  const out: string[] = [];
  if (event.patient !== undefined && event.patient.id !== '') out.push(`${event.patient.issuer}\u0000${event.patient.id}`);
  for (const p of event.disclosed?.patients ?? []) out.push(`${p.issuer}\u0000${p.id}`);
  return out;
}

/** Occurrences a record stands for (a coalesced summary counts every refusal it summarises). */
function occurrencesOf(event: AuditEvent): number {
  return 1 + (event.occurrences?.count ?? 0);
}

/** A window of (time, key, seq) entries with the distinct keys (and records) in it counted. */
class SlidingWindow {
  readonly #spanMs: number;
  // Parallel arrays, not an object per entry: a query answer adds one entry per patient it disclosed.
  #at: number[] = [];
  #key: string[] = [];
  #seq: number[] = [];
  #weight: number[] = [];
  #head = 0;
  readonly #counts = new Map<string, number>();
  #total = 0;
  /** Distinct records in the window (one record adds its entries together, so they are contiguous). */
  #records = 0;

  constructor(spanMs: number) {
    this.#spanMs = spanMs;
  }

  add(at: number, key: string, seq: number, weight = 1): void {
    const n = this.#seq.length;
    if (n === this.#head || this.#seq[n - 1] !== seq) this.#records++;
    this.#at.push(at);
    this.#key.push(key);
    this.#seq.push(seq);
    this.#weight.push(weight);
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#total += weight;
    if (this.#at[this.#head]! <= at - this.#spanMs) this.evict(at);
  }

  evict(now: number): void {
    const end = this.#at.length;
    while (this.#head < end && this.#at[this.#head]! <= now - this.#spanMs) {
      const i = this.#head++;
      const key = this.#key[i]!;
      const n = this.#counts.get(key)! - 1;
      if (n === 0) this.#counts.delete(key);
      else this.#counts.set(key, n);
      this.#total -= this.#weight[i]!;
      if (this.#head === end || this.#seq[this.#head] !== this.#seq[i]) this.#records--;
    }
    // Compact now and then, so a long-lived window does not keep its evicted head.
    if (this.#head > 4096 && this.#head * 2 > end) {
      this.#at = this.#at.slice(this.#head);
      this.#key = this.#key.slice(this.#head);
      this.#seq = this.#seq.slice(this.#head);
      this.#weight = this.#weight.slice(this.#head);
      this.#head = 0;
    }
  }

  get distinct(): number {
    return this.#counts.size;
  }

  get total(): number {
    return this.#total;
  }

  get empty(): boolean {
    return this.#head >= this.#seq.length;
  }

  /** Sequence numbers in the window, oldest first, without repeats: the first MAX_EVIDENCE, the rest counted. */
  evidence(): { evidence: number[]; omitted: number } {
    const seqs: number[] = [];
    for (let i = this.#head; i < this.#seq.length && seqs.length < MAX_EVIDENCE; i++) {
      const seq = this.#seq[i]!;
      if (seq !== seqs[seqs.length - 1]) seqs.push(seq);
    }
    return { evidence: seqs, omitted: this.#records - seqs.length };
  }
}

/** Windows per subject, dropped once empty (so a thousand one-off sources cost nothing later). */
class WindowsBySubject {
  readonly #spanMs: number;
  readonly #windows = new Map<string, SlidingWindow>();

  constructor(spanMs: number) {
    this.#spanMs = spanMs;
  }

  get(key: string, now: number): SlidingWindow {
    let w = this.#windows.get(key);
    if (w === undefined) {
      w = new SlidingWindow(this.#spanMs);
      this.#windows.set(key, w);
      if (this.#windows.size > 4096) this.#sweep(now);
    }
    return w;
  }

  #sweep(now: number): void {
    for (const [k, w] of this.#windows) {
      w.evict(now);
      if (w.empty) this.#windows.delete(k);
    }
  }
}

/** One peer or user touching more than N distinct patients in T minutes, or more than k × its own baseline. */
export class MassAccessRule implements AlertRule {
  readonly #c: AlertRulesConfig['massAccess'];
  readonly #baseline: Baseline;
  readonly #windows: WindowsBySubject;

  readonly #learningDays: number;

  constructor(config: AlertRulesConfig['massAccess'], learningDays: number, baseline: Baseline) {
    this.#c = config;
    this.#learningDays = learningDays;
    this.#baseline = baseline;
    this.#windows = new WindowsBySubject(config.windowMinutes * MINUTE);
  }

  observe({ seq, event }: ObservedRecord): RuleFiring | undefined {
    const who = requestorOf(event);
    // The RIS is the source of the orders, not someone reading them: its messages are not access.
    if (who === undefined || who.kind === 'hl7' || event.outcome !== 0) return undefined;
    if (event.patient === undefined && event.disclosed === undefined) return undefined;
    const key = `${who.kind}:${who.id}`;
    const w = this.#windows.get(key, event.at);
    let added = 0;
    if (event.patient !== undefined && event.patient.id !== '') {
      w.add(event.at, `${event.patient.issuer}\u0000${event.patient.id}`, seq);
      added++;
    }
    for (const p of event.disclosed?.patients ?? []) {
      w.add(event.at, `${p.issuer}\u0000${p.id}`, seq);
      added++;
    }
    if (added === 0) return undefined;
    const distinct = w.distinct;
    this.#notePeak(key, event.at, distinct);
    if (distinct <= this.#c.distinctPatients && (this.#c.baselineFactor === 0 || distinct < this.#c.baselineMinPatients)) return undefined;
    const subject = subjectOf(who);
    const usual = this.#usual(key, event.at);
    const span = `${this.#c.windowMinutes} min`;
    const observed = `${distinct} distinct patients in ${span}`;
    if (distinct > this.#c.distinctPatients) {
      return {
        rule: 'mass-access',
        subject,
        threshold: `more than ${this.#c.distinctPatients} distinct patients in ${span}`,
        observed,
        evidence: () => w.evidence(),
      };
    }
    if (
      this.#c.baselineFactor > 0 &&
      usual !== undefined &&
      distinct >= this.#c.baselineMinPatients &&
      distinct > this.#c.baselineFactor * usual &&
      !learning(this.#baseline, event.at, this.#learningDays)
    ) {
      return {
        rule: 'mass-access-baseline',
        subject,
        threshold: `more than ${this.#c.baselineFactor} × its usual daily peak of ${usual.toFixed(1)} distinct patients in ${span} (last ${this.#c.baselineDays} days)`,
        observed,
        evidence: () => w.evidence(),
      };
    }
    return undefined;
  }

  /** The mean of the subject's daily peaks over the baseline days before today; undefined under 3 days. */
  #usual(key: string, at: number): number | undefined {
    const today = Math.floor(at / DAY);
    const peaks = this.#baseline.subjects[key]?.peaks.filter(([d]) => d < today && d >= today - this.#c.baselineDays) ?? [];
    if (peaks.length < 3) return undefined;
    return peaks.reduce((s, [, n]) => s + n, 0) / peaks.length;
  }

  #notePeak(key: string, at: number, distinct: number): void {
    const b = ofBaseline(this.#baseline, key);
    const today = Math.floor(at / DAY);
    const last = b.peaks.at(-1);
    if (last !== undefined && last[0] === today) last[1] = Math.max(last[1], distinct);
    else {
      b.peaks.push([today, distinct]);
      const oldest = today - this.#c.baselineDays;
      while (b.peaks.length > 0 && b.peaks[0]![0] < oldest) b.peaks.shift();
    }
  }
}

/** Queries or views outside the working hours by a subject that normally has none then. */
export class AfterHoursRule implements AlertRule {
  readonly #c: AlertRulesConfig['afterHours'];
  readonly #baselineDays: number;
  readonly #learningDays: number;
  readonly #baseline: Baseline;

  constructor(config: AlertRulesConfig['afterHours'], baselineDays: number, learningDays: number, baseline: Baseline) {
    this.#c = config;
    this.#baselineDays = baselineDays;
    this.#learningDays = learningDays;
    this.#baseline = baseline;
  }

  observe({ seq, event }: ObservedRecord): RuleFiring | undefined {
    const hours = this.#c.workingHours;
    if (hours === undefined) return undefined;
    const who = requestorOf(event);
    if (who === undefined) return undefined;
    const isQueryOrView = event.eventId === 'Query' || (who.kind === 'user' && patientsOf(event).length > 0);
    if (!isQueryOrView || !hours.isAfterHours(event.at)) return undefined;
    const subject = subjectOf(who);
    const b = ofBaseline(this.#baseline, subjectKey(subject));
    const today = Math.floor(event.at / DAY);
    const earlier = b.afterHoursDays.filter((d) => d < today && d >= today - this.#baselineDays).length;
    if (b.afterHoursDays.at(-1) !== today) {
      b.afterHoursDays.push(today);
      while (b.afterHoursDays.length > 0 && b.afterHoursDays[0]! < today - this.#baselineDays) b.afterHoursDays.shift();
    }
    if (earlier >= this.#c.normalDays || learning(this.#baseline, event.at, this.#learningDays)) return undefined;
    return {
      rule: 'after-hours',
      subject,
      threshold: `no queries or views outside ${hours.text} unless usual (after-hours activity on at least ${this.#c.normalDays} of the last ${this.#baselineDays} days)`,
      observed: `${event.type} at ${new Date(event.at).toISOString()}; after-hours activity on ${earlier} earlier day(s)`,
      evidence: () => ({ evidence: [seq], omitted: 0 }),
    };
  }
}

const REFUSALS: ReadonlySet<string> = new Set([
  'dicom.association-rejected',
  'dicom.tls-handshake-failed',
  'dicom.connection-refused',
  'hl7.peer-refused',
  'hl7.sender-mismatch',
  'audit.pull-refused',
]);

/** Unknown AE titles, HL7 senders or certificates knocking from one address; and refusal bursts overall. */
export class RefusalRules implements AlertRule {
  readonly #knock: AlertRulesConfig['knocking'];
  readonly #burst: AlertRulesConfig['refusalBurst'];
  readonly #bySource: WindowsBySubject;
  readonly #all: SlidingWindow;

  constructor(knocking: AlertRulesConfig['knocking'], burst: AlertRulesConfig['refusalBurst']) {
    this.#knock = knocking;
    this.#burst = burst;
    this.#bySource = new WindowsBySubject(knocking.windowMinutes * MINUTE);
    this.#all = new SlidingWindow(burst.windowMinutes * MINUTE);
  }

  observe({ seq, event }: ObservedRecord): RuleFiring | undefined {
    if (!REFUSALS.has(event.type)) return undefined;
    const n = occurrencesOf(event);
    const from = event.participants.find((p) => p.requestor);
    const address = from?.address ?? 'unknown address';
    const w = this.#bySource.get(address, event.at);
    w.add(event.at, event.type, seq, n);
    this.#all.add(event.at, address, seq, n);
    if (w.total > this.#knock.refusals) {
      return {
        rule: 'unknown-peer-knocking',
        subject: { kind: 'address', id: address },
        threshold: `more than ${this.#knock.refusals} refusals of one source in ${this.#knock.windowMinutes} min`,
        observed: `${w.total} refusals (${from?.id ?? 'unidentified'}) in ${this.#knock.windowMinutes} min`,
        evidence: () => w.evidence(),
      };
    }
    if (this.#all.total > this.#burst.refusals) {
      return {
        rule: 'refusal-burst',
        subject: { kind: 'system', id: 'all listeners' },
        threshold: `more than ${this.#burst.refusals} refusals in ${this.#burst.windowMinutes} min`,
        observed: `${this.#all.total} refusals from ${this.#all.distinct} source(s) in ${this.#burst.windowMinutes} min`,
        evidence: () => this.#all.evidence(),
      };
    }
    return undefined;
  }
}

/** An HL7 message type never seen from a sender that has an established pattern. */
export class NewMessageTypeRule implements AlertRule {
  readonly #c: AlertRulesConfig['newMessageType'];
  readonly #learningDays: number;
  readonly #baseline: Baseline;

  constructor(config: AlertRulesConfig['newMessageType'], learningDays: number, baseline: Baseline) {
    this.#c = config;
    this.#learningDays = learningDays;
    this.#baseline = baseline;
  }

  observe({ seq, event }: ObservedRecord): RuleFiring | undefined {
    if (event.type !== 'hl7.order-committed' && event.type !== 'hl7.unsupported-message') return undefined;
    const who = requestorOf(event);
    const type = /^([A-Z0-9]{3}\^[A-Z0-9]{3})/.exec(event.detail ?? '')?.[1];
    if (who === undefined || type === undefined) return undefined;
    const subject = subjectOf(who);
    const b = ofBaseline(this.#baseline, subjectKey(subject));
    const before = Object.values(b.messageTypes).reduce((s, n) => s + n, 0);
    const seen = b.messageTypes[type] ?? 0;
    b.messageTypes[type] = seen + 1;
    if (seen > 0 || before < this.#c.afterMessages || learning(this.#baseline, event.at, this.#learningDays)) return undefined;
    return {
      rule: 'new-message-type',
      subject,
      threshold: `no message type the sender has not sent before (once it has sent ${this.#c.afterMessages})`,
      observed: `${type} first seen after ${before} message(s) of ${Object.keys(b.messageTypes).length - 1} other type(s)`,
      evidence: () => ({ evidence: [seq], omitted: 0 }),
    };
  }
}

/** Events that are alerts in themselves: break-glass, lockouts, firewall drift, safe mode, chain damage. */
const SECURITY_EVENTS =
  /^(network\.segmentation-drift|keys\.safe-mode|audit\.(chain-damaged|chain-truncated|records-damaged|signing-key-changed)|peer\.certificate-changed|.*break-glass.*|.*emergency-override-started|.*locked-out|.*lockout)$/;

export class SecurityEventRule implements AlertRule {
  observe({ seq, event }: ObservedRecord): RuleFiring | undefined {
    const id: string = event.eventId;
    if (id !== 'SecurityAlert' && id !== 'UserAuthentication') return undefined;
    if (!SECURITY_EVENTS.test(event.type) || /stopped|reviewed|released|restored/.test(event.type)) return undefined;
    // The box's own alarms are grouped per event type; a person's or peer's per who it was.
    const who = event.participants.find((p) => p.requestor && p.kind !== 'system');
    return {
      rule: 'security-event',
      subject: who === undefined ? { kind: 'system', id: event.type } : subjectOf(who),
      threshold: `every ${event.type}`,
      observed: event.detail === undefined ? event.type : `${event.type}: ${event.detail.slice(0, 200)}`,
      evidence: () => ({ evidence: [seq], omitted: 0 }),
    };
  }
}

export function alertRules(config: AlertRulesConfig, baseline: Baseline): AlertRule[] {
  const rules: AlertRule[] = [
    new MassAccessRule(config.massAccess, config.learningDays, baseline),
    new AfterHoursRule(config.afterHours, config.massAccess.baselineDays, config.learningDays, baseline),
    new RefusalRules(config.knocking, config.refusalBurst),
    new NewMessageTypeRule(config.newMessageType, config.learningDays, baseline),
  ];
  if (config.securityEvents) rules.push(new SecurityEventRule());
  return rules;
}
