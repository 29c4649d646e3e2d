// The site's working hours, e.g. "Mon-Fri 07:00-19:00, Sat 08:00-12:00", in the site's time zone. A time
// outside every span is after hours. Spans may not cross midnight (write "Mon-Fri 22:00-24:00, Tue-Sat
// 00:00-06:00" for a night shift).

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

interface Span {
  readonly days: ReadonlySet<number>;
  /** Minutes after midnight, from inclusive, to exclusive. */
  readonly from: number;
  readonly to: number;
}

export class WorkingHours {
  readonly #spans: readonly Span[];
  readonly #format: Intl.DateTimeFormat;
  readonly text: string;

  private constructor(text: string, spans: readonly Span[], timeZone: string | undefined) {
    this.text = text;
    this.#spans = spans;
    this.#format = new Intl.DateTimeFormat('en-US', {
      ...(timeZone === undefined ? {} : { timeZone }),
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
  }

  /** Throws a TypeError naming what is wrong (the config schema reports it against the field). */
  static parse(text: string, timeZone?: string): WorkingHours {
    const spans: Span[] = [];
    for (const part of text.split(',')) {
      const m = /^\s*([A-Z][a-z]{2})(?:-([A-Z][a-z]{2}))?\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})\s*$/.exec(part);
      if (m === null) throw new TypeError(`"${part.trim()}" is not like "Mon-Fri 07:00-19:00"`);
      const first = DAYS.indexOf(m[1] as (typeof DAYS)[number]);
      const last = m[2] === undefined ? first : DAYS.indexOf(m[2] as (typeof DAYS)[number]);
      if (first < 0 || last < 0) throw new TypeError(`"${part.trim()}": days are ${DAYS.join(' ')}`);
      const from = Number(m[3]) * 60 + Number(m[4]);
      const to = Number(m[5]) * 60 + Number(m[6]);
      if (Number(m[4]) > 59 || Number(m[6]) > 59 || from >= to || to > 24 * 60)
        throw new TypeError(`"${part.trim()}": the span must run forward within one day (00:00-24:00)`);
      const days = new Set<number>();
      for (let d = first; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === last) break;
      }
      spans.push({ days, from, to });
    }
    if (timeZone !== undefined) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone });
      } catch {
        throw new TypeError(`"${timeZone}" is not a time zone (e.g. Europe/Berlin)`);
      }
    }
    return new WorkingHours(text, spans, timeZone);
  }

  /** True when `at` (ms since epoch) falls outside every span. */
  isAfterHours(at: number): boolean {
    // Formatting a time in a zone costs microseconds; records come thousands a second within one minute.
    const minute = Math.floor(at / 60_000);
    if (minute === this.#cachedMinute) return this.#cachedAnswer;
    this.#cachedMinute = minute;
    this.#cachedAnswer = this.#compute(at);
    return this.#cachedAnswer;
  }

  #cachedMinute = NaN;
  #cachedAnswer = false;

  #compute(at: number): boolean {
    let day = 0;
    let minutes = 0;
    for (const p of this.#format.formatToParts(at)) {
      if (p.type === 'weekday') day = DAYS.indexOf(p.value as (typeof DAYS)[number]);
      else if (p.type === 'hour') minutes += Number(p.value) * 60;
      else if (p.type === 'minute') minutes += Number(p.value);
    }
    return !this.#spans.some((s) => s.days.has(day) && minutes >= s.from && minutes < s.to);
  }
}
