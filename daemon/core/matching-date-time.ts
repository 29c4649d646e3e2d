// Range arithmetic for DA, TM and DT key values (PS3.4 C.2.2.2.5), on canonical digit strings so that
// comparing two instants is a plain string comparison: DA → YYYYMMDD, TM → HHMMSSFFFFFF,
// DT → YYYYMMDDHHMMSSFFFFFF. A value of reduced precision (TM "10", DT "2024") stands for every instant
// it covers: its lower bound pads with 0, its upper bound with 9, which sorts above every valid value
// sharing the prefix and below the next prefix.

export type DateTimeVr = 'DA' | 'TM' | 'DT';

/** How a key value was written: `A`, `A-B`, `A-`, `-B`, or `-` alone. */
export type RangeForm = 'single' | 'closed' | 'from' | 'to' | 'open';

/** Inclusive canonical bounds; undefined = unbounded on that side. */
export interface Bounds {
  readonly form: RangeForm;
  readonly lo: string | undefined;
  readonly hi: string | undefined;
}

interface Span {
  readonly lo: string;
  readonly hi: string;
}

const DATE = /^(\d{4})\.?(\d{2})\.?(\d{2})$/u; // the dotted form is the ACR-NEMA legacy some modalities still send
const TIME = /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$/u;
const DATE_TIME = /^(\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?)(?:[+-]\d{4})?$/u;

const CANONICAL_LENGTH: Readonly<Record<DateTimeVr, number>> = { DA: 8, TM: 12, DT: 20 };

function span(vr: DateTimeVr, value: string): Span | undefined {
  switch (vr) {
    case 'DA': {
      const m = DATE.exec(value);
      if (m === null) return undefined;
      const digits = `${m[1]}${m[2]}${m[3]}`;
      return { lo: digits, hi: digits };
    }
    case 'TM': {
      const m = TIME.exec(value);
      if (m === null) return undefined;
      const digits = `${m[1]}${m[2] ?? ''}${m[3] ?? ''}${m[4] ?? ''}`;
      return pad(digits, CANONICAL_LENGTH.TM);
    }
    case 'DT': {
      // The UTC offset is not applied: worklist values carry none and both sides are read as local time.
      const m = DATE_TIME.exec(value);
      if (m === null || m[1] === undefined) return undefined;
      return pad(m[1].replace('.', ''), CANONICAL_LENGTH.DT);
    }
  }
}

function pad(digits: string, length: number): Span {
  return { lo: digits.padEnd(length, '0'), hi: digits.padEnd(length, '9') };
}

/**
 * Parses a DA/TM/DT key value into bounds; undefined when the value is not a valid date, time, date-time
 * or range of them. A single value covers its whole precision (TM "10" matches any time in that hour).
 */
export function parseQueryBounds(vr: DateTimeVr, value: string): Bounds | undefined {
  const whole = span(vr, value);
  if (whole !== undefined) return { form: 'single', lo: whole.lo, hi: whole.hi };
  // DT offsets may contain '-', so try every '-' as the range separator and keep the first reading
  // where both sides are valid; DA and TM have exactly one candidate.
  for (let i = value.indexOf('-'); i !== -1; i = value.indexOf('-', i + 1)) {
    const left = value.slice(0, i).trim();
    const right = value.slice(i + 1).trim();
    const from = left === '' ? undefined : span(vr, left);
    const to = right === '' ? undefined : span(vr, right);
    if ((left !== '' && from === undefined) || (right !== '' && to === undefined)) continue;
    const form: RangeForm =
      from !== undefined && to !== undefined ? 'closed' : from !== undefined ? 'from' : to !== undefined ? 'to' : 'open';
    return { form, lo: from?.lo, hi: to?.hi };
  }
  return undefined;
}

/** The instant a stored (candidate) value denotes, as a canonical string; undefined when invalid. */
export function candidatePoint(vr: DateTimeVr, value: string): string | undefined {
  return span(vr, value)?.lo;
}

export function withinBounds(point: string, bounds: Bounds): boolean {
  return (bounds.lo === undefined || point >= bounds.lo) && (bounds.hi === undefined || point <= bounds.hi);
}

/**
 * PS3.4 C.2.2.2.5.4: a date and a time key "both of which specify the same form of Range Matching" are
 * matched as one date-time range. Returns undefined when the pair does not qualify.
 */
export function combineDateAndTime(date: Bounds, time: Bounds): Bounds | undefined {
  if (date.form !== time.form || date.form === 'single' || date.form === 'open') return undefined;
  return {
    form: date.form,
    lo: date.lo === undefined || time.lo === undefined ? undefined : date.lo + time.lo,
    hi: date.hi === undefined || time.hi === undefined ? undefined : date.hi + time.hi,
  };
}

/** The canonical date-time point of a stored date and time, comparable with combined bounds. */
export function combinedCandidatePoint(date: string, time: string): string | undefined {
  const d = candidatePoint('DA', date);
  const t = candidatePoint('TM', time);
  return d === undefined || t === undefined ? undefined : d + t;
}
