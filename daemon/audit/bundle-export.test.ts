// Bundle export and verify at the level of bytes: worker-rendered XML equals inline rendering, the chain
// read from the head of each line, and the verifier's fast path naming damage as a full check would.
import test from 'ava';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordLine } from '../store/audit-log.ts';
import { sampleEvent, tempStore } from '../../test/support/audit-store.ts';
import { BundleFile } from './bundle.ts';
import { exportBundle } from './bundle-export.ts';
import { verifyBundle } from './bundle-verify.ts';
import { chainLinkOf, chainLinkOfBytes } from './chain-line.ts';
import { keyFileSigner } from './signer.ts';
import { readTar, tarBytes } from './tar.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';

const pki = makeAuditTestPki();
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const ca = [new X509Certificate(readFileSync(pki.siteCa))];
const ctx = await tempStore();
// More than one read batch (1,000) so chunks spread over several workers and must come back in order.
const RECORDS = 3_500;
for (let i = 1; i <= RECORDS; i++) ctx.store.audit.record(sampleEvent(i, Date.UTC(2025, 0, 1) + i));
await ctx.store.flush();

test.after.always(async () => {
  await ctx.cleanup();
  pki.cleanup();
});

test('XML rendered in worker threads is byte for byte the inline rendering, in sequence order', async (t) => {
  const parts = new Map<number, Map<string, Buffer>>();
  for (const renderWorkers of [0, 1, 3]) {
    const path = join(ctx.dir, `w${renderWorkers}.tar`);
    const r = await exportBundle({ trail: ctx.store.audit, signer, site: 'edge-test', fromSeq: 1, toSeq: RECORDS, path, renderWorkers });
    t.is(r.manifest.count, RECORDS);
    t.true((await verifyBundle(path, { trustAnchors: ca })).ok);
    parts.set(renderWorkers, await readTar(path));
  }
  const inline = parts.get(0)!;
  for (const w of [1, 3]) {
    t.true(parts.get(w)!.get(BundleFile.xml)!.equals(inline.get(BundleFile.xml)!), `xml with ${w} workers`);
    t.true(parts.get(w)!.get(BundleFile.records)!.equals(inline.get(BundleFile.records)!), `records with ${w} workers`);
  }
  const xml = inline.get(BundleFile.xml)!.toString('utf8');
  const seqs = [...xml.matchAll(/ParticipantObjectID="(\d+)" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="13"/g)].map((m) =>
    Number(m[1]),
  );
  t.deepEqual(
    seqs,
    Array.from({ length: RECORDS }, (_, i) => i + 1),
  );
  t.true(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>\n<AuditMessage>'));
  t.true(xml.endsWith('</AuditMessage>\n</AuditMessages>\n'));
});

test('a record that cannot be rendered fails the export and leaves no file behind', async (t) => {
  const broken = {
    ...ctx.store.audit,
    durableSeq: 2,
    firstSeq: 1,
    async *readBatches() {
      const line = recordLine({ seq: 1, prevHash: '0'.repeat(64), event: sampleEvent(1) });
      yield [
        { seq: 1, line, hash: createHash('sha256').update(line).digest('hex') },
        { seq: 2, line: `{"seq":2,"prevHash":"${createHash('sha256').update(line).digest('hex')}",not json`, hash: '0'.repeat(64) },
      ];
    },
  } as unknown as typeof ctx.store.audit;
  const path = join(ctx.dir, 'broken.tar');
  for (const renderWorkers of [0, 1]) {
    await t.throwsAsync(exportBundle({ trail: broken, signer, site: 'edge-test', fromSeq: 1, toSeq: 2, path, renderWorkers }), {
      code: 'EDGE_AUDIT_CHAIN_BROKEN',
    });
    t.throws(() => readFileSync(path), { code: 'ENOENT' });
  }
});

test('the chain link is read from the head of a canonical line, and only from one', (t) => {
  const line = recordLine({ seq: 42, prevHash: 'ab'.repeat(32), event: sampleEvent(42) });
  t.deepEqual(chainLinkOf(line), { seq: 42, prevHash: 'ab'.repeat(32) });
  const b = Buffer.from(`xx${line}yy`);
  const link = chainLinkOfBytes(b, 2, 2 + Buffer.byteLength(line));
  t.is(link?.seq, 42);
  t.is(b.toString('latin1', link!.prevHashAt, link!.prevHashAt + 64), 'ab'.repeat(32));
  for (const odd of [
    line.replace('{"seq":42', '{"seq":042'),
    line.replace('{"seq":42', '{"seq": 42'),
    line.replace('{"seq":42,"prevHash"', '{"prevHash"'),
    line.replace('ab'.repeat(32), 'ab'.repeat(31)),
    '{"seq":1e3,"prevHash":"' + '0'.repeat(64) + '"}',
    '',
  ]) {
    t.is(chainLinkOf(odd), undefined, odd.slice(0, 40));
    t.is(chainLinkOfBytes(Buffer.from(odd), 0, Buffer.byteLength(odd)), undefined, odd.slice(0, 40));
  }
});

/** The first bundle's records.jsonl rewritten by `edit`; manifest and signature kept. */
async function tampered(name: string, edit: (records: string) => string): Promise<string> {
  // One source per tampered copy: the tests of this file run at once, and a shared file is read half-written.
  const source = join(ctx.dir, `${name}.source.tar`);
  await exportBundle({ trail: ctx.store.audit, signer, site: 'edge-test', fromSeq: 1, toSeq: 10, path: source });
  const entries = await readTar(source);
  const out = join(ctx.dir, name);
  const names = [BundleFile.records, BundleFile.xml, BundleFile.manifest, BundleFile.signature];
  writeFileSync(
    out,
    tarBytes(
      names.map((n) => ({
        name: n,
        data: n === BundleFile.records ? Buffer.from(edit(entries.get(n)!.toString('utf8'))) : entries.get(n)!,
      })),
    ),
  );
  return out;
}

const breakJson =
  (lineIndex: number) =>
  (records: string): string =>
    records
      .split('\n')
      .map((l, i) => (i === lineIndex ? l.replace(/}}$/, '}') : l))
      .join('\n');

test('a line that starts like a record but is not JSON is named as such, in the middle and at the end', async (t) => {
  const middle = await verifyBundle(await tampered('json-middle.tar', breakJson(4)), { trustAnchors: ca });
  t.false(middle.ok);
  t.deepEqual(middle.firstBadRecord && { line: middle.firstBadRecord.line, seq: middle.firstBadRecord.seq }, { line: 5, seq: undefined });
  t.is(middle.problems[0]?.what, 'not valid JSON (edited?)');
  const last = await verifyBundle(await tampered('json-last.tar', breakJson(9)), { trustAnchors: ca });
  t.is(last.firstBadRecord?.line, 10);
  t.is(last.problems[0]?.what, 'not valid JSON (edited?)');
  const first = await verifyBundle(await tampered('json-first.tar', breakJson(0)), { trustAnchors: ca });
  t.is(first.firstBadRecord?.line, 1);
  t.is(first.problems[0]?.what, 'not valid JSON (edited?)');
});

test('line ends converted to CRLF leave the chain intact and fail the digest', async (t) => {
  const r = await verifyBundle(await tampered('crlf.tar', (s) => s.replaceAll('\n', '\r\n')), { trustAnchors: ca });
  t.false(r.ok);
  t.deepEqual(
    r.problems.map((p) => p.where),
    [BundleFile.records],
  );
});

test('a large XML entry is digested in a worker thread alongside the chain check', async (t) => {
  // Over the 16 MiB threshold: about 8,000 records' worth of XML.
  const many = await tempStore();
  t.teardown(() => many.cleanup());
  for (let i = 1; i <= 8_500; i++) many.store.audit.record(sampleEvent(i));
  await many.store.flush();
  const path = join(many.dir, 'big.tar');
  const r = await exportBundle({ trail: many.store.audit, signer, site: 'edge-test', fromSeq: 1, toSeq: 8_500, path });
  t.true(r.manifest.files[BundleFile.xml].bytes >= 16 * 1024 * 1024);
  t.true((await verifyBundle(path, { trustAnchors: ca })).ok);
  // One byte of the XML changed: caught by the worker's digest.
  const bytes = readFileSync(path);
  const at = bytes.indexOf('<AuditMessage>', 4096);
  bytes[at + 1] = 'a'.charCodeAt(0);
  writeFileSync(path, bytes);
  const bad = await verifyBundle(path, { trustAnchors: ca });
  t.deepEqual(bad.problems, [{ where: BundleFile.xml, what: 'digest does not match the signed manifest' }]);
});
