import { Buffer } from 'node:buffer';
import test from 'ava';
import { DataDictionary, type Keyword } from '../core/data-dictionary.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { TransferSyntax } from './transfer-syntax.ts';

/** One Implicit VR Little Endian element (PS3.5 7.1.3): tag, 32-bit length, value; no VR on the wire. */
function implicitElement(tag: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

/** An empty item of defined length: decoded as UN, a sequence would be a byte string. */
const ONE_EMPTY_ITEM = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);

test('every dictionary entry decodes in Implicit VR Little Endian with its dictionary VR', (t) => {
  const mismatches: string[] = [];
  for (const [keyword, { tag, vr }] of Object.entries(DataDictionary) as [Keyword, { tag: number; vr: string }][]) {
    const bytes = implicitElement(tag, vr === 'SQ' ? ONE_EMPTY_ITEM : Buffer.alloc(0));
    const element = decodeDataSet(bytes, TransferSyntax.ImplicitVRLittleEndian).get(tag);
    const where = `${keyword} (${tag.toString(16).padStart(8, '0')})`;
    if (element?.vr !== vr) mismatches.push(`${where} decodes as ${element?.vr ?? 'nothing'}, not ${vr}`);
    else if (vr === 'SQ' && (element.value as readonly unknown[]).length !== 1) mismatches.push(`${where} lost its item`);
  }
  t.deepEqual(mismatches, []);
});
