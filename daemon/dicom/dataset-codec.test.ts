import test from 'ava';
import { Buffer } from 'node:buffer';
import type { DataSet } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { isEdgeError } from '../core/errors.ts';
import { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
import { decodeCommand, encodeCommand, CommandField, Status } from './dimse-command.ts';
import { fakeWorklistItem } from './testing/fake-worklist.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

/** Maps compare by insertion order; the codec yields tag order. */
function sorted(ds: DataSet): DataSet {
  return new Map(
    [...ds].sort(([a], [b]) => a - b).map(([tag, el]) => [tag, el.vr === 'SQ' ? { vr: 'SQ' as const, value: el.value.map(sorted) } : el]),
  );
}

const both = [TransferSyntax.ImplicitVRLittleEndian, TransferSyntax.ExplicitVRLittleEndian] as const;

for (const ts of both) {
  for (const undefinedLengthSequences of [false, true]) {
    test(`round trip ${ts} ${undefinedLengthSequences ? 'undefined' : 'defined'}-length sequences`, (t) => {
      const ds = fakeWorklistItem(1);
      ds.set(Tag.PregnancyStatus, { vr: 'US', value: '4' });
      ds.set(Tag.PatientWeight, { vr: 'DS', value: '72.5' });
      ds.set(0x00091001, { vr: 'UN', value: new Uint8Array([1, 2, 3, 4]) }); // private
      ds.set(Tag.OtherPatientIDsSequence, { vr: 'SQ', value: [] });
      const bytes = encodeDataSet(ds, ts, { undefinedLengthSequences });
      t.is(bytes.length % 2, 0);
      const back = decodeDataSet(bytes, ts);
      t.deepEqual(back, sorted(ds));
    });
  }
}

test('odd-length values are padded: space for text, NUL for UI; padding is stripped on decode', (t) => {
  const ds: DataSet = new Map([
    [Tag.Modality, { vr: 'CS', value: 'MRI' }],
    [Tag.StudyInstanceUID, { vr: 'UI', value: '1.2.3' }],
  ]);
  const bytes = encodeDataSet(ds, TransferSyntax.ExplicitVRLittleEndian);
  // (0008,0060) CS len 4 "MRI " ; (0020,000D) UI len 6 "1.2.3\0"
  t.is(bytes.readUInt16LE(6), 4);
  t.is(bytes.toString('latin1', 8, 12), 'MRI ');
  t.is(bytes.readUInt16LE(18), 6);
  t.is(bytes.toString('latin1', 20, 26), '1.2.3\0');
  t.deepEqual(decodeDataSet(bytes, TransferSyntax.ExplicitVRLittleEndian), ds);
});

test('character sets: ISO_IR 192 is UTF-8, ISO_IR 100 is latin1, unknown sets are reported', (t) => {
  const utf8: DataSet = new Map([
    [Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 192' }],
    [Tag.PatientName, { vr: 'PN', value: 'Ødegård^Åse=山田' }],
  ]);
  const b1 = encodeDataSet(utf8, TransferSyntax.ImplicitVRLittleEndian);
  t.true(b1.includes(Buffer.from('山田', 'utf8')));
  t.deepEqual(decodeDataSet(b1, TransferSyntax.ImplicitVRLittleEndian), utf8);

  const latin1: DataSet = new Map([
    [Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 100' }],
    [Tag.PatientName, { vr: 'PN', value: 'Müller^Jürgen' }],
  ]);
  const b2 = encodeDataSet(latin1, TransferSyntax.ImplicitVRLittleEndian);
  t.true(b2.includes(Buffer.from('Müller', 'latin1')));
  t.deepEqual(decodeDataSet(b2, TransferSyntax.ImplicitVRLittleEndian), latin1);

  // A name outside latin1 cannot be sent under ISO_IR 100.
  const wrong: DataSet = new Map([
    [Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 100' }],
    [Tag.PatientName, { vr: 'PN', value: '山田' }],
  ]);
  t.throws(() => encodeDataSet(wrong, TransferSyntax.ImplicitVRLittleEndian), { message: /character set/ });

  const reported: string[] = [];
  const jis = Buffer.concat([
    encodeDataSet(new Map([[Tag.SpecificCharacterSet, { vr: 'CS', value: '\\ISO 2022 IR 87' }]]), TransferSyntax.ImplicitVRLittleEndian),
  ]);
  decodeDataSet(jis, TransferSyntax.ImplicitVRLittleEndian, { onUnsupportedCharset: (term) => reported.push(term) });
  t.deepEqual(reported, ['ISO 2022 IR 87']);

  // Items inherit the character set of their parent.
  const nested: DataSet = new Map<number, import('../core/dataset.ts').DataElement>([
    [Tag.SpecificCharacterSet, { vr: 'CS', value: 'ISO_IR 192' }],
    [
      Tag.ScheduledProcedureStepSequence,
      { vr: 'SQ', value: [new Map([[Tag.ScheduledPerformingPhysicianName, { vr: 'PN', value: 'Łukasz' }]])] },
    ],
  ]);
  t.deepEqual(decodeDataSet(encodeDataSet(nested, TransferSyntax.ExplicitVRLittleEndian), TransferSyntax.ExplicitVRLittleEndian), nested);
});

test('character sets: the single-byte sets of ISO 8859 are written and read at their own code points', (t) => {
  for (const [term, name, bytes] of [
    ['ISO_IR 101', 'WÓJCIK^ŁUKASZ', [0x57, 0xd3, 0x4a, 0x43, 0x49, 0x4b, 0x5e, 0xa3]],
    ['ISO_IR 144', 'ИВАН', [0xb8, 0xb2, 0xb0, 0xbd]],
    ['ISO_IR 148', 'ŞAHIN', [0xde, 0x41, 0x48, 0x49, 0x4e]],
  ] as const) {
    const ds: DataSet = new Map([
      [Tag.SpecificCharacterSet, { vr: 'CS', value: term }],
      [Tag.PatientName, { vr: 'PN', value: name }],
    ]);
    const encoded = encodeDataSet(ds, TransferSyntax.ExplicitVRLittleEndian);
    t.true(encoded.includes(Buffer.from(bytes)), term);
    t.deepEqual(decodeDataSet(encoded, TransferSyntax.ExplicitVRLittleEndian), ds, term);
  }
  // A query in ISO_IR 144 is read in it (not as Latin-1), so its name key matches the stored Cyrillic name.
  const query = Buffer.concat([
    Buffer.from([0x08, 0x00, 0x05, 0x00, 0x43, 0x53, 0x0a, 0x00]),
    Buffer.from('ISO_IR 144', 'latin1'),
    Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e, 0x06, 0x00, 0xb8, 0xb2, 0xb0, 0xbd, 0x2a, 0x20]),
  ]);
  const reported: string[] = [];
  const decoded = decodeDataSet(query, TransferSyntax.ExplicitVRLittleEndian, { onUnsupportedCharset: (term) => reported.push(term) });
  t.is(decoded.get(Tag.PatientName)?.value, 'ИВАН*');
  t.deepEqual(reported, []);
});

test('unknown public tags decode as UN in implicit VR and keep their bytes', (t) => {
  const raw = Buffer.from([0x08, 0x00, 0x99, 0x99, 0x02, 0x00, 0x00, 0x00, 0x41, 0x42]);
  const ds = decodeDataSet(raw, TransferSyntax.ImplicitVRLittleEndian);
  t.deepEqual(ds.get(0x00089999), { vr: 'UN', value: new Uint8Array([0x41, 0x42]) });
  t.deepEqual(encodeDataSet(ds, TransferSyntax.ImplicitVRLittleEndian), raw);
});

test('nesting depth is capped', (t) => {
  let ds: DataSet = new Map([[Tag.CodeValue, { vr: 'SH', value: 'X' }]]);
  for (let i = 0; i < 20; i++) ds = new Map([[Tag.ScheduledProtocolCodeSequence, { vr: 'SQ', value: [ds] }]]);
  const bytes = encodeDataSet(ds, TransferSyntax.ExplicitVRLittleEndian, { undefinedLengthSequences: true });
  const err = t.throws(() => decodeDataSet(bytes, TransferSyntax.ExplicitVRLittleEndian));
  t.true(isEdgeError(err, 'EDGE_DICOM_DATASET_INVALID'));
  t.notThrows(() => decodeDataSet(bytes, TransferSyntax.ExplicitVRLittleEndian, { maxDepth: 32 }));
});

test('garbage only ever throws EDGE_DICOM_DATASET_INVALID', (t) => {
  const valid = encodeDataSet(fakeWorklistItem(1), TransferSyntax.ExplicitVRLittleEndian, { undefinedLengthSequences: true });
  const random = seededRandom(t);
  const inputs: Buffer[] = [];
  for (let i = 0; i < 2000; i++) inputs.push(random.bytes(random.int(64)));
  for (let i = 0; i < valid.length; i++) inputs.push(valid.subarray(0, i));
  for (let i = 0; i < 500; i++) {
    const mutated = Buffer.from(valid);
    for (let k = 0; k < 4; k++) mutated[random.int(mutated.length)] = random.int(256);
    inputs.push(mutated);
  }
  for (const input of inputs) {
    for (const ts of both) {
      try {
        decodeDataSet(input, ts);
      } catch (err) {
        if (!isEdgeError(err, 'EDGE_DICOM_DATASET_INVALID')) {
          t.fail(`unexpected error ${String(err)} for ${input.toString('hex')}`);
          return;
        }
      }
    }
  }
  t.pass();
});

test('command sets round trip with CommandGroupLength', (t) => {
  const bytes = encodeCommand({
    CommandField: CommandField.CFindRsp,
    MessageIDBeingRespondedTo: 3,
    AffectedSOPClassUID: '1.2.840.10008.5.1.4.31',
    CommandDataSetType: 0x0101,
    Status: Status.UnableToProcess,
    ErrorComment: 'EDGE_STORE_NOT_OPEN',
  });
  t.is(bytes.readUInt32LE(8), bytes.length - 12);
  t.deepEqual(decodeCommand(bytes), {
    CommandField: CommandField.CFindRsp,
    MessageIDBeingRespondedTo: 3,
    AffectedSOPClassUID: '1.2.840.10008.5.1.4.31',
    CommandDataSetType: 0x0101,
    Status: 0xc000,
    ErrorComment: 'EDGE_STORE_NOT_OPEN',
  });
});
