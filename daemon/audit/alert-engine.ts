// Runs the alert rules over the audit records as they are recorded and keeps the alerts: one open alert
// per rule and subject, repeats grouped into it (counted, the latest observation kept, a repeat record at
// most once per grouping interval), until a person acknowledges it. The engine never touches the disk:
// the flow records the alert events, saves changed alerts and the rules' baseline.
import { randomUUID } from 'node:crypto';
import type { Alert, AlertRuleName } from '../core/incident.ts';
import { MAX_EVIDENCE, type AlertRule, type ObservedRecord, type RuleFiring, subjectKey } from './alert-rules.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface AlertEngineOptions {
  readonly rules: readonly AlertRule[];
  /** Repeats of an open alert are recorded at most this often. */
  readonly groupMs: number;
  /** Record the alert's Security Alert; returns its sequence number. */
  readonly raised: (alert: Alert) => number | undefined;
  /** Record that an open alert fired again `count` times so far. */
  readonly repeated: (alert: Alert) => void;
  readonly now?: () => number;
  /** Alerts kept for the list (acknowledged ones beyond this are dropped, oldest first). */
  readonly keep?: number;
}

export class AlertEngine {
  readonly #o: AlertEngineOptions;
  /** By rule + subject: the open alert. */
  readonly #open = new Map<string, Alert>();
  /** By id, newest last. */
  readonly #all = new Map<string, Alert>();
  readonly #dirty = new Set<string>();
  readonly #lastRepeatRecord = new Map<string, number>();
  readonly #raisedByRule = new Map<AlertRuleName, number>();

  constructor(options: AlertEngineOptions) {
    this.#o = options;
  }

  /** The alerts kept in the store, at start. */
  load(alerts: readonly Alert[]): void {
    for (const a of [...alerts].sort((x, y) => x.firstAt - y.firstAt)) {
      this.#all.set(a.id, a);
      if (a.state === 'open') this.#open.set(openKey(a.rule, a.subject), a);
    }
  }

  observe(record: ObservedRecord): void {
    // The engine's own records are not evidence of anything new.
    if (record.event.type.startsWith('alert.')) return;
    for (const rule of this.#o.rules) {
      const firing = rule.observe(record);
      if (firing !== undefined) this.#fire(firing, record.event.at);
    }
  }

  #fire(f: RuleFiring, at: number): void {
    const key = openKey(f.rule, f.subject);
    const open = this.#open.get(key);
    if (open !== undefined) {
      // In place: a rule above its threshold fires on every record, and each repeat must stay cheap.
      const a = open as Mutable<Alert>;
      if (a.evidence.length < MAX_EVIDENCE) {
        const known = new Set(a.evidence);
        const fresh = f.evidence().evidence.filter((s) => !known.has(s));
        const room = MAX_EVIDENCE - a.evidence.length;
        a.evidence = [...a.evidence, ...fresh.slice(0, room)];
        a.evidenceOmitted += Math.max(0, fresh.length - room);
      } else {
        // Full: the record that fired now is counted, not listed.
        a.evidenceOmitted++;
      }
      a.observed = f.observed;
      a.lastAt = Math.max(a.lastAt, at);
      a.count++;
      this.#dirty.add(a.id);
      const now = this.#now();
      const last = this.#lastRepeatRecord.get(a.id) ?? a.firstAt;
      if (now - last >= this.#o.groupMs) {
        this.#lastRepeatRecord.set(a.id, now);
        this.#o.repeated({ ...a });
      }
      return;
    }
    const { evidence, omitted } = f.evidence();
    const alert: Alert = {
      id: `${f.rule}-${randomUUID()}`,
      rule: f.rule,
      subject: f.subject,
      threshold: f.threshold,
      observed: f.observed,
      evidence: evidence.slice(0, MAX_EVIDENCE),
      evidenceOmitted: omitted + Math.max(0, evidence.length - MAX_EVIDENCE),
      firstAt: at,
      lastAt: at,
      count: 1,
      state: 'open',
    };
    this.#raisedByRule.set(f.rule, (this.#raisedByRule.get(f.rule) ?? 0) + 1);
    this.#lastRepeatRecord.set(alert.id, this.#now());
    const seq = this.#o.raised(alert);
    const withSeq = seq === undefined ? alert : { ...alert, raisedSeq: seq };
    this.#put(withSeq);
    this.#open.set(key, withSeq);
  }

  /** Marks an alert acknowledged; undefined when there is no such alert. */
  acknowledge(id: string, by: string, note: string): Alert | undefined {
    const a = this.#all.get(id);
    if (a === undefined) return undefined;
    if (a.state === 'acknowledged') return a;
    const acked: Alert = { ...a, state: 'acknowledged', acknowledged: { by, at: this.#now(), note } };
    this.#put(acked);
    this.#open.delete(openKey(a.rule, a.subject));
    return acked;
  }

  get(id: string): Alert | undefined {
    const a = this.#all.get(id);
    return a === undefined ? undefined : { ...a };
  }

  /** Newest first (copies: the engine updates open alerts in place). */
  list(): Alert[] {
    return [...this.#all.values()].reverse().map((a) => ({ ...a }));
  }

  get openCount(): number {
    return this.#open.size;
  }

  /** Alerts raised since start, per rule (the metric). */
  raisedByRule(): ReadonlyMap<AlertRuleName, number> {
    return this.#raisedByRule;
  }

  /** Alerts changed since the last call (the flow saves them). */
  takeDirty(): Alert[] {
    const out: Alert[] = [];
    for (const id of this.#dirty) {
      const a = this.#all.get(id);
      if (a !== undefined) out.push({ ...a });
    }
    this.#dirty.clear();
    return out;
  }

  #put(a: Alert): void {
    this.#all.delete(a.id);
    this.#all.set(a.id, a);
    this.#dirty.add(a.id);
    const keep = this.#o.keep ?? 1000;
    if (this.#all.size <= keep) return;
    for (const [id, old] of this.#all) {
      if (this.#all.size <= keep) break;
      if (old.state === 'acknowledged') this.#all.delete(id);
    }
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }
}

function openKey(rule: AlertRuleName, subject: Alert['subject']): string {
  return `${rule}\u0000${subjectKey(subject)}`;
}
