// A/B update on files standing in for the partitions and the ESP: bundles made by image/make-bundle.sh
// (openssl-signed) from a small data file with a real dm-verity hash tree (veritysetup format / verify
// work on plain files). A good bundle lands in the inactive slot with one boot try; a bundle signed with
// another key, a tampered member and an older version are refused and switch nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { needsCommand, whenMet } from '../test/support/preconditions.ts';
import { repoRoot } from '../test/support/site.ts';
import { type Slot, type UpdateTarget, applyUpdate, slotStatus } from './update-command.ts';

const exec = promisify(execFile);
const register = whenMet(needsCommand('veritysetup', 'openssl', 'tar'));

async function makeKey(file: string): Promise<string> {
  await exec('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  await exec('openssl', ['pkey', '-in', file, '-pubout', '-out', `${file}.pub`]);
  return `${file}.pub`;
}

async function makeBundle(dir: string, version: string, key: string): Promise<{ file: string; root: Buffer }> {
  const work = join(dir, `work-${version}-${Math.random().toString(36).slice(2)}`);
  await mkdir(work);
  const root = randomBytes(3 * 1_048_576);
  await writeFile(join(work, 'root.squashfs'), root);
  const out = (await exec('veritysetup', ['format', join(work, 'root.squashfs'), join(work, 'root.verity')])).stdout;
  await writeFile(join(work, 'roothash'), /Root hash:\s*([0-9a-f]{64})/.exec(out)![1]!);
  await writeFile(join(work, 'imaging-edge-a.efi'), `uki a ${version}`);
  await writeFile(join(work, 'imaging-edge-b.efi'), `uki b ${version}`);
  const file = join(dir, `${version}-${Math.random().toString(36).slice(2)}.bundle`);
  await exec(join(repoRoot, 'image/make-bundle.sh'), [work, version, key, file]);
  return { file, root };
}

async function box(dir: string, updateKeyFile: string, booted: Slot): Promise<UpdateTarget> {
  const esp = join(dir, 'esp');
  await mkdir(esp, { recursive: true });
  await writeFile(join(esp, `imaging-edge-0.1.0-${booted}.efi`), 'running');
  await writeFile(join(dir, 'VERSION'), '0.1.0\n');
  await writeFile(join(dir, 'cmdline'), `root=/dev/mapper/root imaging_edge.slot=${booted} imaging_edge.roothash=00 console=ttyS0\n`);
  for (const kind of ['root', 'verity'])
    for (const slot of ['a', 'b']) {
      const f = await open(join(dir, `${kind}-${slot}`), 'w');
      await f.truncate(8 * 1_048_576);
      await f.close();
    }
  return {
    updateKeyFile,
    versionFile: join(dir, 'VERSION'),
    cmdlineFile: join(dir, 'cmdline'),
    espLinuxDir: esp,
    partition: (kind, slot) => join(dir, `${kind}-${slot}`),
    verityVerify: async (data, hash, rootHash) => {
      // The partition is larger than the image: the hash tree's superblock says how much to check.
      await exec('veritysetup', ['verify', data, hash, rootHash]);
    },
  };
}

register('a signed bundle is written to the inactive slot with one boot try; status shows both slots', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-update-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pub = await makeKey(join(dir, 'update.key'));
  const target = await box(dir, pub, 'a');
  const { file, root } = await makeBundle(dir, '0.2.0', join(dir, 'update.key'));
  const lines: string[] = [];
  const r = await applyUpdate(file, { force: false, target, log: (l) => lines.push(l) });
  t.like(r, { version: '0.2.0', slot: 'b' });
  t.deepEqual((await readFile(join(dir, 'root-b'))).subarray(0, root.length), root);
  t.deepEqual((await readdir(join(dir, 'esp'))).sort(), ['imaging-edge-0.1.0-a.efi', 'imaging-edge-0.2.0-b+1.efi']);
  t.is(await readFile(join(dir, 'esp', 'imaging-edge-0.2.0-b+1.efi'), 'utf8'), 'uki b 0.2.0');
  t.true(lines.some((l) => /dm-verity root hash [0-9a-f]{64} verified/.test(l)));
  t.deepEqual(
    (await slotStatus(target)).map((s) => [s.slot, s.version, s.state, s.booted]),
    [
      ['a', '0.1.0', 'good', true],
      ['b', '0.2.0', 'trying', false],
    ],
  );
  // systemd-boot counted the try down and the boot was not blessed: the slot is "bad".
  await exec('mv', [join(dir, 'esp', 'imaging-edge-0.2.0-b+1.efi'), join(dir, 'esp', 'imaging-edge-0.2.0-b+0-1.efi')]);
  t.like((await slotStatus(target))[1], { state: 'bad', triesLeft: 0 });
});

register('another key, a tampered member and an older version are refused; the slot keeps no kernel image', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-update-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pub = await makeKey(join(dir, 'update.key'));
  await makeKey(join(dir, 'rogue.key'));
  const target = await box(dir, pub, 'b');

  const rogue = await makeBundle(dir, '0.2.0', join(dir, 'rogue.key'));
  await t.throwsAsync(applyUpdate(rogue.file, { force: false, target, log: () => undefined }), {
    message: /not signed with this box’s update key/,
  });

  const tampered = await makeBundle(dir, '0.2.0', join(dir, 'update.key'));
  const fd = await open(tampered.file, 'r+');
  const size = (await fd.stat()).size;
  // The last member is root.squashfs: a byte in its middle.
  const at = size - 1024 - 1_048_576;
  const b = Buffer.alloc(1);
  await fd.read(b, 0, 1, at);
  b[0] = (b[0] ?? 0) ^ 1;
  await fd.write(b, 0, 1, at);
  await fd.close();
  await t.throwsAsync(applyUpdate(tampered.file, { force: false, target, log: () => undefined }), {
    message: /root.squashfs: sha256 differs/,
  });
  t.false(existsSync(join(dir, 'esp', 'imaging-edge-0.2.0-a+1.efi')), 'a half-written slot is never bootable');

  await writeFile(join(dir, 'VERSION'), '0.3.0\n');
  const older = await makeBundle(dir, '0.2.0', join(dir, 'update.key'));
  await t.throwsAsync(applyUpdate(older.file, { force: false, target, log: () => undefined }), {
    message: /older than the running 0\.3\.0/,
  });
  const forced = await applyUpdate(older.file, { force: true, target, log: () => undefined });
  t.like(forced, { version: '0.2.0', slot: 'a' });
});
