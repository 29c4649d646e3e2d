// edgectl backup of a running edged → wipe the data directory → edgectl restore → the worklist and the
// audit chain are back. A tampered backup, a box with another key, and a running edged are refused.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { verifyStore } from '../../daemon/store/backup.ts';
import { type AuditRecord, openStore } from '../../daemon/store/index.ts';
import { findscu } from '../support/dicom-peers.ts';
import { mllpSend, msa, ormNew } from '../support/hl7-peers.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

const edgectl = join(repoRoot, 'bin/edgectl');
const ORDERS = 5;

const accessions = async (port: number): Promise<string[]> => {
  const r = await findscu({ port, callingAe: 'MR01', keys: ['0008,0050', '0010,0010'] });
  return r.responses.map((x) => x['AccessionNumber'] ?? '').sort();
};

test('backup → wipe → restore: worklist and audit chain intact; tampered, wrong key and running daemon refused', async (t) => {
  const site = await createSite();
  const dataDir = join(site.dir, 'data');
  const keyFile = join(site.dir, 'keys', 'data.key');
  const backup = join(site.dir, 'edge.backup');
  try {
    let daemon = await Daemon.start(site.configFile);
    let before: string[];
    try {
      const acks = await mllpSend(
        daemon.ports.hl7,
        { certFile: site.ris.certFile, keyFile: site.ris.keyFile, caFile: site.pki.caCert },
        Array.from({ length: ORDERS }, (_, i) => ormNew(i + 1, { modality: 'MR' })),
      );
      t.deepEqual(acks.map(msa), Array(ORDERS).fill('AA'));
      before = await accessions(daemon.ports.dicomPlain);
      t.is(before.length, ORDERS);

      const b = await run(edgectl, ['backup', '--config', site.configFile, '--out', backup, '--json'], { timeoutMs: 60_000 });
      t.is(b.code, 0, b.stderr + b.stdout);
      const result = JSON.parse(b.stdout) as { records: number; files: number };
      t.true(result.records > ORDERS);
      t.is(result.files, 1, 'the config');
      t.is((await stat(backup)).mode & 0o777, 0o600);
      t.false((await readFile(backup)).includes(Buffer.from('PATIENT1')), 'no patient name in clear');

      const running = await run(edgectl, ['restore', '--config', site.configFile, '--in', backup], { timeoutMs: 60_000 });
      t.is(running.code, 1);
      t.regex(running.stderr, /EDGE_BACKUP_DAEMON_RUNNING/);
    } finally {
      await daemon.stop();
    }
    await rm(dataDir, { recursive: true, force: true });

    // Tampered: one byte flipped inside the encrypted stream.
    const tampered = join(site.dir, 'tampered.backup');
    const bytes = await readFile(backup);
    bytes[bytes.length - 100]! ^= 0x01;
    await writeFile(tampered, bytes);
    const bad = await run(edgectl, ['restore', '--config', site.configFile, '--in', tampered], { timeoutMs: 60_000 });
    t.is(bad.code, 1);
    t.regex(bad.stderr, /EDGE_BACKUP_INVALID/);
    // Truncated.
    await writeFile(tampered, (await readFile(backup)).subarray(0, bytes.length - 10));
    t.regex(
      (await run(edgectl, ['restore', '--config', site.configFile, '--in', tampered], { timeoutMs: 60_000 })).stderr,
      /EDGE_BACKUP_INVALID/,
    );

    // Another box (another data key): refused.
    await copyFile(keyFile, `${keyFile}.good`);
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const wrong = await run(edgectl, ['restore', '--config', site.configFile, '--in', backup], { timeoutMs: 60_000 });
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /EDGE_BACKUP_KEY_MISMATCH/);
    await copyFile(`${keyFile}.good`, keyFile);
    await stat(dataDir).then(
      () => t.fail('a refused restore left a data directory'),
      () => t.pass(),
    );

    const ok = await run(edgectl, ['restore', '--config', site.configFile, '--in', backup], { timeoutMs: 60_000 });
    t.is(ok.code, 0, ok.stderr + ok.stdout);
    t.regex(ok.stdout, /audit chain whole/);

    daemon = await Daemon.start(site.configFile);
    try {
      t.deepEqual(await accessions(daemon.ports.dicomPlain), before);
    } finally {
      await daemon.stop();
    }
    const keySource = new FileKeySource(keyFile);
    const ring = await keySource.load();
    const verified = await verifyStore(dataDir, ring, silentLogger);
    ring.destroy();
    t.true(verified.auditRecords > 0);
    const store = await openStore({ dataDir, keySource, replayWindowMs: 3_600_000, logger: silentLogger });
    try {
      const types: string[] = [];
      for await (const r of store.audit.records() as AsyncIterable<AuditRecord>) types.push(r.event.type);
      // The Export record was written after the snapshot (it is in the wiped chain, not the backup).
      t.false(types.includes('backup.exported'));
      t.is(types.filter((x) => x === 'backup.restored').length, 1);
      t.is(types.filter((x) => x === 'hl7.order-committed').length, ORDERS);
    } finally {
      await store.close();
    }
  } finally {
    await site.cleanup();
  }
});

test('backup of a stopped box by edgectl itself restores too', async (t) => {
  const site = await createSite();
  const backup = join(site.dir, 'edge.backup');
  try {
    const daemon = await Daemon.start(site.configFile);
    await daemon.stop();
    const b = await run(edgectl, ['backup', '--config', site.configFile, '--out', backup], { timeoutMs: 60_000 });
    t.is(b.code, 0, b.stderr + b.stdout);
    const again = await run(edgectl, ['backup', '--config', site.configFile, '--out', backup], { timeoutMs: 60_000 });
    t.is(again.code, 1, 'never overwrites');
    const r = await run(edgectl, ['restore', '--config', site.configFile, '--in', backup], { timeoutMs: 60_000 });
    t.is(r.code, 0, r.stderr + r.stdout);
    t.regex(r.stdout, /previous data directory kept as/);
  } finally {
    await site.cleanup();
  }
});
