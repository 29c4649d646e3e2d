// Test support: a strict reader of HL7 v2 messages, written apart from the box's own parser so that what
// the box sends is checked against the standard rather than against itself. Per MSH-12 it checks MSH-9
// (MSG.3 message structure only from v2.3.1), MSH-18 against that version's table 0211 and the bytes
// against MSH-18 (strict decoding), the segments each message structure allows, and the number of
// components of the data types the box writes (CX, XPN, EI, CE, HD), per version.
import { Buffer } from 'node:buffer';

export interface StrictMessage {
  readonly version: string;
  readonly msh18: string;
  readonly segments: readonly (readonly string[])[];
  /** Field `n` of the first segment named `name` (MSH counted as on the wire: MSH-1 is the separator). */
  field(name: string, n: number): string;
  component(name: string, n: number, c: number): string;
}

/** HL7 table 0211 per version (v2.3 and v2.3.1 have `UNICODE`; the UTF forms and Asian sets came with v2.4). */
const TABLE_0211_V23 = [
  '',
  'ASCII',
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `8859/${n}`),
  'ISO IR14',
  'ISO IR87',
  'ISO IR159',
  'UNICODE',
];
const TABLE_0211_V24 = [
  ...TABLE_0211_V23,
  'UNICODE UTF-8',
  'UNICODE UTF-16',
  'UNICODE UTF-32',
  'GB 18030-2000',
  'KS X 1001',
  'CNS 11643-1992',
  'BIG-5',
];
const TABLE_0211: Readonly<Record<string, readonly string[]>> = {
  '2.2': ['', 'ASCII', '8859', '8859/1', 'ISO IR14', 'ISO IR87', 'ISO IR159'],
  '2.3': TABLE_0211_V23,
  '2.3.1': TABLE_0211_V23,
  '2.4': TABLE_0211_V24,
  '2.5': TABLE_0211_V24,
  '2.5.1': TABLE_0211_V24,
};

/** Segments each message structure may carry (Z-segments allowed where the box's profile puts them). */
const STRUCTURES: Readonly<Record<string, readonly string[]>> = {
  ORM_O01: ['MSH', 'PID', 'PV1', 'ORC', 'OBR', 'ZDS', 'NTE'],
  OMI_O23: ['MSH', 'PID', 'PV1', 'ORC', 'TQ1', 'OBR', 'IPC', 'NTE'],
  ACK: ['MSH', 'MSA', 'ERR'],
};

/** Components per data type per version (the types the box writes). */
function maxComponents(type: 'CX' | 'XPN' | 'EI' | 'HD', version: string): number {
  const v25 = version.startsWith('2.5');
  switch (type) {
    case 'CX':
      return v25 ? 10 : 6;
    case 'XPN':
      return v25 ? 14 : 8;
    case 'EI':
      return 4;
    case 'HD':
      return 3;
  }
}

export class StrictHl7Error extends Error {}

function fail(message: string): never {
  throw new StrictHl7Error(message);
}

export function readStrictHl7(bytes: Buffer): StrictMessage {
  if (bytes.subarray(0, 8).toString('latin1') !== 'MSH|^~\\&') fail('MSH must start with MSH|^~\\&');
  if (bytes[bytes.length - 1] !== 0x0d) fail('the last segment must end with CR');
  const firstCr = bytes.indexOf(0x0d);
  const mshLine = bytes.subarray(0, firstCr);
  if (mshLine.some((b) => b > 0x7f)) fail('MSH must be ASCII');
  const msh = mshLine.toString('latin1').split('|');
  const version = (msh[11] ?? '').split('^')[0]!;
  const allowed = TABLE_0211[version] ?? fail(`MSH-12 ${version} is not a version this reader knows`);
  const msh18 = (msh[17] ?? '').split('~')[0]!;
  if (!allowed.includes(msh18)) fail(`MSH-18 "${msh18}" is not in table 0211 of v${version}`);
  let text: string;
  if (msh18 === '' || msh18 === 'ASCII') {
    if (bytes.some((b) => b > 0x7f)) fail('a byte above 0x7F without MSH-18');
    text = bytes.toString('latin1');
  } else if (msh18 === '8859/1') {
    if (bytes.some((b) => b >= 0x80 && b <= 0x9f)) fail('a C1 control in ISO 8859-1 text');
    text = bytes.toString('latin1');
  } else if (msh18 === 'UNICODE' || msh18 === 'UNICODE UTF-8') {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      fail(`bytes are not UTF-8 although MSH-18 is ${msh18}`);
    }
  } else fail(`this reader cannot decode ${msh18}`);

  const type = (msh[8] ?? '').split('^');
  if (type.length > (version === '2.2' || version === '2.3' ? 2 : 3)) fail(`MSH-9 has ${type.length} components, v${version} allows fewer`);
  if (type[0] === undefined || type[1] === undefined || !/^[A-Z]{3}$/.test(type[0]) || !/^[A-Z0-9]{3}$/.test(type[1])) {
    fail(`MSH-9 "${msh[8]}" is not type^event`);
  }
  const structure = type[2] ?? (type[0] === 'ACK' ? 'ACK' : `${type[0]}_${type[1]}`);
  if (type[2] !== undefined && type[0] === 'ACK' && type[2] !== 'ACK') fail(`MSH-9.3 of an ACK must be ACK, not ${type[2]}`);
  const allowedSegments = STRUCTURES[structure] ?? fail(`no structure ${structure}`);
  if (!/^\d{14}([+-]\d{4})?$/.test(msh[6] ?? '')) fail(`MSH-7 "${msh[6]}" is not YYYYMMDDHHMMSS[+/-ZZZZ]`);
  if ((msh[9] ?? '') === '' || (msh[9] ?? '').length > (version.startsWith('2.5') ? 199 : 20)) fail('MSH-10 empty or too long');
  if (!['P', 'D', 'T'].includes(msh[10] ?? '')) fail('MSH-11 must be P, D or T');

  const segments = text
    .slice(0, -1)
    .split('\r')
    .map((line) => line.split('|'));
  for (const seg of segments) {
    const name = seg[0]!;
    if (!allowedSegments.includes(name)) fail(`segment ${name} is not part of ${structure}`);
  }
  const first = (name: string): readonly string[] | undefined => segments.find((s) => s[0] === name);
  const fieldOf = (name: string, n: number): string => (name === 'MSH' ? (first(name)?.[n - 1] ?? '') : (first(name)?.[n] ?? ''));
  const checkComponents = (name: string, n: number, dataType: 'CX' | 'XPN' | 'EI' | 'HD'): void => {
    for (const rep of fieldOf(name, n).split('~')) {
      const count = rep.split('^').length;
      if (rep !== '' && count > maxComponents(dataType, version))
        fail(`${name}-${n} (${dataType}) has ${count} components, v${version} allows ${maxComponents(dataType, version)}`);
    }
  };
  if (first('PID') !== undefined) {
    checkComponents('PID', 3, 'CX');
    checkComponents('PID', 5, 'XPN');
    if (fieldOf('PID', 3).split('^')[0] === '') fail('PID-3.1 is empty');
  }
  if (first('ORC') !== undefined) checkComponents('ORC', 2, 'EI');
  for (const n of [3, 4, 5, 6]) if (fieldOf('MSH', n).split('^').length > maxComponents('HD', version)) fail(`MSH-${n} is not HD`);

  return {
    version,
    msh18,
    segments,
    field: fieldOf,
    component: (name, n, c) => fieldOf(name, n).split('~')[0]!.split('^')[c - 1] ?? '',
  };
}
