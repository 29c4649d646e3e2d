// Regression: SV and UV (64-bit integers) are framed in Explicit VR with a 2-byte reserved field and a
// 4-byte length (PS3.5 Table 7.1-1), like OB or UT. The codec and the streaming walker once read them
// with a 2-byte length, lost their place after the first one and refused (or misread) the data set.
import test from 'ava';
import { Buffer } from 'node:buffer';
import type { DataSet } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
import { DataSetWalker } from './dataset-walker.ts';
import { TransferSyntax } from './transfer-syntax.ts';

// Selector SV Value, Selector UV Value and, after them, Storage Media File-set UID (PS3.6); in Explicit
// VR the VR is read from the stream.
const SelectorSVValue = 0x00720082;
const SelectorUVValue = 0x00720083;
const StorageMediaFileSetUID = 0x00880140;

function header(tag: number, vr: string, length: number, long: boolean): Buffer {
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(length, 8);
  else h.writeUInt16LE(length, 6);
  return h;
}

function int64(value: bigint, signed: boolean): Buffer {
  const b = Buffer.alloc(8);
  if (signed) b.writeBigInt64LE(value);
  else b.writeBigUInt64LE(value);
  return b;
}

/** Explicit VR Little Endian, written out by hand from PS3.5 Table 7.1-1 rather than by the codec. */
const wire = Buffer.concat([
  header(Tag.PatientID, 'LO', 4, false),
  Buffer.from('ID1 ', 'latin1'),
  header(SelectorSVValue, 'SV', 16, true),
  int64(-2n, true),
  int64(-(2n ** 63n), true),
  header(SelectorUVValue, 'UV', 8, true),
  int64(2n ** 63n + 1n, false),
  header(StorageMediaFileSetUID, 'UI', 6, false),
  Buffer.from('1.2.34', 'latin1'),
]);

const dataSet: DataSet = new Map([
  [Tag.PatientID, { vr: 'LO', value: 'ID1' }],
  [SelectorSVValue, { vr: 'SV', value: '-2\\-9223372036854775808' }],
  [SelectorUVValue, { vr: 'UV', value: '9223372036854775809' }],
  [StorageMediaFileSetUID, { vr: 'UI', value: '1.2.34' }],
]);

test('codec: SV and UV decode with their 4-byte length and the element after them is read in place', (t) => {
  const ds = decodeDataSet(wire, TransferSyntax.ExplicitVRLittleEndian);
  t.deepEqual(ds.get(SelectorSVValue), { vr: 'SV', value: '-2\\-9223372036854775808' });
  t.deepEqual(ds.get(SelectorUVValue), { vr: 'UV', value: '9223372036854775809' });
  t.deepEqual(ds.get(StorageMediaFileSetUID), { vr: 'UI', value: '1.2.34' });
  t.is(ds.size, 4);
});

test('codec: SV and UV encode with a reserved field and a 4-byte length, byte for byte', (t) => {
  t.is(encodeDataSet(dataSet, TransferSyntax.ExplicitVRLittleEndian).toString('hex'), wire.toString('hex'));
});

test('walker: a data set with SV and UV is complete at every split, and the value after them is captured', (t) => {
  for (let split = 0; split <= wire.length; split++) {
    const walker = new DataSetWalker(TransferSyntax.ExplicitVRLittleEndian, [StorageMediaFileSetUID]);
    walker.push(wire.subarray(0, split));
    walker.push(wire.subarray(split));
    t.deepEqual(walker.finish(), { complete: true }, `split at ${split}`);
    t.is(walker.values.get(StorageMediaFileSetUID), '1.2.34', `split at ${split}`);
  }
  const cut = new DataSetWalker(TransferSyntax.ExplicitVRLittleEndian, []);
  // Cut inside the SV value: only a 4-byte length says the element is not over yet.
  cut.push(wire.subarray(0, 12 + 12 + 4));
  t.deepEqual(cut.finish(), { complete: false, why: 'data set ends inside an element' });
});
