// The hardware check of `edgectl provision`: CPU, memory, disks, network interfaces and link state, TPM.
// Read from node:os and /sys, /proc (systeminformation is not installed and spawns dozens of processes
// for the same facts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { TpmClient } from '../daemon/security/tpm-client.ts';

export interface HardwareCheck {
  readonly name: string;
  readonly ok: boolean;
  /** Warnings do not stop provisioning. */
  readonly severity: 'error' | 'warning' | 'info';
  readonly detail: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function checkHardware(o: {
  dataDir: string;
  tpm: TpmClient;
  minMemoryBytes?: number;
  minFreeDiskBytes?: number;
}): Promise<HardwareCheck[]> {
  const out: HardwareCheck[] = [];
  const cpu = cpus();
  out.push({
    name: 'cpu',
    ok: cpu.length >= 2,
    severity: cpu.length >= 2 ? 'info' : 'warning',
    detail: `${cpu.length} × ${cpu[0]?.model ?? 'unknown'}`,
  });
  const mem = totalmem();
  const minMem = o.minMemoryBytes ?? 2 * 1024 ** 3;
  out.push({
    name: 'memory',
    ok: mem >= minMem,
    severity: mem >= minMem ? 'info' : 'warning',
    detail: `${(mem / 1024 ** 3).toFixed(1)} GiB`,
  });
  try {
    const fs = await statfs(existsSync(o.dataDir) ? o.dataDir : join(o.dataDir, '..'));
    const free = fs.bavail * fs.bsize;
    const minFree = o.minFreeDiskBytes ?? 1024 ** 3;
    out.push({
      name: 'disk',
      ok: free >= minFree,
      severity: free >= minFree ? 'info' : 'error',
      detail: `${(free / 1024 ** 3).toFixed(1)} GiB free for the data directory`,
    });
  } catch (err) {
    out.push({
      name: 'disk',
      ok: false,
      severity: 'error',
      detail: `cannot stat the data directory's file system: ${(err as Error).message}`,
    });
  }
  const blocks = readdirSafe('/sys/block').filter((b) => !b.startsWith('loop') && !b.startsWith('ram'));
  out.push({
    name: 'disks',
    ok: true,
    severity: 'info',
    detail:
      blocks.map((b) => `${b} ${Math.round((Number(readText(`/sys/block/${b}/size`) ?? 0) * 512) / 1024 ** 3)} GiB`).join(', ') ||
      'none listed',
  });
  const nics = readdirSafe('/sys/class/net').filter((n) => n !== 'lo');
  const up = nics.filter((n) => readText(`/sys/class/net/${n}/operstate`) === 'up');
  out.push({
    name: 'network',
    ok: up.length > 0,
    severity: up.length > 0 ? 'info' : 'warning',
    detail:
      nics
        .map(
          (n) =>
            `${n} ${readText(`/sys/class/net/${n}/operstate`) ?? '?'}${readText(`/sys/class/net/${n}/speed`) === undefined ? '' : ` ${readText(`/sys/class/net/${n}/speed`)} Mb/s`}`,
        )
        .join(', ') || 'no interfaces',
  });
  try {
    await o.tpm.probe();
    const lockout = await o.tpm.lockoutStatus();
    const ok = !lockout.inLockout;
    out.push({
      name: 'tpm',
      ok,
      severity: ok ? 'info' : 'error',
      detail: `TPM 2.0 answers at ${o.tpm.tcti}${ok ? '' : ' but is in dictionary-attack lockout'}`,
    });
  } catch (err) {
    out.push({ name: 'tpm', ok: false, severity: 'error', detail: `no TPM at ${o.tpm.tcti}: ${(err as Error).message}` });
  }
  return out;
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
