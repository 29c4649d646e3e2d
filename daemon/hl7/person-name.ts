// HL7 person names (XPN, XCN, CN) → DICOM PN (PS3.5 6.2.1).
// XPN: family^given^middle^suffix^prefix^degree^name type; DICOM: family^given^middle^prefix^suffix.
// Repetitions marked ideographic or phonetic become the 2nd and 3rd component groups: by XPN.8, the name
// representation code of HL7 table 4000 (A, I, P), or, as many RISes send it, I or P in XPN.7.
import type { Hl7Segment } from './message.ts';

/** DICOM PN cannot escape its delimiters; a value holding one would shift the components. */
function clean(value: string): string {
  return value.replace(/[\^=\\\r\n]/g, ' ').trim();
}

function group(family: string, given: string, middle: string, prefix: string, suffix: string): string {
  const parts = [family, given, middle, prefix, suffix].map(clean);
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('^');
}

function joinGroups(groups: [string, string, string]): string {
  const g = [...groups];
  while (g.length > 0 && g[g.length - 1] === '') g.pop();
  return g.join('=');
}

/** PID-5 (XPN, repeating) → PN. The alphabetic group is the first repetition that is not I or P. */
export function xpnToPersonName(segment: Hl7Segment, field: number): string {
  const groups: [string, string, string] = ['', '', ''];
  let alphabeticSet = false;
  for (const rep of segment.repetitions(field)) {
    const c = (n: number): string => rep[n - 1]?.[0] ?? '';
    // XPN.1 is FN in v2.5 (surname&prefix&...): its first subcomponent is the surname.
    const value = group(c(1), c(2), c(3), c(5), c(4));
    const representation = c(8).toUpperCase();
    const type = representation === 'I' || representation === 'P' || representation === 'A' ? representation : c(7).toUpperCase();
    if (type === 'I') {
      if (groups[1] === '') groups[1] = value;
    } else if (type === 'P') {
      if (groups[2] === '') groups[2] = value;
    } else if (!alphabeticSet) {
      groups[0] = value;
      alphabeticSet = true;
    }
  }
  return joinGroups(groups);
}

/** XCN (id^family^given^middle^suffix^prefix^degree) → PN, first repetition. */
export function xcnToPersonName(segment: Hl7Segment, field: number): string {
  const c = (n: number): string => segment.get(field, 1, n);
  return group(c(2), c(3), c(4), c(6), c(5));
}

/** CN inside a component (OBR-34 technician: name is component 1, its parts subcomponents). */
export function cnComponentToPersonName(segment: Hl7Segment, field: number, component: number): string {
  const s = (n: number): string => segment.get(field, 1, component, n);
  return group(s(2), s(3), s(4), s(6), s(5));
}
