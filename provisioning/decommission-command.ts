// `edgectl decommission --config FILE --confirm ERASE`: crypto-erase. The sealed keys are evicted from
// the TPM and the key manifest (with the recovery escrow) is overwritten and removed; the database stays
// as ciphertext nobody can open. Then it proves it: nothing the box holds unseals or opens a value. On the
// appliance it also wipes the data partition's LUKS2 key slots and tokens (TPM binding, recovery key).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../daemon/config/index.ts';
import { auditEvent } from '../daemon/core/audit-event-builders.ts';
import { silentLogger } from '../daemon/core/log.ts';
import { isEdgeError } from '../daemon/core/errors.ts';
import { TpmClient } from '../daemon/security/tpm-client.ts';
import { TpmKeySource, eraseSealedKeys, readManifest } from '../daemon/security/tpm-key-source.ts';
import { openStore } from '../daemon/store/index.ts';
import { daemonMode } from './keys-command.ts';
import { controlSocketPath } from '../daemon/admin/control-socket.ts';
import { ApplianceLayout } from './appliance-layout.ts';
import { eraseDataPartition } from './data-partition-erase.ts';

export const confirmWord = 'ERASE';

export const decommissionHelp = `usage: edgectl decommission --config FILE --confirm ${confirmWord}

Crypto-erases the box: evicts the sealed keys (index key, data keys, TLS key) from the TPM, overwrites and
removes the key manifest and recovery escrow, then checks that the store can no longer be opened. On the
appliance (dataDir ${ApplianceLayout.dataDir}) it then wipes every key slot and token of the encrypted
data partition (${ApplianceLayout.dataPartition}): after the next power-off it cannot be opened again.
edged must be stopped. Without --confirm ${confirmWord} nothing happens.

Exit status: 0 erased and verified, 1 failed or not verified, 2 usage error.`;

export async function decommission(configFile: string, confirm: string | undefined): Promise<number> {
  if (confirm !== confirmWord) {
    console.error(`edgectl: refusing to decommission without --confirm ${confirmWord}`);
    return 2;
  }
  const { config } = loadConfig(configFile);
  if (config.keys.backend !== 'tpm') {
    console.error('edgectl: keys.backend is not "tpm"; delete the development key file instead');
    return 1;
  }
  if ((await daemonMode(controlSocketPath(config.dataDir))) !== 'stopped') {
    console.error('edgectl: stop edged first');
    return 1;
  }
  const keysDir = join(config.dataDir, 'keys');
  const tpm = new TpmClient({ tcti: config.keys.tpm.tcti, commandTimeoutMs: config.keys.tpm.commandTimeoutMs });
  const source = new TpmKeySource({ tpm, keysDir, logger: silentLogger });
  // The last audit record the box can write.
  try {
    const store = await openStore({
      dataDir: config.dataDir,
      keySource: source,
      replayWindowMs: 3_600_000,
      logger: silentLogger,
      environment: config.site.environment,
    });
    store.audit.record(
      auditEvent('decommission.crypto-erase', {
        at: Date.now(),
        participants: [{ kind: 'system', id: config.site.name, requestor: false }],
        detail: 'sealed keys evicted; store becomes unreadable',
      }),
    );
    await store.close();
  } catch (err) {
    console.error(
      `edgectl: note: the audit record could not be written (${isEdgeError(err) ? err.code : (err as Error).message}); erasing anyway`,
    );
  }
  const handles = await readManifest(keysDir).then(
    (m) => [m.index.handle, ...m.data.map((d) => d.handle), ...(m.tls === undefined ? [] : [m.tls.handle])],
    () => [] as number[],
  );
  const evicted = await eraseSealedKeys({ tpm, keysDir });
  console.log(`evicted ${evicted.length} sealed key(s) from the TPM: ${evicted.map((h) => `0x${h.toString(16)}`).join(', ') || 'none'}`);
  // Verification: the handles are gone and no key source can open the store.
  const left = (await tpm.persistentHandles()).filter((h) => handles.includes(h));
  let opened = false;
  try {
    const store = await openStore({ dataDir: config.dataDir, keySource: source, replayWindowMs: 3_600_000, logger: silentLogger });
    opened = true;
    await store.close();
  } catch {
    opened = false;
  }
  if (left.length > 0 || opened) {
    console.error(`edgectl: NOT VERIFIED: ${left.length} handle(s) still present, store ${opened ? 'still opens' : 'does not open'}`);
    return 1;
  }
  console.log('verified: no sealed key remains and the store cannot be opened');
  if (config.dataDir === ApplianceLayout.dataDir && existsSync(ApplianceLayout.dataPartition)) {
    try {
      const wiped = await eraseDataPartition(ApplianceLayout.dataPartition);
      console.log(`data partition: every key slot and token wiped (${wiped.keyslots} key slot(s), ${wiped.tokens} token(s))`);
    } catch (err) {
      console.error(`edgectl: NOT VERIFIED: ${ApplianceLayout.dataPartition}: ${(err as Error).message}; run the decommission again`);
      return 1;
    }
  }
  return 0;
}
