// Runs the nft command (nftables 1.0.6 on Debian 12). Root only: edgectl segmentation and the
// edge-firewall unit use it, edged never does. Each call has a timeout and an output cap.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import { segmentationTable } from './segmentation-plan.ts';

const timeoutMs = 30_000;
const maxOutputBytes = 16 * 1024 * 1024;
/**
 * The system's nft by absolute path: this runs as root, and a PATH lookup could find another program
 * of that name (npm puts one in node_modules/.bin).
 */
export const nftCommand = ['/usr/sbin/nft', '/sbin/nft'].find((p) => existsSync(p)) ?? 'nft';
const tableArgs = ['table', segmentationTable.family, segmentationTable.name];

export interface NftResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function nft(args: readonly string[], command = nftCommand): Promise<NftResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: maxOutputBytes, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) return resolve({ code: 0, stdout, stderr });
      if (typeof err.code === 'number') return resolve({ code: err.code, stdout, stderr });
      reject(new EdgeError('EDGE_FIREWALL_NFT_FAILED', `${command} ${args.join(' ')}: ${err.message}`, { cause: err }));
    });
  });
}

/** `nft -c -f` then `nft -f` of the same file: the check parses and validates against the kernel, the load is one transaction. */
export async function checkAndLoad(script: string, command = nftCommand): Promise<{ checkMs: number; loadMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-nft-'));
  const file = join(dir, 'imaging-edge.nft');
  try {
    await writeFile(file, script, { mode: 0o600 });
    const t0 = performance.now();
    const check = await nft(['-c', '-f', file], command);
    const t1 = performance.now();
    if (check.code !== 0) throw new EdgeError('EDGE_FIREWALL_CHECK_FAILED', `nft -c refused the ruleset: ${check.stderr.trim()}`);
    const load = await nft(['-f', file], command);
    const t2 = performance.now();
    if (load.code !== 0)
      throw new EdgeError('EDGE_FIREWALL_NFT_FAILED', `nft -f failed (the previous table is unchanged): ${load.stderr.trim()}`);
    return { checkMs: t1 - t0, loadMs: t2 - t1 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The loaded table as `nft -s` prints it, or undefined when it is not loaded. */
export async function listTable(command = nftCommand): Promise<string | undefined> {
  const r = await nft(['-s', 'list', ...tableArgs], command);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return undefined;
  throw new EdgeError('EDGE_FIREWALL_NFT_FAILED', `nft list table failed: ${r.stderr.trim()}`);
}

/** `nft -j list table`, or undefined when it is not loaded. */
export async function listTableJson(command = nftCommand): Promise<string | undefined> {
  const r = await nft(['-j', 'list', ...tableArgs], command);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return undefined;
  throw new EdgeError('EDGE_FIREWALL_NFT_FAILED', `nft -j list table failed: ${r.stderr.trim()}`);
}
