// Text helpers for DICOM string values (PS3.5 6.2): value splitting, padding and Person Name groups.
import type { Vr } from './dataset.ts';

/** VRs whose values are single-valued narrative text, where `\` is an ordinary character (PS3.5 6.2). */
const SINGLE_VALUED_TEXT: ReadonlySet<Vr> = new Set<Vr>(['LT', 'ST', 'UT', 'UR']);

/** VRs whose leading spaces are insignificant (PS3.5 Table 6.2-1); all text VRs drop trailing padding. */
const LEADING_SPACE_INSIGNIFICANT: ReadonlySet<Vr> = new Set<Vr>(['AE', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'PN', 'SH', 'TM']);

export function isMultiValueVr(vr: Vr): boolean {
  return !SINGLE_VALUED_TEXT.has(vr);
}

/** Removes padding that PS3.5 declares insignificant for the VR (UI pads with NUL). */
export function trimPadding(vr: Vr, value: string): string {
  if (vr === 'UI') return value.replace(/[\0 ]+$/u, '');
  const end = value.replace(/ +$/u, '');
  return LEADING_SPACE_INSIGNIFICANT.has(vr) ? end.replace(/^ +/u, '') : end;
}

/** The values of a multi-valued string, padding removed; a zero-length value yields no values. */
export function splitValues(vr: Vr, value: string): string[] {
  if (value === '') return [];
  const parts = isMultiValueVr(vr) ? value.split('\\') : [value];
  return parts.map((part) => trimPadding(vr, part));
}

export function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/u.test(text);
}

/**
 * The component groups of a PN value (alphabetic, ideographic, phonetic), each with trailing empty
 * components and padding removed, so `DOE^JOHN^^^` and `DOE^JOHN` compare equal.
 */
export function personNameGroups(value: string): string[] {
  return value.split('=').map(normalizePersonNameGroup);
}

/** Case folding used for PN matching: NFC, then locale-independent upper case. */
export function foldPersonName(text: string): string {
  return text.normalize('NFC').toUpperCase();
}

function normalizePersonNameGroup(group: string): string {
  return group
    .split('^')
    .map((component) => component.trim())
    .join('^')
    .replace(/\^+$/u, '');
}
