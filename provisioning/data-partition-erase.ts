// The appliance's encrypted data partition at decommissioning: every LUKS2 key slot and token (the TPM
// binding and the recovery key) is wiped, so that nothing can open the partition again; the ciphertext
// stays. cryptsetup runs without a shell, one command at a time, each with a timeout.
import { execFile } from 'node:child_process';

const cryptsetupTimeoutMs = 60_000;

function cryptsetup(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('cryptsetup', args, { timeout: cryptsetupTimeoutMs, maxBuffer: 4 * 1_048_576, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`cryptsetup ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

interface LuksMetadata {
  readonly keyslots: Record<string, unknown>;
  readonly tokens: Record<string, unknown>;
}

async function metadata(device: string): Promise<LuksMetadata> {
  return JSON.parse(await cryptsetup(['luksDump', '--dump-json-metadata', device])) as LuksMetadata;
}

export interface DataPartitionErase {
  readonly keyslots: number;
  readonly tokens: number;
}

/** Wipes every key slot and token of the LUKS2 header on `device`; throws unless none is left. */
export async function eraseDataPartition(device: string): Promise<DataPartitionErase> {
  const before = await metadata(device);
  for (const id of Object.keys(before.tokens)) await cryptsetup(['token', 'remove', '--token-id', id, device]);
  // luksErase needs no key (--batch-mode: no question); the mapping that is open stays usable until
  // shutdown, nothing can open the partition afterwards.
  await cryptsetup(['erase', '--batch-mode', device]);
  const after = await metadata(device);
  const left = Object.keys(after.keyslots).length + Object.keys(after.tokens).length;
  if (left > 0) throw new Error(`${device}: ${left} key slot(s) or token(s) remain after the erase`);
  return { keyslots: Object.keys(before.keyslots).length, tokens: Object.keys(before.tokens).length };
}
