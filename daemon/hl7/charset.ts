// HL7 v2 character sets (MSH-18, HL7 table 0211) the box accepts. Only the first repetition of MSH-18
// (the default character set of the message) is honoured; code extension by escape (\C..\, \M..\) is not.
// Decoding is strict: bytes that are not valid in the declared set reject the message instead of
// silently becoming replacement characters in a patient's name.
import { EdgeError } from '../core/errors.ts';

export const Hl7Charset = {
  /** MSH-18 empty: the HL7 default, 7-bit ASCII. */
  Ascii: 'ASCII',
  Latin1: '8859/1',
  Utf8: 'UNICODE UTF-8',
} as const;
export type Hl7Charset = (typeof Hl7Charset)[keyof typeof Hl7Charset];

/** MSH-18 value (first repetition, trimmed) → supported charset; throws EDGE_HL7_UNSUPPORTED_CHARSET. */
export function charsetFromMsh18(value: string): Hl7Charset {
  const v = value.trim().toUpperCase();
  if (v === '' || v === 'ASCII') return Hl7Charset.Ascii;
  if (v === '8859/1') return Hl7Charset.Latin1;
  if (v === 'UNICODE UTF-8') return Hl7Charset.Utf8;
  throw new EdgeError('EDGE_HL7_UNSUPPORTED_CHARSET', undefined, { detail: { msh18: value.slice(0, 32) } });
}

/** The MSH-18 value to write in a message of this charset ('' for ASCII, the HL7 default). */
export function msh18For(charset: Hl7Charset): string {
  return charset === Hl7Charset.Ascii ? '' : charset;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function decodeHl7Text(bytes: Uint8Array, charset: Hl7Charset): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (charset) {
    case Hl7Charset.Ascii: {
      const bad = buf.findIndex((b) => b > 0x7f);
      if (bad !== -1) {
        throw new EdgeError('EDGE_HL7_PARSE', 'a byte above 0x7F in a message without MSH-18 (ASCII)', {
          detail: { offset: bad },
        });
      }
      return buf.toString('latin1');
    }
    case Hl7Charset.Latin1:
      return buf.toString('latin1');
    case Hl7Charset.Utf8:
      try {
        return utf8Decoder.decode(buf);
      } catch (cause) {
        throw new EdgeError('EDGE_HL7_PARSE', 'the message is not valid UTF-8', { cause });
      }
  }
}

/** Encode text for the wire; characters the charset cannot carry become '?'. */
export function encodeHl7Text(text: string, charset: Hl7Charset): Buffer {
  switch (charset) {
    case Hl7Charset.Utf8:
      return Buffer.from(text, 'utf8');
    case Hl7Charset.Latin1:
      return Buffer.from(text.replace(/[^\u0000-\u00ff]/g, '?'), 'latin1');
    case Hl7Charset.Ascii:
      return Buffer.from(text.replace(/[^\u0000-\u007f]/g, '?'), 'latin1');
  }
}
