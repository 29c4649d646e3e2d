// Bundles over damaged records: the box leaves them out and declares them in the signed manifest; the
// verifier checks everything else and states each gap. A gap the manifest does not declare still fails.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../store/database.ts';
import { auditKey } from '../store/audit-log.ts';
import { sampleEvent, tempStore } from '../../test/support/audit-store.ts';
import { exportBundle } from './bundle-export.ts';
import { verifyBundle } from './bundle-verify.ts';
import { keyFileSigner } from './signer.ts';
import { makeAuditTestPki } from '../../test/support/test-pki.ts';

const pki = makeAuditTestPki();
test.after.always(() => pki.cleanup());
const signer = keyFileSigner(pki.device.cert, pki.device.key);
const trust = {
  trustAnchors: [new X509Certificate(readFileSync(pki.siteCa))],
  deviceCert: new X509Certificate(readFileSync(pki.device.cert)),
};

test('damage at the start, in the middle and at the end of a range is declared, and the rest verifies', async (t) => {
  const ctx = await tempStore();
  t.teardown(() => ctx.cleanup());
  for (let i = 1; i <= 30; i++) ctx.store.audit.record(sampleEvent(i));
  await ctx.store.flush();
  await ctx.store.close();
  const db = await openDatabase(join(ctx.dir, 'data'));
  for (const seq of [5, 12, 13, 20]) {
    const v = Buffer.from((await db.get(auditKey(seq)))!);
    v[v.length - 1]! ^= 1;
    await db.put(auditKey(seq), v);
  }
  await db.close();
  const store = await ctx.reopen();
  const found = await store.audit.verifyStored();
  t.deepEqual(
    found.damaged.map((d) => [d.fromSeq, d.toSeq]),
    [
      [5, 5],
      [12, 13],
      [20, 20],
    ],
  );

  const path = join(ctx.dir, 'gaps.tar');
  const r = await exportBundle({
    trail: store.audit,
    signer,
    site: 'edge-test',
    fromSeq: 5,
    toSeq: 20,
    path,
    damaged: store.audit.damaged,
  });
  t.deepEqual(r.manifest.range, { ...r.manifest.range, fromSeq: 5, toSeq: 20 });
  t.is(r.manifest.count, 12);
  const report = await verifyBundle(path, trust);
  t.deepEqual(report.problems, []);
  t.true(report.deviceVerified);
  t.deepEqual(
    report.damaged.map((d) => [d.fromSeq, d.toSeq]),
    [
      [5, 5],
      [12, 13],
      [20, 20],
    ],
  );

  // Without the declaration the same records are a deletion, as before.
  const undeclared = join(ctx.dir, 'undeclared.tar');
  await t.throwsAsync(exportBundle({ trail: store.audit, signer, site: 'edge-test', fromSeq: 6, toSeq: 19, path: undeclared }), {
    message: /expected seq 12, found 14/,
  });
});
