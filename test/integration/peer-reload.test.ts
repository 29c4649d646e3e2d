// edgectl peer add/remove against a running edged: the change is live without a restart, an association
// of an unchanged modality held open across the reloads survives, a removed modality's open association
// is aborted and its new ones are refused (and audited), and an invalid change writes nothing.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../daemon/core/log.ts';
import type { AuditRecord } from '../../daemon/store/index.ts';
import { openStore } from '../../daemon/store/index.ts';
import { FileKeySource } from '../../daemon/security/file-key-source.ts';
import { findscu } from '../support/dicom-peers.ts';
import { openAssociation, release } from '../support/raw-association.ts';
import { run } from '../support/processes.ts';
import { Daemon, createSite, repoRoot } from '../support/site.ts';

const edgectl = join(repoRoot, 'bin/edgectl');

const usQuery = (port: number) => findscu({ port, callingAe: 'US01', keys: ['0008,0050', '0010,0010'] });

test('peer add/remove reload live, keep unchanged associations, close removed ones; invalid adds change nothing', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  try {
    const plain = daemon.ports.dicomPlain;
    // MR01 (unchanged all along) holds an association open across every reload below.
    const mr = await openAssociation(plain, 'MR01');
    t.is(mr.firstPduType, 0x02, 'MR01 association accepted');

    t.true((await usQuery(plain)).associationRejected, 'US01 is unknown before the add');

    const add = await run(
      edgectl,
      [
        'peer',
        'add',
        'modality',
        '--config',
        site.configFile,
        '--name',
        'us1',
        '--ae',
        'US01',
        '--transport',
        'plain',
        '--address',
        '127.0.0.1/32',
        '--modality',
        'US',
      ],
      { timeoutMs: 30_000 },
    );
    t.is(add.code, 0, add.stderr + add.stdout);
    t.regex(add.stdout, /edged reloaded the configuration/);
    const bak = JSON.parse(await readFile(`${site.configFile}.bak`, 'utf8')) as { dicom: { modalities: unknown[] } };
    t.is(bak.dicom.modalities.length, 2, 'previous config kept as .bak');

    const q = await usQuery(plain);
    t.false(q.associationRejected, q.stdout + q.stderr);
    t.is(q.finalStatus, 'Success');

    // A US01 association open while US01 is removed is aborted; MR01's is not.
    const us = await openAssociation(plain, 'US01');
    t.is(us.firstPduType, 0x02);
    const remove = await run(edgectl, ['peer', 'remove', 'modality', 'us1', '--config', site.configFile], { timeoutMs: 30_000 });
    t.is(remove.code, 0, remove.stderr + remove.stdout);
    t.regex(remove.stdout, /1 connection\(s\) of removed or changed peers closed/);
    await us.closed;
    t.is(us.pdus.at(-1)?.[0], 0x07, 'US01 got an A-ABORT');
    t.true((await usQuery(plain)).associationRejected, 'US01 refused after the remove');

    // Invalid: the box's own AE title, and a duplicate name. Nothing written, every issue printed.
    const before = await readFile(site.configFile, 'utf8');
    const bad = await run(
      edgectl,
      [
        'peer',
        'add',
        'modality',
        '--config',
        site.configFile,
        '--name',
        'mr1',
        '--ae',
        'EDGE',
        '--transport',
        'plain',
        '--address',
        '127.0.0.1/32',
      ],
      { timeoutMs: 30_000 },
    );
    t.is(bad.code, 1);
    t.regex(bad.stderr, /dicom\.modalities\[2\]\.name/);
    const tls = await run(
      edgectl,
      [
        'peer',
        'add',
        'modality',
        '--config',
        site.configFile,
        '--name',
        'x1',
        '--ae',
        'X1',
        '--transport',
        'tls',
        '--address',
        'not-an-address',
      ],
      { timeoutMs: 30_000 },
    );
    t.is(tls.code, 1);
    t.regex(tls.stderr, /dicom\.modalities\[2\]\.certificateCn/);
    t.regex(tls.stderr, /dicom\.modalities\[2\]\.addresses\[0\]/);
    t.is(await readFile(site.configFile, 'utf8'), before, 'config unchanged');

    const list = await run(edgectl, ['peer', 'list', '--config', site.configFile, '--json'], { timeoutMs: 30_000 });
    t.is(list.code, 0);
    t.deepEqual(
      (JSON.parse(list.stdout) as { modalities: Array<{ aeTitle: string }> }).modalities.map((m) => m.aeTitle),
      ['CT01', 'MR01'],
    );

    t.is(await release(mr), 0x06, 'MR01 association survived every reload and releases normally');
  } finally {
    await daemon.stop();
  }
  // The audit chain has both reloads and the refusal of the removed modality after it.
  const store = await openStore({
    dataDir: join(site.dir, 'data'),
    keySource: new FileKeySource(join(site.dir, 'keys', 'data.key')),
    replayWindowMs: 3_600_000,
    logger: silentLogger,
  });
  try {
    const records: AuditRecord[] = [];
    for await (const r of store.audit.records()) records.push(r);
    const reloads = records.filter((r) => r.event.type === 'config.reloaded');
    t.is(reloads.length, 2);
    t.regex(reloads[0]!.event.detail ?? '', /\+ae US01/);
    t.regex(reloads[1]!.event.detail ?? '', /\(-ae US01\); 1 connection/);
    const refusedAfter = records.filter(
      (r) => r.seq > reloads[1]!.seq && r.event.type === 'dicom.association-rejected' && r.event.participants.some((p) => p.id === 'US01'),
    );
    t.is(refusedAfter.length, 1);
  } finally {
    await store.close();
    await site.cleanup();
  }
});

test('SIGHUP reloads the file; a file with errors is refused and changes nothing', async (t) => {
  const site = await createSite();
  const daemon = await Daemon.start(site.configFile);
  try {
    const config = JSON.parse(await readFile(site.configFile, 'utf8')) as Record<string, any>;
    config['dicom'].modalities.push({ name: 'us1', aeTitle: 'US01', transport: 'plain', addresses: ['127.0.0.1/32'] });
    config['dicom'].modalities.push({ name: 'us1', aeTitle: 'EDGE', transport: 'plain' });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(site.configFile, JSON.stringify(config));
    process.kill(daemon.pid, 'SIGHUP');
    await daemon.process.waitForEvent('config.reload-refused', 10_000);
    t.true((await usQuery(daemon.ports.dicomPlain)).associationRejected, 'nothing applied');

    config['dicom'].modalities.pop();
    config['hl7'].listen.port = 1; // needs a restart: reported, old listener kept
    await writeFile(site.configFile, JSON.stringify(config));
    process.kill(daemon.pid, 'SIGHUP');
    const ev = await daemon.process.waitForEvent('config.reloaded', 10_000);
    t.is(ev['restartRequired'], 1);
    const q = await usQuery(daemon.ports.dicomPlain);
    t.false(q.associationRejected, q.stdout + q.stderr);
  } finally {
    await daemon.stop();
    await site.cleanup();
  }
});
