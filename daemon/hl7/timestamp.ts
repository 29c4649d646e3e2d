// HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]) → DICOM DA and TM.
// The offset is dropped: modalities compare worklist times with their local clock, and the RIS sends
// local time for the department it schedules.

export type TimestampResult = { readonly ok: true; readonly date: string; readonly time: string } | { readonly ok: false };

const TS = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;

/** Parse a TS; `date` is YYYYMMDD (needs at least day precision), `time` HHMM[SS] or '' when absent. */
export function parseHl7Timestamp(value: string): TimestampResult {
  const m = TS.exec(value.trim());
  if (m === null) return { ok: false };
  const [, y, mo, d, h, mi, s] = m;
  if (mo === undefined || d === undefined) return { ok: false };
  if (!validDate(Number(y), Number(mo), Number(d))) return { ok: false };
  if (h !== undefined && Number(h) > 23) return { ok: false };
  if (mi !== undefined && Number(mi) > 59) return { ok: false };
  if (s !== undefined && Number(s) > 59) return { ok: false };
  let time = '';
  if (h !== undefined) time = `${h}${mi ?? '00'}${s ?? ''}`;
  return { ok: true, date: `${y}${mo}${d}`, time };
}

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days;
}

/**
 * HL7 date (birth date in PID-7): full dates become DICOM DA; year or year-month precision has no DA
 * form and becomes ''. Returns undefined when the value is malformed.
 */
export function hl7DateToDa(value: string): string | undefined {
  const v = value.trim();
  if (v === '') return '';
  if (/^\d{4}(\d{2})?$/.test(v)) {
    const mo = v.length === 6 ? Number(v.slice(4)) : 1;
    return mo >= 1 && mo <= 12 ? '' : undefined;
  }
  const r = parseHl7Timestamp(v);
  return r.ok ? r.date : undefined;
}
