// Online data-key rotation under traffic: orders keep flowing while the store is re-encrypted; after it
// no value names the old key id, and the old key is gone from the TPM.
import test from 'ava';
import { join } from 'node:path';
import { isEdgeError } from '../../daemon/core/errors.ts';
import { readManifest } from '../../daemon/security/tpm-key-source.ts';
import { openDatabase } from '../../daemon/store/database.ts';
import { countByKeyId } from '../../daemon/store/rekey.ts';
import { MllpTlsClient, msa, ormNew } from '../support/hl7-peers.ts';
import { run } from '../support/processes.ts';
import { Daemon, repoRoot } from '../support/site.ts';
import { Swtpm } from '../support/swtpm.ts';
import { createTpmSite } from '../support/tpm-site.ts';
import { eventually } from '../support/wait.ts';

test('rotate-data-key under traffic: no order lost, nothing left under the old key, old key destroyed', async (t) => {
  const swtpm = await Swtpm.start();
  t.teardown(() => swtpm.stop());
  const site = await createTpmSite(swtpm);
  t.teardown(() => site.cleanup());
  const ris = { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert };
  const daemon = await Daemon.start(site.configFile);
  t.teardown(() => daemon.stop());

  const before = await readManifest(join(site.dataDir, 'keys'));
  const oldHandle = before.data[0]!.handle;
  const client = await MllpTlsClient.connect(daemon.ports.hl7, ris);
  for (let n = 1; n <= 1500; n++) t.is(msa(await client.send(ormNew(n))), 'AA');

  // Traffic on two more connections during the rotation.
  let stop = false;
  let sent = 0;
  const acks: Array<string | undefined> = [];
  const traffic = [0, 1].map(async (lane) => {
    const c = await MllpTlsClient.connect(daemon.ports.hl7, ris);
    for (let n = 10_000 + lane * 100_000; !stop; n++) {
      sent++;
      acks.push(msa(await c.send(ormNew(n))));
    }
    c.close();
  });
  const rotated = await run(join(repoRoot, 'bin/edgectl'), ['keys', 'rotate-data-key', '--config', site.configFile, '--json'], {
    timeoutMs: 120_000,
  });
  // A little traffic after the switch too.
  const after = sent;
  await eventually(() => sent >= after + 20, 60_000, '20 orders after the rotation', 10);
  stop = true;
  await Promise.all(traffic);
  client.close();
  t.is(rotated.code, 0, rotated.stderr + rotated.stdout);
  const result = JSON.parse(rotated.stdout) as { newKeyId: number; retiredKeyIds: number[]; rewritten: number };
  t.is(result.newKeyId, 2);
  t.deepEqual(result.retiredKeyIds, [1]);
  t.true(result.rewritten >= 1500, `rewritten ${result.rewritten}`);
  t.true(acks.length > 0);
  t.deepEqual(
    acks.filter((a) => a !== 'AA'),
    [],
    'every order during the rotation was acknowledged AA',
  );

  const m = await readManifest(join(site.dataDir, 'keys'));
  t.deepEqual(
    m.data.map((d) => d.id),
    [2],
  );
  t.is(m.active, 2);
  const err = await t.throwsAsync(site.tpm.unseal(oldHandle, 'sha256:7'));
  t.true(isEdgeError(err, 'EDGE_TPM_OBJECT_MISSING'), String(err));

  t.is(await daemon.stop(), 0);
  const db = await openDatabase(site.dataDir);
  const counts = await countByKeyId(db);
  await db.close();
  t.is(counts.get(1) ?? 0, 0, 'no value under the old key id');
  t.true((counts.get(2) ?? 0) >= 1500);

  // The rotated store still serves after a restart (and remembers earlier control ids).
  const again = await Daemon.start(site.configFile);
  const c = await MllpTlsClient.connect(again.ports.hl7, ris);
  t.is(msa(await c.send(ormNew(1))), 'AR');
  t.is(msa(await c.send(ormNew(999_999))), 'AA');
  c.close();
  t.is(await again.stop(), 0);
});
