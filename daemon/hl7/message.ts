// HL7 v2 message parser (HL7 v2.5.1 chapter 2.5–2.7): segments, fields, repetitions, components,
// subcomponents, escape sequences. All positions are 1-based as in the standard, and MSH fields keep
// their standard numbers: MSH-1 is the field separator, MSH-2 the encoding characters.
//
// Escapes: \F\ \S\ \T\ \R\ \E\ become the delimiters; \Xhh..\ is decoded in the message's charset;
// formatting escapes become plain text: \.br\ and \.sp\ a newline, \H\ \N\ and the other formatting
// commands nothing. \C..\ / \M..\ (charset switching) reject the message as an unsupported charset.
// An unterminated or unknown escape is kept literally (the RIS meant the characters it sent).
import { EdgeError } from '../core/errors.ts';
import { charsetFromMsh18, decodeHl7Text, Hl7Charset } from './charset.ts';

export interface EncodingCharacters {
  readonly field: string;
  readonly component: string;
  readonly repetition: string;
  readonly escape: string;
  readonly subcomponent: string;
}

export const DEFAULT_ENCODING: EncodingCharacters = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
};

/** One field: repetitions → components → subcomponents, unescaped. */
export type Hl7Field = readonly (readonly (readonly string[])[])[];

export class Hl7Segment {
  readonly name: string;
  /** fields[n] is field n (index 0 unused); for MSH, fields[1] and [2] are the delimiters. */
  readonly fields: readonly Hl7Field[];
  /** The field texts as on the wire (still escaped), same numbering. */
  readonly rawFields: readonly string[];

  constructor(name: string, fields: readonly Hl7Field[], rawFields: readonly string[]) {
    this.name = name;
    this.fields = fields;
    this.rawFields = rawFields;
  }

  /** Value at field^component&subcomponent of repetition `rep`; '' when absent. */
  get(field: number, rep = 1, comp = 1, sub = 1): string {
    return this.fields[field]?.[rep - 1]?.[comp - 1]?.[sub - 1] ?? '';
  }

  /** Repetitions of a field (empty array when the field is empty). */
  repetitions(field: number): readonly (readonly (readonly string[])[])[] {
    const f = this.fields[field];
    if (f === undefined || (f.length === 1 && isEmptyRepetition(f[0]!))) return [];
    return f;
  }

  /** True when the field has any non-empty value. */
  has(field: number): boolean {
    return this.repetitions(field).length > 0;
  }
}

function isEmptyRepetition(rep: readonly (readonly string[])[]): boolean {
  return rep.every((c) => c.every((s) => s === ''));
}

/** What can be read from MSH before the body is decoded: enough to answer with an ACK. */
export interface Hl7Header {
  readonly encoding: EncodingCharacters;
  /** MSH-18 first repetition, as sent. */
  readonly msh18: string;
  /** The MSH segment, decoded as Latin-1 (MSH must be ASCII for the charsets the box supports). */
  readonly msh: Hl7Segment;
}

export class Hl7Message {
  readonly encoding: EncodingCharacters;
  readonly charset: Hl7Charset;
  readonly segments: readonly Hl7Segment[];

  constructor(encoding: EncodingCharacters, charset: Hl7Charset, segments: readonly Hl7Segment[]) {
    this.encoding = encoding;
    this.charset = charset;
    this.segments = segments;
  }

  get msh(): Hl7Segment {
    return this.segments[0]!;
  }

  /** The n-th (1-based) segment with this name. */
  segment(name: string, occurrence = 1): Hl7Segment | undefined {
    let seen = 0;
    for (const s of this.segments) {
      if (s.name === name && ++seen === occurrence) return s;
    }
    return undefined;
  }

  all(name: string): Hl7Segment[] {
    return this.segments.filter((s) => s.name === name);
  }

  /** Value in the first segment of that name, e.g. get('PID', 3, 1, 4) = PID-3.4 of the first repetition. */
  get(segment: string, field: number, rep = 1, comp = 1, sub = 1): string {
    return this.segment(segment)?.get(field, rep, comp, sub) ?? '';
  }

  get messageCode(): string {
    return this.msh.get(9, 1, 1);
  }
  get triggerEvent(): string {
    return this.msh.get(9, 1, 2);
  }
  get controlId(): string {
    return this.msh.get(10);
  }
  get versionId(): string {
    return this.msh.get(12, 1, 1);
  }
  get sendingApplication(): string {
    return this.msh.get(3);
  }
  get sendingFacility(): string {
    return this.msh.get(4);
  }
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/**
 * Caps on the shape of one message, checked on the raw text before anything is split, so a message
 * built to blow up memory (100,000 repetitions, 900,000 sub-components in one frame) costs one scan.
 */
export interface Hl7MessageLimits {
  readonly maxSegments: number;
  /** ORC segments: each starts an order group (ORM^O01, OMI^O23) and becomes worklist items. */
  readonly maxOrderGroups: number;
  readonly maxFieldsPerSegment: number;
  /** Per field. */
  readonly maxRepetitions: number;
  /** Per repetition of a field. */
  readonly maxComponents: number;
  /** Per component. */
  readonly maxSubcomponents: number;
}

/** A position in a message as ERR-2 (ERL) names it: segment id, its occurrence (1-based), field, repetition, component, sub-component. */
export interface Hl7Position {
  readonly segment: string;
  readonly sequence: number;
  readonly field?: number;
  /** Field repetition; 1 when not given. */
  readonly repetition?: number;
  readonly component?: number;
  readonly subcomponent?: number;
}

/** The first position over a cap is the error's detail. */
function limitExceeded(what: string, position: Hl7Position): EdgeError {
  return new EdgeError('EDGE_HL7_LIMIT_EXCEEDED', `more ${what} than the cap`, { detail: { ...position } });
}

/** Read MSH-1/MSH-2 and the MSH segment. Throws EDGE_HL7_PARSE when the bytes are no HL7 message. */
export function parseMessageHeader(bytes: Uint8Array): Hl7Header {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || buf.toString('latin1', 0, 3) !== 'MSH') {
    throw new EdgeError('EDGE_HL7_PARSE', 'the message does not start with MSH');
  }
  let end = buf.length;
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 0x0d || buf[i] === 0x0a) {
      end = i;
      break;
    }
  }
  const text = buf.toString('latin1', 0, end);
  const encoding = readEncodingCharacters(text);
  const msh = splitSegment(text, encoding, (s) => s);
  return { encoding, msh18: msh.get(18, 1, 1), msh };
}

/**
 * Parse a whole message. Throws EDGE_HL7_PARSE (not HL7), EDGE_HL7_UNSUPPORTED_CHARSET (MSH-18 or an
 * escape names a charset the box does not decode).
 */
export function parseHl7Message(bytes: Uint8Array, limits?: Hl7MessageLimits): Hl7Message {
  const header = parseMessageHeader(bytes);
  const charset = charsetFromMsh18(header.msh18);
  const text = decodeHl7Text(bytes, charset);
  const encoding = header.encoding;
  const unescape = (value: string): string => unescapeHl7(value, encoding, charset);
  const segments: Hl7Segment[] = [];
  const occurrences = new Map<string, number>();
  for (const line of segmentLines(text)) {
    if (limits !== undefined) {
      const name = line.slice(0, 3);
      const sequence = (occurrences.get(name) ?? 0) + 1;
      occurrences.set(name, sequence);
      if (segments.length >= limits.maxSegments) throw limitExceeded('segments', { segment: name, sequence });
      if (name === 'ORC' && sequence > limits.maxOrderGroups) throw limitExceeded('order groups', { segment: name, sequence });
      checkSegmentShape(line, encoding, sequence, limits);
    }
    const segment = splitSegment(line, encoding, unescape);
    if (segments.length === 0 && segment.name !== 'MSH') {
      throw new EdgeError('EDGE_HL7_PARSE', 'the first segment is not MSH');
    }
    segments.push(segment);
  }
  return new Hl7Message(encoding, charset, segments);
}

/** The non-empty lines of a message (segments end with CR; LF and CRLF are tolerated), lazily. */
function* segmentLines(text: string): Generator<string> {
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 0x0d : text.charCodeAt(i);
    if (c !== 0x0d && c !== 0x0a) continue;
    if (i > start) yield text.slice(start, i);
    start = i + 1;
  }
}

/** One pass over a segment's raw text counting delimiters; throws at the first position over a cap. */
function checkSegmentShape(line: string, enc: EncodingCharacters, sequence: number, limits: Hl7MessageLimits): void {
  const segment = line.slice(0, 3);
  const isMsh = segment === 'MSH';
  const f = enc.field.charCodeAt(0);
  const r = enc.repetition.charCodeAt(0);
  const c = enc.component.charCodeAt(0);
  const s = enc.subcomponent.charCodeAt(0);
  // MSH-1 is the separator after "MSH", so MSH's first separator starts field 2 (the encoding characters).
  let field = 0;
  let repetition = 1;
  let component = 1;
  let subcomponent = 1;
  for (let i = 3; i < line.length; i++) {
    const ch = line.charCodeAt(i);
    if (ch === f) {
      field = field === 0 && isMsh ? 2 : field + 1;
      repetition = component = subcomponent = 1;
      if (field > limits.maxFieldsPerSegment) throw limitExceeded('fields', { segment, sequence, field });
    } else if (isMsh && field === 2) {
      continue;
    } else if (ch === r) {
      repetition += 1;
      component = subcomponent = 1;
      if (repetition > limits.maxRepetitions) throw limitExceeded('repetitions', { segment, sequence, field, repetition });
    } else if (ch === c) {
      component += 1;
      subcomponent = 1;
      if (component > limits.maxComponents) throw limitExceeded('components', { segment, sequence, field, repetition, component });
    } else if (ch === s) {
      subcomponent += 1;
      if (subcomponent > limits.maxSubcomponents) {
        throw limitExceeded('sub-components', { segment, sequence, field, repetition, component, subcomponent });
      }
    }
  }
}

function readEncodingCharacters(mshText: string): EncodingCharacters {
  const field = mshText[3]!;
  const end = mshText.indexOf(field, 4);
  const chars = end === -1 ? mshText.slice(4) : mshText.slice(4, end);
  // v2.7 adds a fifth (truncation) character; it needs no handling when reading.
  if (chars.length !== 4 && chars.length !== 5) {
    throw new EdgeError('EDGE_HL7_PARSE', `MSH-2 must hold 4 encoding characters, found ${chars.length}`);
  }
  const all = [field, ...chars];
  for (const c of all) {
    if (!/^[\x21-\x7e]$/.test(c) || /^[A-Za-z0-9]$/.test(c)) {
      throw new EdgeError('EDGE_HL7_PARSE', 'MSH-1/MSH-2 encoding characters must be printable ASCII punctuation');
    }
  }
  if (new Set(all).size !== all.length) {
    throw new EdgeError('EDGE_HL7_PARSE', 'MSH-1/MSH-2 encoding characters must all differ');
  }
  return { field, component: chars[0]!, repetition: chars[1]!, escape: chars[2]!, subcomponent: chars[3]! };
}

function splitSegment(line: string, enc: EncodingCharacters, unescape: (s: string) => string): Hl7Segment {
  const name = line.slice(0, 3);
  if (!SEGMENT_NAME.test(name) || (line.length > 3 && line[3] !== enc.field)) {
    throw new EdgeError('EDGE_HL7_PARSE', 'a segment does not start with a valid segment id');
  }
  const raw = line.split(enc.field);
  const rawFields: string[] = [];
  const fields: Hl7Field[] = [];
  if (name === 'MSH') {
    // MSH-1 is the separator itself, so the split is shifted by one; MSH-2 is never split or unescaped.
    rawFields.push('MSH', enc.field, raw[1] ?? '');
    fields.push([], [[[enc.field]]], [[[raw[1] ?? '']]]);
    for (let i = 2; i < raw.length; i++) {
      rawFields.push(raw[i]!);
      fields.push(splitField(raw[i]!, enc, unescape));
    }
  } else {
    rawFields.push(name);
    fields.push([]);
    for (let i = 1; i < raw.length; i++) {
      rawFields.push(raw[i]!);
      fields.push(splitField(raw[i]!, enc, unescape));
    }
  }
  return new Hl7Segment(name, fields, rawFields);
}

function splitField(raw: string, enc: EncodingCharacters, unescape: (s: string) => string): Hl7Field {
  return raw.split(enc.repetition).map((rep) => rep.split(enc.component).map((comp) => comp.split(enc.subcomponent).map(unescape)));
}

const FORMATTING_TO_NEWLINE = new Set(['.br', '.sp']);
const FORMATTING_DROPPED = /^(H|N|\.fi|\.nf|\.in[+-]?\d*|\.ti[+-]?\d*|\.sk[+-]?\d*|\.ce|\.sp\d+|\.sp [+-]?\d+|Z.*)$/;

export function unescapeHl7(value: string, enc: EncodingCharacters, charset: Hl7Charset): string {
  if (!value.includes(enc.escape)) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c !== enc.escape) {
      out += c;
      i += 1;
      continue;
    }
    const end = value.indexOf(enc.escape, i + 1);
    if (end === -1) {
      out += value.slice(i);
      break;
    }
    const seq = value.slice(i + 1, end);
    const expanded = expandEscape(seq, enc, charset);
    out += expanded ?? enc.escape + seq + enc.escape;
    i = end + 1;
  }
  return out;
}

function expandEscape(seq: string, enc: EncodingCharacters, charset: Hl7Charset): string | undefined {
  switch (seq) {
    case 'F':
      return enc.field;
    case 'S':
      return enc.component;
    case 'T':
      return enc.subcomponent;
    case 'R':
      return enc.repetition;
    case 'E':
      return enc.escape;
  }
  if (FORMATTING_TO_NEWLINE.has(seq)) return '\n';
  if (FORMATTING_DROPPED.test(seq)) return seq.startsWith('.sp') ? '\n' : '';
  if (/^X([0-9A-Fa-f]{2})+$/.test(seq)) {
    return decodeHl7Text(Buffer.from(seq.slice(1), 'hex'), charset);
  }
  if (/^[CM][0-9A-Fa-f]+$/.test(seq)) {
    throw new EdgeError('EDGE_HL7_UNSUPPORTED_CHARSET', 'charset switching escapes (\\C..\\, \\M..\\) are not supported');
  }
  return undefined;
}

/** Escape text for a field value (inverse of the delimiter escapes). */
export function escapeHl7(value: string, enc: EncodingCharacters): string {
  let out = '';
  for (const c of value) {
    if (c === enc.escape) out += `${enc.escape}E${enc.escape}`;
    else if (c === enc.field) out += `${enc.escape}F${enc.escape}`;
    else if (c === enc.component) out += `${enc.escape}S${enc.escape}`;
    else if (c === enc.subcomponent) out += `${enc.escape}T${enc.escape}`;
    else if (c === enc.repetition) out += `${enc.escape}R${enc.escape}`;
    else if (c === '\r' || c === '\n') out += `${enc.escape}.br${enc.escape}`;
    else out += c;
  }
  return out;
}
