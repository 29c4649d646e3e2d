// The streaming demographic rewrite: only the head is re-encoded, pixel data passes through untouched,
// group lengths are fixed, transfer syntaxes are kept, and what cannot be rewritten is left as it is.
import test from 'ava';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSet } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { silentLogger } from '../core/log.ts';
import type { SpooledInstance } from '../core/instance-spool.ts';
import type { OrderReference } from '../core/ports.ts';
import { testOrder, testPatient } from '../../test/support/orders.ts';
import { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
import { DemographicsReconciler, rewriteDemographics, type Replacement, type RewriteOutcome } from './demographics-rewrite.ts';
import { part10Header } from './stow-client.ts';
import { runPeer } from './testing/run-peer.ts';
import { TransferSyntax } from './transfer-syntax.ts';

const EXPLICIT = TransferSyntax.ExplicitVRLittleEndian;
const IMPLICIT = TransferSyntax.ImplicitVRLittleEndian;
const CT = '1.2.840.10008.5.1.4.1.1.2';
const SOP = '1.2.826.0.1.3680043.9.7433.99.1';
const STUDY = '1.2.826.0.1.3680043.9.7433.1.1';

function text(vr: 'CS' | 'DA' | 'LO' | 'PN' | 'SH' | 'UI', value: string) {
  return { vr, value } as const;
}

/** A CT head as a modality would send it, with a sequence before the patient module. */
function head(over: Partial<Record<'name' | 'id' | 'issuer' | 'charset', string | undefined>> = {}, groupLength = false): DataSet {
  const ds: DataSet = new Map();
  if (over.charset !== undefined) ds.set(Tag.SpecificCharacterSet, text('CS', over.charset));
  ds.set(Tag.SOPClassUID, text('UI', CT));
  ds.set(Tag.SOPInstanceUID, text('UI', SOP));
  ds.set(Tag.AccessionNumber, text('SH', 'ACC1'));
  ds.set(Tag.ReferencedStudySequence, {
    vr: 'SQ',
    value: [
      new Map([
        [Tag.ReferencedSOPClassUID, text('UI', '1.2.840.10008.3.1.2.3.1')],
        [Tag.ReferencedSOPInstanceUID, text('UI', STUDY)],
      ]),
    ],
  });
  if (groupLength) ds.set(0x00100000, { vr: 'UL', value: '0' } as never);
  ds.set(Tag.PatientName, text('PN', over.name ?? 'OLD^NAME'));
  ds.set(Tag.PatientID, text('LO', over.id ?? 'PAT1'));
  if (over.issuer !== undefined) ds.set(Tag.IssuerOfPatientID, text('LO', over.issuer));
  ds.set(Tag.PatientBirthDate, text('DA', '19800101'));
  ds.set(Tag.PatientSex, text('CS', 'F'));
  ds.set(Tag.StudyInstanceUID, text('UI', STUDY));
  ds.set(Tag.SeriesInstanceUID, text('UI', `${STUDY}.1`));
  return ds;
}

function pixelHeader(explicit: boolean, length: number): Buffer {
  const b = Buffer.alloc(explicit ? 12 : 8);
  b.writeUInt16LE(0x7fe0, 0);
  b.writeUInt16LE(0x0010, 2);
  if (explicit) {
    b.write('OW', 4, 'latin1');
    b.writeUInt32LE(length, 8);
  } else {
    b.writeUInt32LE(length, 4);
  }
  return b;
}

async function* chunks(parts: readonly Buffer[], size: number): AsyncGenerator<Uint8Array> {
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += size) yield all.subarray(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

const NEW: Replacement = {
  PatientName: 'NEW^NAME',
  PatientID: 'PAT9',
  IssuerOfPatientID: 'GENHOSP',
  PatientBirthDate: '19800101',
  PatientSex: 'F',
};

for (const ts of [EXPLICIT, IMPLICIT]) {
  const label = ts === EXPLICIT ? 'explicit' : 'implicit';
  test(`${label} VR LE: patient values replaced and inserted in tag order, the rest byte-identical, at any chunk size`, async (t) => {
    const pixels = Buffer.alloc(4096, 0x5a);
    const input = [encodeDataSet(head(), ts), pixelHeader(ts === EXPLICIT, pixels.length), pixels];
    for (const size of [1, 7, 64, 100_000]) {
      const outcomes: RewriteOutcome[] = [];
      const out = await collect(rewriteDemographics(chunks(input, size), ts, async () => NEW, { onOutcome: (o) => outcomes.push(o) }));
      t.is(outcomes.length, 1);
      const o = outcomes[0]!;
      t.is(o.kind, 'rewritten');
      if (o.kind === 'rewritten') {
        t.deepEqual(
          o.changes.map((c) => [c.attribute, c.old, c.new]),
          [
            ['PatientName', 'OLD^NAME', 'NEW^NAME'],
            ['PatientID', 'PAT1', 'PAT9'],
            ['IssuerOfPatientID', '', 'GENHOSP'],
          ],
        );
      }
      const ds = decodeDataSet(out, ts);
      t.is((ds.get(Tag.PatientName) as { value: string }).value, 'NEW^NAME');
      t.is((ds.get(Tag.PatientID) as { value: string }).value, 'PAT9');
      t.is((ds.get(Tag.IssuerOfPatientID) as { value: string }).value, 'GENHOSP');
      t.is((ds.get(Tag.SOPInstanceUID) as { value: string }).value, SOP);
      t.is((ds.get(Tag.ReferencedStudySequence)?.value as DataSet[]).length, 1);
      t.deepEqual(out.subarray(out.length - pixels.length), pixels);
    }
  });
}

test('undefined-length sequences in the head are walked; group length (0010,0000) is recomputed', async (t) => {
  const ds = head({}, true);
  const bytes = encodeDataSet(ds, EXPLICIT, { undefinedLengthSequences: true });
  const out = await collect(
    rewriteDemographics(chunks([bytes], 5), EXPLICIT, async () => ({ PatientName: 'A^MUCH^LONGER^NAME^THAN^BEFORE' })),
  );
  const at = out.indexOf(Buffer.from([0x10, 0x00, 0x00, 0x00, 0x55, 0x4c]));
  t.true(at > 0);
  const groupLength = out.readUInt32LE(at + 8);
  // Group 0010 runs from after its length element to (0020,000D).
  const end = out.indexOf(Buffer.from([0x20, 0x00, 0x0d, 0x00]));
  t.is(groupLength, end - (at + 12));
  t.is((decodeDataSet(out, EXPLICIT).get(Tag.PatientName) as { value: string }).value, 'A^MUCH^LONGER^NAME^THAN^BEFORE');
});

test('unchanged when the object already matches (PN padding and empty components ignored)', async (t) => {
  const bytes = encodeDataSet(head({ name: 'NEW^NAME^^', id: 'PAT9', issuer: 'GENHOSP' }), EXPLICIT);
  const outcomes: RewriteOutcome[] = [];
  const out = await collect(rewriteDemographics(chunks([bytes], 33), EXPLICIT, async () => NEW, { onOutcome: (o) => outcomes.push(o) }));
  t.deepEqual(out, bytes);
  t.is(outcomes[0]?.kind, 'unchanged');
});

test('deflated and big-endian objects pass through with a recorded reason', async (t) => {
  const bytes = Buffer.from('not inflated here');
  for (const ts of ['1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2']) {
    const outcomes: RewriteOutcome[] = [];
    let asked = false;
    const out = await collect(
      rewriteDemographics(chunks([bytes], 4), ts, async () => ((asked = true), NEW), { onOutcome: (o) => outcomes.push(o) }),
    );
    t.deepEqual(out, bytes);
    t.false(asked);
    t.is(outcomes[0]?.kind, 'skipped');
  }
});

test('a name the object character set cannot hold is not written; UTF-8 objects take it', async (t) => {
  const ascii = encodeDataSet(head(), EXPLICIT);
  const outcomes: RewriteOutcome[] = [];
  const out = await collect(
    rewriteDemographics(chunks([ascii], 50), EXPLICIT, async () => ({ PatientName: 'MÜLLER^JÖRG' }), {
      onOutcome: (o) => outcomes.push(o),
    }),
  );
  t.deepEqual(out, ascii);
  t.is(outcomes[0]?.kind, 'skipped');
  const utf8 = encodeDataSet(head({ charset: 'ISO_IR 192' }), EXPLICIT);
  const out2 = await collect(rewriteDemographics(chunks([utf8], 50), EXPLICIT, async () => ({ PatientName: '山田^太郎' })));
  const at = out2.indexOf(Buffer.from('山田^太郎', 'utf8'));
  t.true(at > 0);
});

test('a head larger than the limit is forwarded unchanged', async (t) => {
  const bytes = encodeDataSet(head(), EXPLICIT);
  const outcomes: RewriteOutcome[] = [];
  const out = await collect(
    rewriteDemographics(chunks([bytes], 16), EXPLICIT, async () => NEW, { maxHeadBytes: 64, onOutcome: (o) => outcomes.push(o) }),
  );
  t.deepEqual(out, bytes);
  t.is(outcomes[0]?.kind, 'skipped');
});

test('200 MB of pixel data streams through without being held (RSS) and arrives byte-identical', async (t) => {
  t.timeout(60_000);
  const total = 200 * 1024 * 1024;
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  const first = Buffer.concat([encodeDataSet(head(), EXPLICIT), pixelHeader(true, total)]);
  async function* source(): AsyncGenerator<Uint8Array> {
    // The spool reads in chunks; the first one holds the head and the start of the pixel data.
    yield Buffer.concat([first, block.subarray(0, 4096)]);
    let sent = 4096;
    while (sent < total) {
      const n = Math.min(block.length, total - sent);
      yield block.subarray(0, n);
      sent += n;
    }
  }
  const expected = createHash('sha256');
  expected.update(block.subarray(0, 4096));
  for (let sent = 4096; sent < total; sent += block.length) expected.update(block.subarray(0, Math.min(block.length, total - sent)));
  const before = process.memoryUsage().rss;
  let peak = before;
  const got = createHash('sha256');
  const marker = pixelHeader(true, total);
  let prefix: Buffer | undefined = Buffer.alloc(0);
  let pixelBytes = 0;
  let headOut: Buffer = Buffer.alloc(0);
  for await (const c of rewriteDemographics(source(), EXPLICIT, async () => NEW)) {
    const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (prefix !== undefined) {
      // Find where the pixel data value starts in the first bytes out; hash from there on.
      prefix = Buffer.concat([prefix, b]);
      const at = prefix.indexOf(marker);
      if (at < 0) continue;
      headOut = prefix.subarray(0, at);
      const rest = prefix.subarray(at + marker.length);
      got.update(rest);
      pixelBytes += rest.length;
      prefix = undefined;
      continue;
    }
    got.update(b);
    pixelBytes += b.length;
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  t.is(pixelBytes, total);
  t.is(got.digest('hex'), expected.digest('hex'));
  t.is((decodeDataSet(headOut, EXPLICIT).get(Tag.PatientName) as { value: string }).value, 'NEW^NAME');
  t.log(`RSS growth while streaming 200 MB: ${((peak - before) / 1e6).toFixed(1)} MB`);
  t.true(peak - before < 64 * 1024 * 1024, `RSS grew by ${peak - before}`);
});

test('dcmdump reads the rewritten object as a valid Part 10 file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-rewrite-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const ts of [EXPLICIT, IMPLICIT]) {
    const out = await collect(
      rewriteDemographics(chunks([encodeDataSet(head({}, true), ts, { undefinedLengthSequences: true })], 9), ts, async () => NEW),
    );
    const file = join(dir, `${ts}.dcm`);
    await writeFile(file, Buffer.concat([part10Header({ sopClassUid: CT, sopInstanceUid: SOP, transferSyntaxUid: ts }), out]));
    const r = await runPeer('dcmdump', ['-E', '+L', file]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /\(0010,0010\) PN \[NEW\^NAME\]/);
    t.regex(r.stdout, /\(0010,0021\) LO \[GENHOSP\]/);
    t.notRegex(r.stdout + r.stderr, /W: |E: /);
  }
});

const instance: SpooledInstance = {
  key: 'i:abc',
  fileId: 'f1',
  sopClassUid: CT,
  sopInstanceUid: SOP,
  transferSyntaxUid: EXPLICIT,
  callingAeTitle: 'CT01',
  bytes: 0,
  receivedAt: 0,
};

test('reconciler: finds the order by accession, then Study Instance UID; records once, after the PACS confirmed', async (t) => {
  const asked: OrderReference[] = [];
  const order = testOrder(1, { patient: testPatient({ name: 'NEW^NAME', id: 'PAT9' }) });
  const r = new DemographicsReconciler({
    orders: { ordersByReference: async (ref) => (asked.push(ref), ref.studyInstanceUid === STUDY ? [order] : []) },
    logger: silentLogger,
  });
  const bytes = encodeDataSet(head(), EXPLICIT);
  const out = await collect(r.transform(instance, chunks([bytes], 40)));
  t.deepEqual(asked, [{ accessionNumber: 'ACC1' }, { studyInstanceUid: STUDY }]);
  t.is((decodeDataSet(out, EXPLICIT).get(Tag.PatientName) as { value: string }).value, 'NEW^NAME');
  t.is(r.forwarded({ ...instance, fileId: 'other' }), undefined, 'a newer copy is not the one that was rewritten');
  const rec = r.forwarded(instance);
  t.is(rec?.outcome.kind, 'rewritten');
  t.is(rec?.order, order);
  t.is(r.forwarded(instance), undefined, 'recorded once');
});

test('reconciler: orders that disagree about the patient leave the object unchanged, with a reason', async (t) => {
  const a = testOrder(1, { patient: testPatient({ id: 'PAT9' }) });
  const b = testOrder(2, { patient: testPatient({ id: 'PAT8' }) });
  const r = new DemographicsReconciler({ orders: { ordersByReference: async () => [a, b] }, logger: silentLogger });
  const bytes = encodeDataSet(head(), EXPLICIT);
  t.deepEqual(await collect(r.transform(instance, chunks([bytes], 40))), bytes);
  const rec = r.forwarded(instance);
  t.is(rec?.outcome.kind, 'skipped');
  t.regex(rec?.outcome.kind === 'skipped' ? rec.outcome.why : '', /disagree/);
});

test('reconciler: a linked downtime order rewrites the Accession Number too; an ordinary order never does', async (t) => {
  // The image was taken under the box's local accession ACC1; the RIS then linked the order as RISACC9.
  const linked = testOrder(1, {
    accessionNumber: 'RISACC9',
    patient: testPatient({ name: 'REAL^NAME', id: 'RISPID9' }),
    origin: 'downtime',
    downtime: {
      enteredBy: 'tech',
      reason: 'RIS down',
      enteredAt: 1,
      temporaryPatientId: true,
      original: { accessionNumber: 'ACC1', patient: { id: 'PAT1', issuer: '', name: 'OLD^NAME' } },
      linked: { at: 2, controlId: 'RISCTRL9', accessionNumber: 'RISACC9' },
    },
  });
  const r = new DemographicsReconciler({ orders: { ordersByReference: async () => [linked] }, logger: silentLogger });
  const out = decodeDataSet(await collect(r.transform(instance, chunks([encodeDataSet(head(), EXPLICIT)], 40))), EXPLICIT);
  t.is((out.get(Tag.AccessionNumber) as { value: string }).value, 'RISACC9');
  t.is((out.get(Tag.PatientID) as { value: string }).value, 'RISPID9');
  const rec = r.forwarded(instance);
  t.deepEqual(rec?.outcome.kind === 'rewritten' ? rec.outcome.changes.map((c) => c.attribute) : [], [
    'AccessionNumber',
    'PatientName',
    'PatientID',
    'IssuerOfPatientID',
  ]);

  const ordinary = testOrder(1, { accessionNumber: 'OTHER', patient: testPatient({ name: 'OLD^NAME', id: 'PAT1' }) });
  const plain = new DemographicsReconciler({ orders: { ordersByReference: async () => [ordinary] }, logger: silentLogger });
  const kept = decodeDataSet(await collect(plain.transform(instance, chunks([encodeDataSet(head(), EXPLICIT)], 40))), EXPLICIT);
  t.is((kept.get(Tag.AccessionNumber) as { value: string }).value, 'ACC1');
});
