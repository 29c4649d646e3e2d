// Coalescing of repeated connection-level refusals (a port scan, a TLS health check, a flood of rogue
// handshakes): the first occurrence of an (event type, source address, reason) key is recorded at once,
// so an attack is visible immediately; later ones within the interval are only counted, and when the
// interval ends one summary record carries the count and the first and last time. Storage then grows
// with the number of sources and reasons per interval, never with the size of the attack. Distinct keys
// are capped: beyond the cap, every new key of a type shares that type's "other sources" key.
import type { AuditEvent, AuditParticipant, AuditSink } from './audit.ts';

export interface AuditCoalescerOptions {
  /** Where records go (the audit chain). */
  readonly sink: AuditSink;
  /** Event types coalesced; every other event passes straight through. */
  readonly types: ReadonlySet<string>;
  readonly intervalMs: number;
  /** Distinct (type, source, reason) keys tracked at once, besides one "other sources" key per type. */
  readonly maxKeys: number;
  /** ms since epoch; a fake clock makes tests deterministic. */
  readonly now?: () => number;
}

/** The participant id of the summary that stands for sources beyond the cap. */
export const OTHER_SOURCES = 'other sources';
/** Reasons longer than this share a key by their prefix (a key is held in memory for an interval). */
const MAX_REASON_IN_KEY = 256;

interface Window {
  readonly first: AuditEvent;
  readonly overflow: boolean;
  readonly endsAt: number;
  count: number;
  firstAt: number;
  lastAt: number;
}

export class AuditCoalescer implements AuditSink {
  readonly #o: AuditCoalescerOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  /** One per coalesced type, so the cap holds whatever the attacker varies. */
  readonly #overflow = new Map<string, Window>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(options: AuditCoalescerOptions) {
    if (!(options.intervalMs > 0) || !(options.maxKeys >= 1)) throw new TypeError('intervalMs and maxKeys must be positive');
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Keys with an open interval (for status and tests). */
  get trackedKeys(): number {
    return this.#windows.size + this.#overflow.size;
  }

  /** Flush due summaries on a timer; a summary is at most a tick late. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => this.flushDue(), Math.min(this.#o.intervalMs, 1000));
    this.#timer.unref();
  }

  record(event: AuditEvent): void {
    if (this.#stopped || !this.#o.types.has(event.type)) {
      this.#o.sink.record(event);
      return;
    }
    const now = this.#now();
    const key = keyOf(event);
    let window = this.#windows.get(key);
    if (window === undefined && this.#windows.size >= this.#o.maxKeys) {
      window = this.#overflow.get(event.type);
      if (window === undefined) {
        this.#overflow.set(event.type, this.#open(event, now, true));
        this.#o.sink.record(event);
        return;
      }
    }
    if (window === undefined) {
      this.#windows.set(key, this.#open(event, now, false));
      this.#o.sink.record(event);
      return;
    }
    window.count++;
    if (window.count === 1) window.firstAt = now;
    window.lastAt = now;
  }

  /** Write the summary of every interval that has ended by now, and forget those keys. */
  flushDue(): void {
    const now = this.#now();
    for (const windows of [this.#windows, this.#overflow]) {
      for (const [key, w] of windows) {
        if (w.endsAt > now) continue;
        windows.delete(key);
        this.#summarise(w, now);
      }
    }
  }

  /** Write every open interval's summary now (stop, SIGTERM): no counted occurrence is lost. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const now = this.#now();
    for (const windows of [this.#windows, this.#overflow]) {
      for (const w of windows.values()) this.#summarise(w, now);
      windows.clear();
    }
  }

  #open(first: AuditEvent, now: number, overflow: boolean): Window {
    return { first, overflow, endsAt: now + this.#o.intervalMs, count: 0, firstAt: now, lastAt: now };
  }

  #summarise(w: Window, now: number): void {
    if (w.count === 0) return;
    const occurrences = { count: w.count, firstAt: w.firstAt, lastAt: w.lastAt };
    const participants: readonly AuditParticipant[] = w.overflow
      ? w.first.participants.map((p) => (p.requestor ? { kind: p.kind, id: OTHER_SOURCES, requestor: true } : p))
      : w.first.participants;
    const detail = w.overflow
      ? `from sources and reasons beyond the ${this.#o.maxKeys} tracked (the first was: ${describe(w.first)})`
      : w.first.detail;
    this.#o.sink.record({
      eventId: w.first.eventId,
      type: w.first.type,
      action: w.first.action,
      outcome: w.first.outcome,
      at: now,
      participants,
      ...(detail === undefined ? {} : { detail }),
      occurrences,
    });
  }
}

function requestorOf(event: AuditEvent): AuditParticipant | undefined {
  return event.participants.find((p) => p.requestor);
}

function keyOf(event: AuditEvent): string {
  const source = requestorOf(event);
  return JSON.stringify([event.type, source?.address ?? '', source?.id ?? '', (event.detail ?? '').slice(0, MAX_REASON_IN_KEY)]);
}

function describe(event: AuditEvent): string {
  const source = requestorOf(event);
  return `${source?.address || 'no address'} ${source?.id ?? ''}: ${event.detail ?? ''}`.slice(0, MAX_REASON_IN_KEY);
}
