// `edgectl update apply BUNDLE [--force]` and `edgectl update status`: A/B updates of the appliance. The
// bundle's signature is checked against the update key baked into the running root image, then the
// inactive slot's root and hash tree are written and checked (sha256 from the signed manifest, then
// `veritysetup verify` against the manifest's root hash), and its kernel image goes to the ESP with one
// boot try ("+1", systemd-boot's boot counting). systemd-bless-boot marks it good once
// imaging-edge-boot-check.service saw edged ready; a slot that does not come up is tried once and then
// sorted behind the good one, so the box boots back by itself.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplianceLayout } from './appliance-layout.ts';
import { BundleError, compareVersions, memberContent, openBundle, writeMember } from './update-bundle.ts';

export const updateHelp = `usage: edgectl update apply BUNDLE [--force]
       edgectl update status [--json]

apply   verifies BUNDLE (a file or a block device, e.g. the update stick) against the update key of this
        image, writes the inactive root slot and its kernel image (one boot try), and tells you to reboot.
        A bundle older than the running version is refused unless --force.
status  both slots: version, which one runs, boot tries left.

Exit status: 0 done, 1 refused or failed (nothing switched), 2 usage.`;

export type Slot = 'a' | 'b';

/** Where the appliance keeps what an update touches (tests point these at files). */
export interface UpdateTarget {
  readonly updateKeyFile: string;
  readonly versionFile: string;
  readonly cmdlineFile: string;
  readonly espLinuxDir: string;
  readonly partition: (kind: 'root' | 'verity', slot: Slot) => string;
  /** Runs `veritysetup verify`; tests without device-mapper tooling can pass their own. */
  readonly verityVerify: (data: string, hash: string, rootHash: string) => Promise<void>;
}

function veritysetupVerify(data: string, hash: string, rootHash: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('veritysetup', ['verify', data, hash, rootHash], { timeout: 600_000, encoding: 'utf8' }, (err, _out, stderr) => {
      if (err === null) resolve();
      else reject(new BundleError(`veritysetup verify failed: ${stderr.trim() || err.message}`));
    });
  });
}

export const applianceTarget: UpdateTarget = {
  updateKeyFile: ApplianceLayout.updateKey,
  versionFile: join(ApplianceLayout.prefix, 'VERSION'),
  cmdlineFile: '/proc/cmdline',
  espLinuxDir: '/efi/EFI/Linux',
  partition: (kind, slot) => `/dev/disk/by-partlabel/${kind}-${slot}`,
  verityVerify: veritysetupVerify,
};

// imaging-edge-VERSION-SLOT[+LEFT[-DONE]].efi, as systemd-boot renames it while counting.
const ukiName = /^imaging-edge-(\d+\.\d+\.\d+)-([ab])(?:\+(\d+)(?:-(\d+))?)?\.efi$/;

export interface SlotStatus {
  readonly slot: Slot;
  readonly version: string | undefined;
  readonly booted: boolean;
  readonly state: 'good' | 'trying' | 'bad' | 'empty';
  readonly triesLeft?: number;
  readonly file?: string;
}

export function bootedSlot(target: UpdateTarget): Slot {
  const m = /(?:^|\s)imaging_edge\.slot=([ab])(?:\s|$)/.exec(readFileSync(target.cmdlineFile, 'utf8'));
  if (m === null)
    throw new BundleError(`${target.cmdlineFile} names no root slot (imaging_edge.slot=): not booted from the appliance image`);
  return m[1] as Slot;
}

export async function slotStatus(target: UpdateTarget): Promise<SlotStatus[]> {
  const booted = bootedSlot(target);
  const files = await readdir(target.espLinuxDir);
  return (['a', 'b'] as const).map((slot) => {
    const file = files.find((f) => ukiName.exec(f)?.[2] === slot);
    const m = file === undefined ? null : ukiName.exec(file);
    if (m === null || file === undefined) return { slot, version: undefined, booted: booted === slot, state: 'empty' as const };
    const left = m[3] === undefined ? undefined : Number(m[3]);
    const state = left === undefined ? 'good' : left > 0 ? 'trying' : 'bad';
    return { slot, version: m[1], booted: booted === slot, state, ...(left === undefined ? {} : { triesLeft: left }), file };
  });
}

export async function applyUpdate(
  bundlePath: string,
  opts: { force: boolean; target?: UpdateTarget; log?: (line: string) => void },
): Promise<{ version: string; slot: Slot; seconds: number }> {
  const target = opts.target ?? applianceTarget;
  const log = opts.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  const bundle = await openBundle(bundlePath, await readFile(target.updateKeyFile, 'utf8'));
  try {
    const running = (await readFile(target.versionFile, 'utf8')).trim();
    const { version, rootHash } = bundle.manifest;
    log(`bundle ${version}: signature verified with ${target.updateKeyFile}`);
    if (compareVersions(version, running) < 0 && !opts.force) {
      throw new BundleError(`bundle ${version} is older than the running ${running}: refused (--force to downgrade)`);
    }
    const slot: Slot = bootedSlot(target) === 'a' ? 'b' : 'a';
    const root = target.partition('root', slot);
    const hash = target.partition('verity', slot);
    // The slot's old kernel image goes first: a half-written slot must never be bootable.
    for (const f of await readdir(target.espLinuxDir)) if (ukiName.exec(f)?.[2] === slot) await rm(join(target.espLinuxDir, f));
    await writeMember(bundle, 'root.squashfs', root);
    await writeMember(bundle, 'root.verity', hash);
    log(`slot ${slot}: root and hash tree written (${root}, ${hash})`);
    await target.verityVerify(root, hash, rootHash);
    log(`slot ${slot}: dm-verity root hash ${rootHash} verified`);
    const uki = await memberContent(bundle, slot === 'a' ? 'uki-a.efi' : 'uki-b.efi', 256 * 1_048_576);
    const file = join(target.espLinuxDir, `imaging-edge-${version}-${slot}+1.efi`);
    await writeFile(`${file}.tmp`, uki);
    const fd = await open(`${file}.tmp`, 'r');
    await fd.sync();
    await fd.close();
    await rename(`${file}.tmp`, file);
    log(`slot ${slot}: kernel image ${file} (one boot try; good once edged is ready)`);
    return { version, slot, seconds: (Date.now() - started) / 1000 };
  } finally {
    await bundle.fd.close();
  }
}

export async function updateCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === 'status') {
      const slots = await slotStatus(applianceTarget);
      if (rest.includes('--json')) console.log(JSON.stringify(slots));
      else
        for (const s of slots)
          console.log(
            `slot ${s.slot}: ${s.version ?? '-'} ${s.state}${s.triesLeft === undefined ? '' : ` (${s.triesLeft} tries left)`}${s.booted ? ' (running)' : ''}`,
          );
      return 0;
    }
    if (sub === 'apply') {
      const force = rest.includes('--force');
      const files = rest.filter((a) => a !== '--force');
      if (files.length !== 1) {
        console.error(updateHelp);
        return 2;
      }
      const r = await applyUpdate(files[0]!, { force });
      console.log(`update ${r.version} written to slot ${r.slot} in ${r.seconds.toFixed(1)} s; reboot to switch: systemctl reboot`);
      return 0;
    }
  } catch (err) {
    console.error(`edgectl: update: ${(err as Error).message}`);
    return 1;
  }
  console.error(updateHelp);
  return 2;
}
