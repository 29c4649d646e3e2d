// The Specific Character Sets (0008,0005) the box reads and writes (PS3.3 C.12.1.1.2, PS3.5 6.1): the
// default repertoire, ISO_IR 192 (UTF-8), and the single-byte sets of Table C.12-2 without code extensions.
// Each single-byte set is ISO 646 (ASCII) in 0x00–0x7F and its ISO 8859 part (or TIS 620) in 0xA0–0xFF;
// the upper half comes from the platform's decoder (WHATWG encodings), read only in 0xA0–0xFF, where the
// Windows code pages WHATWG substitutes for ISO 8859-1, 8859-9 and TIS 620 agree with them. 0x80–0x9F (C1
// controls, excluded from DICOM text) are never written; read, they stay the C1 code points.

export interface DicomCharacterSet {
  /** The defined term, as written in (0008,0005); '' for the default repertoire. */
  readonly term: string;
  readonly kind: 'default' | 'latin1' | 'utf8' | 'single-byte';
  /** Whether every character of `text` is in the set. */
  canEncode(text: string): boolean;
  /** Bytes of `text`; undefined when a character is not in the set. */
  encode(text: string): Uint8Array | undefined;
  decode(bytes: Uint8Array): string;
}

const NON_ASCII = /[^\u0000-\u007f]/;
const NON_LATIN1 = /[^\u0000-\u00ff]/;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function latin1Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function latin1Text(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

const DEFAULT: DicomCharacterSet = {
  term: '',
  kind: 'default',
  canEncode: (text) => !NON_ASCII.test(text),
  encode: (text) => (NON_ASCII.test(text) ? undefined : latin1Bytes(text)),
  // Read leniently: a byte above 0x7F without (0008,0005) is taken as ISO 8859-1, as most devices mean it.
  decode: latin1Text,
};

const LATIN1: DicomCharacterSet = {
  term: 'ISO_IR 100',
  kind: 'latin1',
  canEncode: (text) => !NON_LATIN1.test(text) && !/[\u0080-\u009f]/.test(text),
  encode: (text) => (NON_LATIN1.test(text) || /[\u0080-\u009f]/.test(text) ? undefined : latin1Bytes(text)),
  decode: latin1Text,
};

const UTF8: DicomCharacterSet = {
  term: 'ISO_IR 192',
  kind: 'utf8',
  canEncode: () => true,
  encode: (text) => utf8Encoder.encode(text),
  decode: (bytes) => utf8Decoder.decode(bytes),
};

/** A single-byte set from the platform decoder's upper half. */
function singleByte(term: string, label: string): DicomCharacterSet {
  const decoder = new TextDecoder(label);
  const upper: string[] = [];
  const toByte = new Map<string, number>();
  for (let b = 0xa0; b <= 0xff; b++) {
    const ch = decoder.decode(Uint8Array.of(b));
    upper[b - 0xa0] = ch === '\ufffd' ? '' : ch;
    if (ch !== '\ufffd') toByte.set(ch, b);
  }
  // TIS 620 has no character at 0xA0; windows-874 puts NBSP there.
  if (term === 'ISO_IR 166') {
    toByte.delete('\u00a0');
    upper[0] = '';
  }
  const encode = (text: string): Uint8Array | undefined => {
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) bytes[i] = c;
      else {
        const b = toByte.get(text[i]!);
        if (b === undefined) return undefined;
        bytes[i] = b;
      }
    }
    return bytes;
  };
  return {
    term,
    kind: 'single-byte',
    canEncode: (text) => !NON_ASCII.test(text) || encode(text) !== undefined,
    encode,
    decode: (bytes) => {
      let s = '';
      for (const b of bytes) s += b < 0xa0 ? String.fromCharCode(b) : upper[b - 0xa0] || '\ufffd';
      return s;
    },
  };
}

const SINGLE_BYTE: readonly (readonly [term: string, label: string])[] = [
  ['ISO_IR 101', 'iso-8859-2'], // Latin alphabet No. 2
  ['ISO_IR 109', 'iso-8859-3'], // Latin alphabet No. 3
  ['ISO_IR 110', 'iso-8859-4'], // Latin alphabet No. 4
  ['ISO_IR 144', 'iso-8859-5'], // Cyrillic
  ['ISO_IR 127', 'iso-8859-6'], // Arabic
  ['ISO_IR 126', 'iso-8859-7'], // Greek
  ['ISO_IR 138', 'iso-8859-8'], // Hebrew
  ['ISO_IR 148', 'iso-8859-9'], // Latin alphabet No. 5
  ['ISO_IR 203', 'iso-8859-15'], // Latin alphabet No. 9
  ['ISO_IR 166', 'tis-620'], // Thai
];

const SETS: ReadonlyMap<string, DicomCharacterSet> = new Map<string, DicomCharacterSet>([
  ['', DEFAULT],
  ['ISO_IR 6', DEFAULT],
  ['ISO 2022 IR 6', DEFAULT],
  ['ISO_IR 100', LATIN1],
  ['ISO 2022 IR 100', LATIN1],
  ['ISO_IR 192', UTF8],
  ...SINGLE_BYTE.map(([term, label]): [string, DicomCharacterSet] => [term, singleByte(term, label)]),
]);

export const DefaultRepertoire = DEFAULT;
export const Utf8 = UTF8;

/** The character set a defined term names, or undefined when the box does not support it. */
export function characterSetOf(term: string): DicomCharacterSet | undefined {
  return SETS.get(term.trim());
}

/** Every defined term the box supports (config checks, docs). */
export const SUPPORTED_CHARACTER_SET_TERMS: readonly string[] = [...SETS.keys()].filter((t) => t !== '');

/**
 * A (0008,0005) value: the set its first value names; further values (ISO 2022 code extensions) are not
 * supported, except the default repertoire. Unsupported terms are returned and text reads as the default.
 */
export function resolveSpecificCharacterSet(value: string | undefined): { charset: DicomCharacterSet; unsupported: string[] } {
  const terms = (value ?? '').split('\\').map((t) => t.trim());
  const unsupported: string[] = [];
  let charset = DEFAULT;
  for (const [i, term] of terms.entries()) {
    const found = SETS.get(term);
    if (found === DEFAULT) continue;
    // `ISO 2022 IR 6\ISO 2022 IR 100`: Latin-1 announced through code extension, read as ISO_IR 100.
    if (found === LATIN1 && charset === DEFAULT) charset = LATIN1;
    else if (found !== undefined && i === 0) charset = found;
    else unsupported.push(term);
  }
  return { charset, unsupported };
}
