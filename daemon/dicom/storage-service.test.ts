// Storage SCP with the encrypted spool, against DCMTK storescu as the modality; bad input over a raw socket.
import test from 'ava';
import { Buffer } from 'node:buffer';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { openTestSpool, type TestSpool } from '../store/testing/test-spool.ts';
import type { AssociationPolicy } from './association-policy.ts';
import { CommandField, encodeCommand } from './dimse-command.ts';
import { encodePData } from './pdu.ts';
import { storageServices, type StorageEvent } from './storage-service.ts';
import { buildAssociateRq } from './testing/associate-rq.ts';
import { splitPart10 } from './testing/part10.ts';
import { runPeer } from './testing/run-peer.ts';
import { ALLOWED_CALLING_AE, startTestListener, TEST_AE_TITLE } from './testing/test-listener.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { verificationService } from './verification-service.ts';
import { PEERS } from '../../test/support/paths.ts';
import { needsTmpfs, whenMet } from '../../test/support/preconditions.ts';
import { poll } from '../../test/support/wait.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
let workDir = '';
let files: string[] = [];

test.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'edge-storage-'));
  const r = await runPeer('bash', [`${PEERS}/dicom/gen-dicom.sh`, join(workDir, 'ct'), '6', '64x64'], 60_000);
  if (r.code !== 0) throw new Error(r.stderr);
  files = (await readdir(join(workDir, 'ct'))).map((f) => join(workDir, 'ct', f)).sort();
});

test.after.always(async () => {
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

const storagePolicy: AssociationPolicy = (rq) =>
  rq.callingAeTitle === ALLOWED_CALLING_AE
    ? {
        accept: true,
        abstractSyntaxes: new Set(['1.2.840.10008.1.1', CT]),
        transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
        transferSyntaxesByAbstractSyntax: new Map([
          [CT, [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian, JPEG_BASELINE]],
        ]),
        peer: {},
      }
    : { accept: false, result: 1, source: 1, reason: 3, why: 'unknown' };

async function withScp(
  t: { teardown(fn: () => Promise<void>): void },
  spoolOptions: Parameters<typeof openTestSpool>[1] = {},
): Promise<{ port: number; s: TestSpool; events: StorageEvent[]; associations: () => number }> {
  const dir = await mkdtemp(join(workDir, 'site-'));
  const s = await openTestSpool(dir, spoolOptions);
  const events: StorageEvent[] = [];
  const l = await startTestListener({
    services: [
      verificationService,
      ...storageServices({ sopClassUids: [CT], spool: s.spool, onEvent: (e) => events.push(e), logger: silentLogger }),
    ],
    onAssociationRequest: storagePolicy,
    maxPduLength: 65536,
  });
  t.teardown(async () => {
    await l.listener.stop(1000);
    await s.close();
  });
  return { port: l.port, s, events, associations: () => l.listener.associationCount };
}

const storescu = (port: number, paths: string[], extra: string[] = []) =>
  runPeer(
    'storescu',
    ['-aet', ALLOWED_CALLING_AE, '-aec', TEST_AE_TITLE, '-to', '10', '-ta', '10', ...extra, '127.0.0.1', String(port), ...paths],
    60_000,
  );

test('storescu: every instance is spooled encrypted, queued for the PACS, and reads back byte for byte', async (t) => {
  const { port, s, events } = await withScp(t);
  const r = await storescu(port, files);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.is(events.filter((e) => e.type === 'instance-stored').length, files.length);
  t.is(s.spool.usage().instances, files.length);
  t.is(s.outbox.queued('pacs').length, files.length);
  for (const f of files) {
    const p10 = splitPart10(await readFile(f));
    const inst = await s.spool.get(s.spool.recordKey(p10.sopInstanceUid));
    t.truthy(inst);
    const parts: Buffer[] = [];
    for await (const c of s.spool.read(inst!)) parts.push(Buffer.from(c));
    t.true(Buffer.concat(parts).equals(p10.dataSet));
    t.is(inst!.transferSyntaxUid, TransferSyntax.ExplicitVRLittleEndian);
    // Encrypted at rest: the patient name of the synthetic file is not in the spool file.
    const raw = await readFile(join(s.spoolDir, inst!.fileId));
    t.false(raw.includes(Buffer.from('TEST^PATIENT')));
  }
});

test('storescu: the same SOP Instance UID sent twice is one spool record (idempotent), two forward entries', async (t) => {
  const { port, s } = await withScp(t);
  const one = files.slice(0, 1);
  t.is((await storescu(port, one)).code, 0);
  t.is((await storescu(port, one)).code, 0);
  t.is(s.spool.usage().instances, 1);
  t.is(s.outbox.queued('pacs').length, 2);
});

test('storescu: an unconfigured SOP class is not accepted (no presentation context)', async (t) => {
  const { port, s } = await withScp(t);
  const raw = await rawStore(port, MR, TransferSyntax.ExplicitVRLittleEndian, Buffer.alloc(16), true);
  t.is(raw.result, 'context-rejected');
  t.is(s.spool.usage().instances, 0);
});

test('spool above its high-water mark: C-STORE gets 0xA700 with the reason, nothing is kept', async (t) => {
  const { port, s, events } = await withScp(t, { highWaterBytes: 1 });
  const first = await storescu(port, files.slice(0, 1));
  t.is(first.code, 0);
  t.is(s.spool.usage().instances, 1); // the first goes in (spool was empty)
  const r = await storescu(port, files.slice(1, 2), ['-v']);
  t.regex(r.stdout + r.stderr, /OutOfResources/);
  t.is(s.spool.usage().instances, 1);
  const refused = events.find((e) => e.type === 'instance-refused');
  t.truthy(refused);
  t.regex(refused?.type === 'instance-refused' ? refused.why : '', /high-water/);
});

test('truncated data set (ends inside an element): 0xC000, nothing spooled, the association keeps serving', async (t) => {
  const { port, s } = await withScp(t);
  const p10 = splitPart10(await readFile(files[0]!));
  const cut = p10.dataSet.subarray(0, p10.dataSet.length - 100);
  const r = await rawStore(port, CT, TransferSyntax.ExplicitVRLittleEndian, cut, false, p10.sopInstanceUid);
  t.is(r.result, 'status:c000');
  t.is(s.spool.usage().instances, 0);
  t.is(s.outbox.queued('pacs').length, 0);
  t.is((await storescu(port, files.slice(0, 1))).code, 0);
  t.is(s.spool.usage().instances, 1);
});

test('connection dropped in the middle of a data set: nothing spooled, no file left behind', async (t) => {
  const { port, s, associations } = await withScp(t);
  const p10 = splitPart10(await readFile(files[0]!));
  await rawStore(port, CT, TransferSyntax.ExplicitVRLittleEndian, p10.dataSet.subarray(0, 3000), false, p10.sopInstanceUid, true);
  // Wait until the association is over and its writer has finished (its file is created asynchronously,
  // so "no file yet" right after the drop is not "no file left").
  await poll(() => associations() === 0 && s.spool.openWriters === 0, 2000, 20);
  t.deepEqual(await spoolFiles(s), []);
  t.is(s.spool.usage().instances, 0);
});

function spoolFiles(s: TestSpool): Promise<string[]> {
  return readdir(s.spoolDir);
}

test('oversized PDU: the association is aborted, the listener keeps serving', async (t) => {
  const { port } = await withScp(t);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.write(
    buildAssociateRq({
      calling: ALLOWED_CALLING_AE,
      called: TEST_AE_TITLE,
      contexts: [{ id: 1, abstractSyntax: CT, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] }],
    }),
  );
  const got = await readUntil(sock, (b) => b.length >= 6 && b.readUInt8(0) === 0x02);
  t.is(got.readUInt8(0), 0x02);
  const huge = Buffer.alloc(6);
  huge.writeUInt8(0x04, 0);
  huge.writeUInt32BE(64 * 1024 * 1024, 2);
  sock.write(huge);
  const abort = await readUntil(sock, (b) => b.includes(Buffer.from([0x07, 0x00])), true);
  t.true(abort.includes(Buffer.from([0x07, 0x00])));
  sock.destroy();
  t.is((await storescu(port, files.slice(0, 1))).code, 0);
});

function readUntil(sock: net.Socket, done: (b: Buffer) => boolean, orClose = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let acc = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('timeout')), 10_000);
    const finish = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(acc);
    };
    const onData = (d: Buffer): void => {
      acc = Buffer.concat([acc, d]);
      if (done(acc)) finish();
    };
    sock.on('data', onData);
    if (orClose) sock.once('close', finish);
  });
}

/**
 * Associate, send one C-STORE with `dataSet` in PDVs, and report what came back: `context-rejected`,
 * `status:xxxx`, or `closed`. `dropAfter` closes the socket right after the data instead of waiting.
 */
async function rawStore(
  port: number,
  sopClass: string,
  ts: string,
  dataSet: Buffer,
  expectRejectedContext: boolean,
  sopInstanceUid = '1.2.3.4.5',
  dropAfter = false,
): Promise<{ result: string }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  try {
    sock.write(
      buildAssociateRq({
        calling: ALLOWED_CALLING_AE,
        called: TEST_AE_TITLE,
        contexts: [{ id: 1, abstractSyntax: sopClass, transferSyntaxes: [ts] }],
      }),
    );
    const ac = await readUntil(sock, (b) => b.length >= 6 && b.length >= 6 + b.readUInt32BE(2));
    // Presentation context item 0x21: result byte at offset 2 of its value.
    const i = ac.indexOf(Buffer.from([0x21, 0x00]), 74);
    const result = ac.readUInt8(i + 4 + 2);
    if (result !== 0) return { result: 'context-rejected' };
    if (expectRejectedContext) return { result: 'context-accepted' };
    const command = encodeCommand({
      CommandField: CommandField.CStoreRq,
      MessageID: 7,
      AffectedSOPClassUID: sopClass,
      AffectedSOPInstanceUID: sopInstanceUid,
      Priority: 0,
      CommandDataSetType: 0x0000,
    });
    for (const p of encodePData(1, true, command, 16384)) sock.write(p);
    const pdus = encodePData(1, false, dataSet, 16384);
    for (const p of pdus) sock.write(p);
    if (dropAfter) {
      sock.destroy();
      return { result: 'closed' };
    }
    const rsp = await readUntil(sock, (b) => b.length >= 6 && b.length >= 6 + b.readUInt32BE(2), true);
    if (rsp.length < 12 || rsp.readUInt8(0) !== 0x04) return { result: 'closed' };
    // Status (0000,0900) US in the implicit-VR command: tag 00 00 00 09, length 02 00 00 00, value.
    const at = rsp.indexOf(Buffer.from([0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00]));
    return {
      result: `status:${rsp
        .readUInt16LE(at + 8)
        .toString(16)
        .padStart(4, '0')}`,
    };
  } finally {
    sock.destroy();
  }
}

const withTmpfs = whenMet(needsTmpfs());

withTmpfs('disk-full spool (20 MB tmpfs): 0xA700, no partial object, what was acknowledged reads back, and it keeps serving', async (t) => {
  const mnt = await mkdtemp(join(workDir, 'tmpfs-'));
  const mounted = await runPeer('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt]);
  if (mounted.code !== 0) {
    t.fail(`mount: ${mounted.stderr.trim()}`);
    return;
  }
  t.teardown(async () => {
    await runPeer('umount', [mnt]);
  });
  const big = join(workDir, 'big');
  const g = await runPeer('bash', [`${PEERS}/dicom/gen-dicom.sh`, big, '12', '1024x1024'], 60_000);
  t.is(g.code, 0, g.stderr);
  const bigFiles = (await readdir(big)).map((f) => join(big, f)).sort();
  const { port, s } = await withScp(t, { dir: join(mnt, 'spool'), minFreeBytes: 0 });
  const r = await storescu(port, bigFiles, ['-v']);
  const text = r.stdout + r.stderr;
  t.regex(text, /OutOfResources/);
  const stored = (text.match(/Received Store Response \(Success\)/g) ?? []).length;
  t.true(stored > 0 && stored < bigFiles.length, `${stored} stored`);
  t.is(s.spool.usage().instances, stored);
  // Only complete, committed objects are on disk, and each one decrypts.
  const names = await readdir(s.spoolDir);
  t.is(names.length, stored);
  for (const f of bigFiles) {
    const inst = await s.spool.get(s.spool.recordKey(splitPart10(await readFile(f)).sopInstanceUid));
    if (inst === undefined) continue;
    let n = 0;
    for await (const c of s.spool.read(inst)) n += c.length;
    t.is(n, inst.bytes);
  }
  // Space comes back (the PACS took some): the same SCP stores again.
  const first = await s.spool.get(s.spool.recordKey(splitPart10(await readFile(bigFiles[0]!)).sopInstanceUid));
  await s.spool.remove(first!.key, first!.fileId);
  t.is((await storescu(port, files.slice(0, 1))).code, 0);
});
