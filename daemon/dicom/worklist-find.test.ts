// Modality Worklist C-FIND against real DCMTK findscu -W: results with UTF-8 names and nested
// sequences in both transfer syntaxes, C-CANCEL, and handler failures.
import test from 'ava';
import { Buffer } from 'node:buffer';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSet } from '../core/dataset.ts';
import { itemsOf, textOf } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { silentLogger } from '../core/log.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { DimseExchange, ResponseCommand } from './dimse-service.ts';
import { SopClass } from './dimse-service.ts';
import { FAKE_PATIENT_NAME, fakeWorklist, fakeWorklistItem } from './testing/fake-worklist.ts';
import { runPeer } from './testing/run-peer.ts';
import { ALLOWED_CALLING_AE, startTestListener, TEST_AE_TITLE, testPolicy } from './testing/test-listener.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { verificationService } from './verification-service.ts';
import { worklistFindService } from './worklist-find-service.ts';

let workDir = '';
test.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'edge-dicom-find-'));
});
test.after.always(async () => {
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

const keys = [
  '-k',
  'SpecificCharacterSet',
  '-k',
  'PatientName',
  '-k',
  'PatientID',
  '-k',
  'AccessionNumber',
  '-k',
  'ScheduledProcedureStepSequence[0].Modality=CT',
  '-k',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
  '-k',
  'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate',
];

function findscu(port: number, outDir: string, extra: string[]) {
  return runPeer('findscu', [
    '-W',
    '-v',
    '-aet',
    ALLOWED_CALLING_AE,
    '-aec',
    TEST_AE_TITLE,
    '-to',
    '10',
    '-ta',
    '10',
    '-td',
    '10',
    ...extra,
    ...keys,
    '-X',
    '-od',
    outDir,
    '127.0.0.1',
    String(port),
  ]);
}

/** Read a DICOM Part 10 file written by findscu -X with our own codec. */
async function readPart10(path: string): Promise<{ transferSyntax: string; dataSet: DataSet }> {
  const bytes = await readFile(path);
  if (bytes.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part 10 file');
  const metaLength = bytes.readUInt32LE(132 + 8);
  const metaEnd = 132 + 12 + metaLength;
  const meta = decodeDataSet(bytes.subarray(132, metaEnd), TransferSyntax.ExplicitVRLittleEndian);
  const transferSyntax = textOf(meta, Tag.TransferSyntaxUID) ?? '';
  return { transferSyntax, dataSet: decodeDataSet(bytes.subarray(metaEnd), transferSyntax) };
}

for (const [label, proposal, preference, expectedTs] of [
  [
    'implicit VR (-xi)',
    '-xi',
    [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
    TransferSyntax.ImplicitVRLittleEndian,
  ],
  [
    'explicit VR (-xe)',
    '-xe',
    [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
    TransferSyntax.ExplicitVRLittleEndian,
  ],
] as const) {
  test(`findscu -W ${label}: pending results with a UTF-8 name and nested SPS, then success`, async (t) => {
    const wl = fakeWorklist({ count: 3 });
    const s = await startTestListener({
      services: [verificationService, worklistFindService(wl.handler)],
      onAssociationRequest: testPolicy(preference),
    });
    const outDir = await mkdtemp(join(workDir, 'rsp-'));
    try {
      const r = await findscu(s.port, outDir, [proposal]);
      t.is(r.code, 0, r.stderr);
      t.regex(r.stderr + r.stdout, /Received Final Find Response \(Success\)/);
      const files = (await readdir(outDir)).sort();
      t.deepEqual(files, ['rsp0001.dcm', 'rsp0002.dcm', 'rsp0003.dcm']);
      for (const [i, f] of files.entries()) {
        const { transferSyntax, dataSet } = await readPart10(join(outDir, f));
        t.is(transferSyntax, expectedTs);
        t.is(textOf(dataSet, Tag.SpecificCharacterSet), 'ISO_IR 192');
        t.is(textOf(dataSet, Tag.PatientName), FAKE_PATIENT_NAME);
        t.is(textOf(dataSet, Tag.PatientID), `PID${i + 1}`);
        const sps = itemsOf(dataSet, Tag.ScheduledProcedureStepSequence);
        t.is(sps?.length, 1);
        t.is(textOf(sps?.[0] ?? new Map(), Tag.ScheduledProcedureStepID), `SPS${i + 1}`);
        t.is(textOf(sps?.[0] ?? new Map(), Tag.Modality), 'CT');
      }
      // DCMTK itself reads the same values.
      const dump = await runPeer('dcmdump', [join(outDir, 'rsp0001.dcm')]);
      t.true(dump.stdout.includes(FAKE_PATIENT_NAME));
      t.regex(dump.stdout, /\(0040,0009\) SH \[SPS1\]/);
      // The identifier findscu sent reached the handler decoded, sequence included.
      const identifier = wl.identifiers[0] ?? new Map();
      t.is(itemsOf(identifier, Tag.ScheduledProcedureStepSequence)?.[0]?.get(Tag.Modality)?.value, 'CT');
      t.true(identifier.has(Tag.PatientName));
      await s.waitForEvent((e) => e.type === 'association-released');
    } finally {
      await s.listener.stop(1000);
    }
  });
}

test('findscu --cancel 1: the handler iterator is closed early and the association is released cleanly', async (t) => {
  const wl = fakeWorklist({ count: 10_000, delayMs: 2 });
  const s = await startTestListener({ services: [verificationService, worklistFindService(wl.handler)] });
  const outDir = await mkdtemp(join(workDir, 'cancel-'));
  try {
    const r = await findscu(s.port, outDir, ['--cancel', '1']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr + r.stdout, /Final Find Response \(Cancel: MatchingTerminatedDueToCancelRequest\)/);
    await wl.finished;
    t.true(wl.closedEarly);
    t.true(wl.yielded < 10_000);
    await s.waitForEvent((e) => e.type === 'association-released');
    t.false(s.events.some((e) => e.type === 'association-aborted'));
  } finally {
    await s.listener.stop(1000);
  }
});

test('findscu: a failing handler ends the query with UnableToProcess (0xC000)', async (t) => {
  const wl = fakeWorklist({ count: 5, failAfter: 1 });
  const s = await startTestListener({ services: [verificationService, worklistFindService(wl.handler)] });
  const outDir = await mkdtemp(join(workDir, 'fail-'));
  try {
    const r = await findscu(s.port, outDir, []);
    t.regex(r.stderr + r.stdout, /Final Find Response \(Failed: UnableToProcess\)|0xc000/i);
    t.deepEqual(await readdir(outDir), ['rsp0001.dcm']);
    await s.waitForEvent((e) => e.type === 'association-released');
  } finally {
    await s.listener.stop(1000);
  }
});

for (const [proposal, expected] of [
  ['-xe', ['rsp0001.dcm', 'rsp0002.dcm']],
  ['-xi', ['rsp0001.dcm', 'rsp0002.dcm', 'rsp0003.dcm']],
] as const) {
  test(`findscu ${proposal}: an item the codec cannot encode is skipped and reported, the others are answered, then Success`, async (t) => {
    // Item 2 has a 70,000-byte LO: too long for Explicit VR's 16-bit length field, fine in Implicit VR.
    const items = [1, 2, 3].map((n) => {
      const item = fakeWorklistItem(n);
      if (n === 2) item.set(Tag.RequestedProcedureDescription, { vr: 'LO', value: 'X'.repeat(70_000) });
      return item;
    });
    const skipped: Array<{ accession: string | undefined; code: string; transferSyntaxUid: string }> = [];
    const service = worklistFindService(
      async function* () {
        yield* items;
      },
      {
        onItemSkipped: (item, code, ctx) =>
          skipped.push({ accession: textOf(item, Tag.AccessionNumber), code, transferSyntaxUid: ctx.transferSyntaxUid }),
      },
    );
    const s = await startTestListener({ services: [verificationService, service] });
    const outDir = await mkdtemp(join(workDir, 'skip-'));
    try {
      const r = await findscu(s.port, outDir, [proposal]);
      t.regex(r.stderr + r.stdout, /Received Final Find Response \(Success\)/);
      t.deepEqual((await readdir(outDir)).sort(), [...expected]);
      const accessions = await Promise.all(
        (await readdir(outDir)).sort().map(async (f) => textOf((await readPart10(join(outDir, f))).dataSet, Tag.AccessionNumber)),
      );
      t.deepEqual(accessions, proposal === '-xe' ? ['ACC1', 'ACC3'] : ['ACC1', 'ACC2', 'ACC3']);
      t.deepEqual(
        skipped,
        proposal === '-xe'
          ? [{ accession: 'ACC2', code: 'EDGE_DICOM_DATASET_INVALID', transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }]
          : [],
      );
      await s.waitForEvent((e) => e.type === 'association-released');
    } finally {
      await s.listener.stop(1000);
    }
  });
}

test('worklist service: an undecodable identifier gets IdentifierDoesNotMatchSOPClass (0xA900)', async (t) => {
  const responses: ResponseCommand[] = [];
  const exchange: DimseExchange = {
    association: {
      associationId: 'test',
      callingAeTitle: 'M',
      calledAeTitle: 'E',
      remoteAddress: '127.0.0.1',
      transport: 'plain',
      peerCertificate: undefined,
      peer: undefined,
    },
    logger: silentLogger,
    signal: new AbortController().signal,
    cancelled: false,
    respond: (c) => {
      responses.push(c);
      return Promise.resolve();
    },
  };
  const wl = fakeWorklist({ count: 1 });
  await worklistFindService(wl.handler).handle(
    {
      presentationContextId: 1,
      abstractSyntax: SopClass.ModalityWorklistInformationModelFind,
      transferSyntax: TransferSyntax.ImplicitVRLittleEndian,
      command: { CommandField: CommandField.CFindRq, CommandDataSetType: 0, MessageID: 7 },
      dataSet: Buffer.from([0x10, 0x00, 0x10, 0x00, 0xff, 0xff, 0xff, 0x7f, 0x41]),
    },
    exchange,
  );
  t.is(responses.length, 1);
  t.like(responses[0], {
    CommandField: CommandField.CFindRsp,
    MessageIDBeingRespondedTo: 7,
    Status: Status.IdentifierDoesNotMatchSOPClass,
  });
  t.is(wl.identifiers.length, 0);
});
