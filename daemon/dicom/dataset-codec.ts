// Encode and decode the core DataSet model in Implicit and Explicit VR Little Endian (PS3.5 7, A.1, A.2).
// Decoding treats its input as hostile: every length is bounds-checked, nesting depth is capped, and
// the only error it throws is EdgeError(EDGE_DICOM_DATASET_INVALID).
import { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';
import type { DataElement, DataSet, Vr } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { implicitVrOf } from './implicit-vr.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { DefaultRepertoire, resolveSpecificCharacterSet, type DicomCharacterSet } from '../core/dicom-character-sets.ts';
import { ItemDelimitationTag, ItemTag, SequenceDelimitationTag, UndefinedLength, longExplicitVrs } from './element-encoding.ts';

const binaryVrs: ReadonlySet<Vr> = new Set<Vr>(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const allVrs: ReadonlySet<string> = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);
/** VRs whose text is subject to Specific Character Set (PS3.5 6.1.2.3). */
const charsetVrs: ReadonlySet<Vr> = new Set<Vr>(['PN', 'LO', 'SH', 'LT', 'ST', 'UT', 'UC']);
const numericByteSize: Readonly<Partial<Record<Vr, number>>> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, UV: 8, SV: 8, AT: 4 };

export const DEFAULT_MAX_DEPTH = 12;

/** How text of charset-sensitive VRs is turned into bytes and back. */
export type TextEncoding = DicomCharacterSet;

export interface DecodeOptions {
  /** Maximum sequence nesting; deeper input is refused. */
  readonly maxDepth?: number;
  /** Called once per Specific Character Set term the codec does not support (text then decodes as latin1). */
  readonly onUnsupportedCharset?: (term: string) => void;
}

export interface EncodeOptions {
  /** Sequences and items with undefined length and delimiters instead of explicit lengths. */
  readonly undefinedLengthSequences?: boolean;
}

function invalid(message: string, cause?: unknown): EdgeError {
  return new EdgeError('EDGE_DICOM_DATASET_INVALID', message, cause === undefined ? undefined : { cause });
}

/**
 * Resolve a Specific Character Set value (PS3.3 C.12.1.1.2): the default repertoire (read leniently as
 * ISO 8859-1), ISO_IR 192, and the single-byte sets of core/dicom-character-sets.ts; anything else is
 * reported and read as the default.
 */
export function textEncodingOf(specificCharacterSet: string | undefined): { encoding: TextEncoding; unsupported: string[] } {
  const { charset, unsupported } = resolveSpecificCharacterSet(specificCharacterSet);
  return { encoding: charset, unsupported };
}

// ---------------------------------------------------------------------------------------------------
// Decoding

interface DecodeState {
  readonly buf: Buffer;
  readonly explicit: boolean;
  readonly maxDepth: number;
  readonly onUnsupportedCharset: ((term: string) => void) | undefined;
}

/** Decode a whole data set encoded in `transferSyntaxUid`. */
export function decodeDataSet(bytes: Uint8Array, transferSyntaxUid: string, options: DecodeOptions = {}): DataSet {
  let explicit: boolean;
  if (transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian) explicit = true;
  else if (transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian) explicit = false;
  else throw invalid(`unsupported transfer syntax ${transferSyntaxUid}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state: DecodeState = {
    buf,
    explicit,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    onUnsupportedCharset: options.onUnsupportedCharset,
  };
  try {
    const { ds } = readDataSet(state, 0, buf.length, false, 0, DefaultRepertoire);
    return ds;
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    // Buffer reads are bounds-checked before use; anything else reaching here is still bad input.
    throw invalid('data set cannot be decoded', err);
  }
}

/**
 * Read elements from `pos` up to `end`; when `untilItemDelimiter`, stop after (FFFE,E00D).
 * Returns the data set and the position after it.
 */
function readDataSet(
  s: DecodeState,
  start: number,
  end: number,
  untilItemDelimiter: boolean,
  depth: number,
  inherited: TextEncoding,
): { ds: DataSet; pos: number } {
  const ds: DataSet = new Map();
  let encoding = inherited;
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw invalid('truncated element header');
    const tag = ((s.buf.readUInt16LE(pos) << 16) | s.buf.readUInt16LE(pos + 2)) >>> 0;
    if (tag === ItemDelimitationTag) {
      if (!untilItemDelimiter) throw invalid('unexpected item delimiter');
      return { ds, pos: pos + 8 };
    }
    if (tag === ItemTag || tag === SequenceDelimitationTag) throw invalid('unexpected item tag in data set');
    let vr: Vr;
    let length: number;
    let headerLength: number;
    if (s.explicit) {
      const vrText = s.buf.toString('latin1', pos + 4, pos + 6);
      if (!/^[A-Z]{2}$/.test(vrText)) throw invalid('invalid VR');
      if (allVrs.has(vrText)) vr = vrText as Vr;
      else vr = 'UN'; // PS3.5 6.2: unknown VRs are read as UN (4-byte length form)
      if (longExplicitVrs.has(vr) || !allVrs.has(vrText)) {
        if (end - pos < 12) throw invalid('truncated element header');
        length = s.buf.readUInt32LE(pos + 8);
        headerLength = 12;
      } else {
        length = s.buf.readUInt16LE(pos + 6);
        headerLength = 8;
      }
    } else {
      vr = implicitVrOf(tag);
      length = s.buf.readUInt32LE(pos + 4);
      headerLength = 8;
    }
    // Order is not enforced (some senders get it wrong), but a repeated tag is ambiguous.
    if (ds.has(tag)) throw invalid('repeated element');
    pos += headerLength;
    const isSequence = vr === 'SQ' || (length === UndefinedLength && vr === 'UN');
    if (isSequence) {
      if (depth + 1 > s.maxDepth) throw invalid('sequences nested too deeply');
      // An undefined-length UN is a sequence in Implicit VR (PS3.5 6.2.2 note).
      const subState = vr === 'UN' && s.explicit ? { ...s, explicit: false } : s;
      let items: DataSet[];
      if (length === UndefinedLength) {
        const r = readItems(subState, pos, end, true, depth + 1, encoding);
        items = r.items;
        pos = r.pos;
      } else {
        if (length > end - pos) throw invalid('sequence length exceeds data');
        if (vr === 'UN') {
          // Defined-length UN stays opaque bytes.
          ds.set(tag, { vr: 'UN', value: Uint8Array.prototype.slice.call(s.buf, pos, pos + length) });
          pos += length;
          continue;
        }
        items = readItems(subState, pos, pos + length, false, depth + 1, encoding).items;
        pos += length;
      }
      ds.set(tag, { vr: 'SQ', value: items });
      continue;
    }
    if (length === UndefinedLength) throw invalid('undefined length on a non-sequence element');
    if (length > end - pos) throw invalid('element length exceeds data');
    const raw = s.buf.subarray(pos, pos + length);
    pos += length;
    const isPrivate = ((tag >>> 16) & 1) === 1;
    if (isPrivate || binaryVrs.has(vr)) {
      ds.set(tag, { vr: isPrivate ? 'UN' : (vr as 'OB'), value: new Uint8Array(raw) });
      continue;
    }
    const el = decodeValue(vr, raw, encoding);
    ds.set(tag, el);
    if (tag === Tag.SpecificCharacterSet && typeof el.value === 'string') {
      const cs = textEncodingOf(el.value);
      encoding = cs.encoding;
      for (const term of cs.unsupported) s.onUnsupportedCharset?.(term);
    }
  }
  if (untilItemDelimiter) throw invalid('missing item delimiter');
  if (pos !== end) throw invalid('data set overruns its length');
  return { ds, pos };
}

function readItems(
  s: DecodeState,
  start: number,
  end: number,
  untilSequenceDelimiter: boolean,
  depth: number,
  encoding: TextEncoding,
): { items: DataSet[]; pos: number } {
  const items: DataSet[] = [];
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw invalid('truncated item header');
    const tag = ((s.buf.readUInt16LE(pos) << 16) | s.buf.readUInt16LE(pos + 2)) >>> 0;
    const length = s.buf.readUInt32LE(pos + 4);
    pos += 8;
    if (tag === SequenceDelimitationTag) {
      if (!untilSequenceDelimiter) throw invalid('unexpected sequence delimiter');
      return { items, pos };
    }
    if (tag !== ItemTag) throw invalid('expected an item');
    if (length === UndefinedLength) {
      const r = readDataSet(s, pos, end, true, depth, encoding);
      items.push(r.ds);
      pos = r.pos;
    } else {
      if (length > end - pos) throw invalid('item length exceeds data');
      items.push(readDataSet(s, pos, pos + length, false, depth, encoding).ds);
      pos += length;
    }
  }
  if (untilSequenceDelimiter) throw invalid('missing sequence delimiter');
  return { items, pos };
}

function decodeValue(vr: Vr, raw: Buffer, encoding: TextEncoding): DataElement {
  const size = numericByteSize[vr];
  if (size !== undefined) {
    if (raw.length % size !== 0) throw invalid(`length of ${vr} value is not a multiple of ${size}`);
    const values: string[] = [];
    for (let off = 0; off < raw.length; off += size) values.push(readNumber(vr, raw, off));
    return { vr: vr as 'US', value: values.join('\\') };
  }
  const text = !charsetVrs.has(vr) ? raw.toString('latin1') : decodeText(raw, encoding);
  // Trailing padding (space, or NUL for UI) is not part of the value (PS3.5 6.2).
  return { vr: vr as 'CS', value: text.replace(/[ \0]+$/, '') };
}

function readNumber(vr: Vr, raw: Buffer, off: number): string {
  switch (vr) {
    case 'US':
      return String(raw.readUInt16LE(off));
    case 'SS':
      return String(raw.readInt16LE(off));
    case 'UL':
      return String(raw.readUInt32LE(off));
    case 'SL':
      return String(raw.readInt32LE(off));
    case 'FL':
      return String(raw.readFloatLE(off));
    case 'FD':
      return String(raw.readDoubleLE(off));
    case 'UV':
      return raw.readBigUInt64LE(off).toString();
    case 'SV':
      return raw.readBigInt64LE(off).toString();
    case 'AT':
      return (
        raw.readUInt16LE(off).toString(16).padStart(4, '0') +
        raw
          .readUInt16LE(off + 2)
          .toString(16)
          .padStart(4, '0')
      ).toUpperCase();
    default:
      throw invalid(`not a numeric VR ${vr}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Encoding

/** Encode a data set in `transferSyntaxUid`. Throws EDGE_DICOM_DATASET_INVALID for unencodable values. */
export function encodeDataSet(ds: DataSet, transferSyntaxUid: string, options: EncodeOptions = {}): Buffer {
  let explicit: boolean;
  if (transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian) explicit = true;
  else if (transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian) explicit = false;
  else throw invalid(`unsupported transfer syntax ${transferSyntaxUid}`);
  const parts: Buffer[] = [];
  writeDataSet(parts, ds, explicit, options.undefinedLengthSequences === true, DefaultRepertoire);
  return Buffer.concat(parts);
}

function byteLength(parts: readonly Buffer[], from: number): number {
  let n = 0;
  for (let i = from; i < parts.length; i++) n += (parts[i] as Buffer).length;
  return n;
}

function writeDataSet(parts: Buffer[], ds: DataSet, explicit: boolean, undefinedLengths: boolean, inherited: TextEncoding): void {
  let encoding = inherited;
  const cs = ds.get(Tag.SpecificCharacterSet);
  if (cs !== undefined && typeof cs.value === 'string') encoding = textEncodingOf(cs.value).encoding;
  const tags = [...ds.keys()].sort((a, b) => a - b);
  for (const tag of tags) {
    const el = ds.get(tag) as DataElement;
    if (tag >>> 16 === 0xfffe) throw invalid('item tags cannot be data elements');
    if (el.vr === 'SQ') {
      const headerAt = parts.length;
      parts.push(Buffer.alloc(0)); // placeholder for the header, sized once the items are written
      const bodyAt = parts.length;
      for (const item of el.value) {
        const itemHeaderAt = parts.length;
        parts.push(Buffer.alloc(8));
        const itemBodyAt = parts.length;
        writeDataSet(parts, item, explicit, undefinedLengths, encoding);
        const itemHeader = parts[itemHeaderAt] as Buffer;
        itemHeader.writeUInt16LE(0xfffe, 0);
        itemHeader.writeUInt16LE(0xe000, 2);
        if (undefinedLengths) {
          itemHeader.writeUInt32LE(UndefinedLength, 4);
          parts.push(delimiter(ItemDelimitationTag));
        } else {
          itemHeader.writeUInt32LE(byteLength(parts, itemBodyAt), 4);
        }
      }
      if (undefinedLengths) parts.push(delimiter(SequenceDelimitationTag));
      const length = undefinedLengths ? UndefinedLength : byteLength(parts, bodyAt);
      parts[headerAt] = elementHeader(tag, 'SQ', length, explicit);
      continue;
    }
    const value = encodeValue(el, encoding);
    parts.push(elementHeader(tag, el.vr, value.length, explicit), value);
  }
}

function delimiter(tag: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  return b;
}

function elementHeader(tag: number, vr: Vr, length: number, explicit: boolean): Buffer {
  const long = !explicit || longExplicitVrs.has(vr);
  if (explicit && !long && length > 0xffff) throw invalid(`value of ${vr} too long for its length field`);
  const b = Buffer.alloc(explicit && long ? 12 : 8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  if (!explicit) {
    b.writeUInt32LE(length, 4);
  } else {
    b.write(vr, 4, 'latin1');
    if (long) b.writeUInt32LE(length, 8);
    else b.writeUInt16LE(length, 6);
  }
  return b;
}

function encodeValue(el: DataElement, encoding: TextEncoding): Buffer {
  if (el.vr === 'SQ') throw invalid('sequence is not a value');
  if (typeof el.value !== 'string') {
    const bytes = Buffer.from(el.value.buffer, el.value.byteOffset, el.value.byteLength);
    return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.alloc(1)]);
  }
  const vr = el.vr;
  const size = numericByteSize[vr];
  if (size !== undefined) {
    const values = el.value === '' ? [] : el.value.split('\\');
    const b = Buffer.alloc(values.length * size);
    values.forEach((v, i) => writeNumber(vr, b, i * size, v));
    return b;
  }
  let bytes: Buffer;
  if (charsetVrs.has(vr)) {
    bytes = encodeText(el.value, encoding, vr);
  } else {
    // Other VRs are restricted to the default repertoire (PS3.5 6.1.2.2).
    if (/[^\u0000-\u007f]/.test(el.value)) throw invalid(`a ${vr} value has non-ASCII characters`);
    bytes = Buffer.from(el.value, 'latin1');
  }
  if (bytes.length % 2 === 1) bytes = Buffer.concat([bytes, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
  return bytes;
}

/** Latin-1 and UTF-8 through Buffer (the common cases, fastest); the other sets through their tables. */
function decodeText(raw: Buffer, cs: TextEncoding): string {
  if (cs.kind === 'utf8') return raw.toString('utf8');
  if (cs.kind === 'default' || cs.kind === 'latin1') return raw.toString('latin1');
  return cs.decode(raw);
}

function encodeText(text: string, cs: TextEncoding, vr: Vr): Buffer {
  if (cs.kind === 'utf8') return Buffer.from(text, 'utf8');
  // The default repertoire writes Latin-1 as before: values outside ASCII are declared by the caller.
  if (cs.kind === 'default' && !/[^\u0000-\u00ff]/.test(text)) return Buffer.from(text, 'latin1');
  const bytes = cs.kind === 'default' ? undefined : cs.encode(text);
  if (bytes === undefined) throw invalid(`a ${vr} value has characters outside the declared character set`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function writeNumber(vr: Vr, b: Buffer, off: number, text: string): void {
  const t = text.trim();
  try {
    switch (vr) {
      case 'US':
      case 'SS':
      case 'UL':
      case 'SL': {
        if (!/^[+-]?\d+$/.test(t)) throw invalid(`not an integer for ${vr}`);
        const n = Number(t);
        if (vr === 'US') b.writeUInt16LE(n, off);
        else if (vr === 'SS') b.writeInt16LE(n, off);
        else if (vr === 'UL') b.writeUInt32LE(n, off);
        else b.writeInt32LE(n, off);
        return;
      }
      case 'FL':
      case 'FD': {
        const n = Number(t);
        if (t === '' || Number.isNaN(n)) throw invalid(`not a number for ${vr}`);
        if (vr === 'FL') b.writeFloatLE(n, off);
        else b.writeDoubleLE(n, off);
        return;
      }
      case 'UV':
        b.writeBigUInt64LE(BigInt(t), off);
        return;
      case 'SV':
        b.writeBigInt64LE(BigInt(t), off);
        return;
      case 'AT': {
        if (!/^[0-9A-Fa-f]{8}$/.test(t)) throw invalid('AT value must be 8 hex digits');
        const tag = Number.parseInt(t, 16);
        b.writeUInt16LE(tag >>> 16, off);
        b.writeUInt16LE(tag & 0xffff, off + 2);
        return;
      }
      default:
        throw invalid(`not a numeric VR ${vr}`);
    }
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    throw invalid(`value out of range for ${vr}`, err);
  }
}
