// Bundles exported from a real store and checked by the real CLI (`bin/edgectl audit verify`) and by
// `openssl cms -verify`. The tamper suite edits, deletes, swaps, truncates and re-hashes records and
// expects each to be caught with the place named.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportBundle, keyFileSigner, signDetached } from '../../daemon/audit/index.ts';
import { BundleFile } from '../../daemon/audit/bundle.ts';
import { readTar, tarBytes } from '../../daemon/audit/tar.ts';
import { makeAuditTestPki } from '../support/test-pki.ts';
import { sampleEvent, tempStore } from '../support/audit-store.ts';
import { repoRoot } from '../support/site.ts';
import { run } from '../support/processes.ts';

const pki = makeAuditTestPki();
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const ctx = await tempStore();
for (let i = 1; i <= 40; i++) ctx.store.audit.record(sampleEvent(i));
await ctx.store.flush();
const work = await mkdtemp(join(ctx.dir, 'bundles-'));
const first = join(work, 'b1.tar');
const second = join(work, 'b2.tar');
await exportBundle({ trail: ctx.store.audit, signer, site: 'edge-test', fromSeq: 1, toSeq: 20, path: first });
await exportBundle({ trail: ctx.store.audit, signer, site: 'edge-test', fromSeq: 21, toSeq: 40, path: second });

test.after.always(async () => {
  await ctx.cleanup();
  pki.cleanup();
});

const edgectl = (...args: string[]) => run(join(repoRoot, 'bin/edgectl'), ['audit', 'verify', ...args], { timeoutMs: 60_000 });

/** Rewrite a bundle's records.jsonl with `edit` (lines in, lines out); manifest and signature kept. */
async function tampered(name: string, edit: (lines: string[]) => string[]): Promise<string> {
  const entries = await readTar(first);
  const lines = entries.get(BundleFile.records)!.toString('utf8').trimEnd().split('\n');
  const out = join(work, name);
  const names = [BundleFile.records, BundleFile.xml, BundleFile.manifest, BundleFile.signature];
  await writeFile(
    out,
    tarBytes(
      names.map((n) => ({ name: n, data: n === BundleFile.records ? Buffer.from(`${edit(lines).join('\n')}\n`) : entries.get(n)! })),
    ),
  );
  return out;
}

test('an untampered bundle verifies with edgectl (against the CA) and with openssl cms -verify', async (t) => {
  const r = await edgectl(first, '--ca', pki.siteCa, '--device-cert', pki.device.cert);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /OK: signed by the device \(the pinned device certificate; chains to --ca\)/);
  const dir = await mkdtemp(join(work, 'x-'));
  t.is((await run('tar', ['-xf', first, '-C', dir])).code, 0);
  const o = await run('openssl', [
    'cms',
    '-verify',
    '-binary',
    '-inform',
    'DER',
    '-in',
    join(dir, BundleFile.signature),
    '-content',
    join(dir, BundleFile.manifest),
    '-CAfile',
    pki.siteCa,
    '-purpose',
    'any',
    '-out',
    '/dev/null',
  ]);
  t.is(o.code, 0, o.stderr);
  t.regex(o.stderr, /Verification successful/);
  // The manifest's digests are those of the extracted files (sha256sum would say the same).
  const manifest = JSON.parse(await readFile(join(dir, BundleFile.manifest), 'utf8')) as { files: Record<string, { sha256: string }> };
  t.is(
    createHash('sha256')
      .update(await readFile(join(dir, BundleFile.records)))
      .digest('hex'),
    manifest.files[BundleFile.records]!.sha256,
  );
  // Without --ca the signature is checked but the signer is not trusted: a distinct status, never 0.
  const loose = await edgectl(first);
  t.is(loose.code, 3);
  t.regex(loose.stdout, /NOT VERIFIED AS THE DEVICE: .*not checked against a CA/);
  // With --ca but no pinned device the signer could be any device certificate of the site CA.
  const unpinned = await edgectl(first, '--ca', pki.siteCa);
  t.is(unpinned.code, 3);
  t.regex(unpinned.stdout, /the device is not pinned/);
});

test('a second bundle verifies --after the first; a gap between bundles is caught', async (t) => {
  const r = await edgectl(second, '--ca', pki.siteCa, '--after', first);
  t.is(r.code, 0, r.stdout);
  const gap = join(work, 'gap.tar');
  await exportBundle({ trail: ctx.store.audit, signer, site: 'edge-test', fromSeq: 22, toSeq: 40, path: gap });
  const g = await edgectl(gap, '--ca', pki.siteCa, '--after', first);
  t.is(g.code, 1);
  t.regex(g.stdout, /previous bundle: ends at seq 20 but this bundle starts at seq 22/);
});

test('editing one byte of a record is caught at that record', async (t) => {
  const path = await tampered('edit.tar', (lines) => lines.map((l, i) => (i === 4 ? l.replace('event 5 ', 'event 6 ') : l)));
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /records\.jsonl line 6 \(seq 6\): prevHash does not match the hash of line 5/);
  t.regex(r.stdout, /records\.jsonl: digest does not match the signed manifest/);
  t.regex(r.stdout, /first bad record: line 6, seq 6/);
});

test('deleting a record is caught where the gap is', async (t) => {
  const path = await tampered('delete.tar', (lines) => lines.filter((_, i) => i !== 6));
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /line 7 \(seq 8\): expected seq 7/);
});

test('swapping two records is caught at the first of them', async (t) => {
  const path = await tampered('swap.tar', (lines) => lines.map((l, i) => (i === 2 ? lines[3]! : i === 3 ? lines[2]! : l)));
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /line 3 \(seq 4\): expected seq 3/);
});

test('truncating the tail is caught against the signed manifest', async (t) => {
  const path = await tampered('truncate.tar', (lines) => lines.slice(0, 17));
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /records end at seq 17 \(line 17\) but the signed manifest says toSeq 20: tail truncated/);
});

/** Replace every record with a forged one and re-hash the whole chain so it is internally consistent. */
function forge(lines: string[]): string[] {
  let prev = '0'.repeat(64);
  return lines.map((l) => {
    const r = JSON.parse(l) as { seq: number; prevHash: string; event: { detail?: string } };
    const line = JSON.stringify({ seq: r.seq, prevHash: prev, event: { ...r.event, detail: 'nothing happened' } });
    prev = createHash('sha256').update(line).digest('hex');
    return line;
  });
}

test('a re-hashed forgery of the whole chain is caught at line 1 against the signed manifest', async (t) => {
  const path = await tampered('forged.tar', forge);
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /line 1 \(seq 1\): hash differs from the signed manifest's firstHash/);
});

test('a forgery with a manifest re-signed by another key is refused by the CA check', async (t) => {
  const entries = await readTar(first);
  const lines = forge(entries.get(BundleFile.records)!.toString('utf8').trimEnd().split('\n'));
  const records = Buffer.from(`${lines.join('\n')}\n`);
  const hashes = lines.map((l) => createHash('sha256').update(l).digest('hex'));
  const manifest = JSON.parse(entries.get(BundleFile.manifest)!.toString('utf8')) as Record<string, any>;
  manifest['firstHash'] = hashes[0];
  manifest['lastHash'] = hashes.at(-1);
  manifest['files'][BundleFile.records] = { bytes: records.length, sha256: createHash('sha256').update(records).digest('hex') };
  const rogue = keyFileSigner(pki.rogue.cert, pki.rogue.key);
  manifest['device'] = { ...manifest['device'], certificateSha256: createHash('sha256').update(rogue.certificates[0]!).digest('hex') };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const path = join(work, 'resigned.tar');
  await writeFile(
    path,
    tarBytes([
      { name: BundleFile.records, data: records },
      { name: BundleFile.xml, data: entries.get(BundleFile.xml)! },
      { name: BundleFile.manifest, data: manifestBytes },
      { name: BundleFile.signature, data: await signDetached(rogue, manifestBytes) },
    ]),
  );
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /signature: the signer does not chain to the given CA/);
  // Without --ca the chain is not checked, but the certificate itself is no device certificate.
  const loose = await edgectl(path);
  t.is(loose.code, 1);
  t.regex(loose.stdout, /FAIL {2}signer: .*CN=central-soc is not a device certificate/);
});

test('a bundle cut short in the middle of the file is refused as truncated', async (t) => {
  const bytes = await readFile(first);
  const path = join(work, 'cut.tar');
  await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const r = await edgectl(path, '--ca', pki.siteCa);
  t.is(r.code, 1);
  t.regex(r.stdout, /FAIL {2}bundle: .*truncated/);
});
