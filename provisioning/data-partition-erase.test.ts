// Decommissioning's LUKS2 wipe against a real cryptsetup on a plain file (no device-mapper needed): a
// header with a passphrase slot and a systemd-tpm2-style token ends with neither, and the passphrase
// that opened it before no longer does.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { needsCommand, whenMet } from '../test/support/preconditions.ts';
import { eraseDataPartition } from './data-partition-erase.ts';

const exec = promisify(execFile);

whenMet(needsCommand('cryptsetup'))('every key slot and token of the data partition is wiped', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-luks-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dev = join(dir, 'data.img');
  const key = join(dir, 'key');
  await writeFile(dev, Buffer.alloc(20 * 1_048_576));
  await writeFile(key, 'correct horse battery staple', { mode: 0o600 });
  const fast = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
  await exec('cryptsetup', ['luksFormat', '--batch-mode', '--type', 'luks2', ...fast, '--key-file', key, dev]);
  await exec('cryptsetup', ['luksAddKey', ...fast, '--key-file', key, dev, key]);
  const token = join(dir, 'token.json');
  // cryptsetup validates the token types it knows a plugin for; a plain type stands in for systemd-tpm2.
  await writeFile(token, JSON.stringify({ type: 'imaging-edge-test', keyslots: ['0'] }));
  await exec('cryptsetup', ['token', 'import', '--json-file', token, dev]);
  await exec('cryptsetup', ['open', '--test-passphrase', '--key-file', key, dev]);

  t.deepEqual(await eraseDataPartition(dev), { keyslots: 2, tokens: 1 });

  const dump = JSON.parse((await exec('cryptsetup', ['luksDump', '--dump-json-metadata', dev])).stdout) as {
    keyslots: object;
    tokens: object;
  };
  t.deepEqual(dump.keyslots, {});
  t.deepEqual(dump.tokens, {});
  await t.throwsAsync(exec('cryptsetup', ['open', '--test-passphrase', '--key-file', key, dev]));
});
