// The DICOM data model the core works with, independent of any wire encoding.
// Text values are decoded JavaScript strings (multiple values joined by `\`, as in PS3.5 6.4);
// the dicom adapter handles transfer syntaxes and Specific Character Set.

export type Vr =
  | 'AE'
  | 'AS'
  | 'AT'
  | 'CS'
  | 'DA'
  | 'DS'
  | 'DT'
  | 'FD'
  | 'FL'
  | 'IS'
  | 'LO'
  | 'LT'
  | 'OB'
  | 'OD'
  | 'OF'
  | 'OL'
  | 'OV'
  | 'OW'
  | 'PN'
  | 'SH'
  | 'SL'
  | 'SQ'
  | 'SS'
  | 'ST'
  | 'SV'
  | 'TM'
  | 'UC'
  | 'UI'
  | 'UL'
  | 'UN'
  | 'UR'
  | 'US'
  | 'UT'
  | 'UV';

/** VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 Table 7.1-1). */
export const longExplicitVrs: ReadonlySet<string> = new Set<Vr>([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);

/**
 * The longest value of the other VRs in Explicit VR: their length field has 16 bits and a value has an
 * even length (PS3.5 7.1.1), so 0xFFFE bytes, padding included.
 */
export const MAX_SHORT_LENGTH_VALUE_BYTES = 0xfffe;

/** A data element. `value` is a string for text VRs, an array of items for SQ, bytes otherwise. */
export type DataElement =
  | { readonly vr: Exclude<Vr, 'SQ' | 'OB' | 'OD' | 'OF' | 'OL' | 'OV' | 'OW' | 'UN'>; readonly value: string }
  | { readonly vr: 'SQ'; readonly value: readonly DataSet[] }
  | { readonly vr: 'OB' | 'OD' | 'OF' | 'OL' | 'OV' | 'OW' | 'UN'; readonly value: Uint8Array };

/** A data set keyed by tag (group << 16 | element); data-dictionary.ts names the tags the box knows. */
export type DataSet = Map<number, DataElement>;

/** Text value of a tag, or undefined when absent or not text. */
export function textOf(ds: DataSet, tag: number): string | undefined {
  const el = ds.get(tag);
  return el !== undefined && typeof el.value === 'string' ? el.value : undefined;
}

/** Items of a sequence, or undefined when absent or not a sequence. */
export function itemsOf(ds: DataSet, tag: number): readonly DataSet[] | undefined {
  const el = ds.get(tag);
  return el !== undefined && el.vr === 'SQ' ? el.value : undefined;
}

export function tagHex(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
