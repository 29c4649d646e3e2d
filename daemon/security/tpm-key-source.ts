// `keys.backend: tpm`. The index key, every data key and the TLS private key are separate TPM sealed
// objects under a PCR policy, persisted at persistent handles (NV): no blob of them exists on disk, so
// evicting the handles is a crypto-erase. The data directory holds only keys/keyring.json: which handle
// holds what, the TLS public key, and the recovery escrow (encrypted to the recovery public key).
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import { type DataKeyRotation, KeyRing, type KeySource } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { TpmClient } from './tpm-client.ts';
import { type Envelope, RecoveryOpener, type RecoveryPublic, escrow, newRecoverySecret, recoveryPublicFor } from './tpm-recovery.ts';
import { auditCounterIndex } from './tpm-audit-counter.ts';

/** First persistent handle the box uses (owner range 0x81000000–0x817FFFFF). */
export const handleBase = 0x81010100;
const handleSlots = 64;

export interface EcPublicJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

export interface KeyringManifest {
  readonly version: 1;
  readonly pcrs: string;
  readonly index: { readonly handle: number };
  readonly data: ReadonlyArray<{ readonly id: number; readonly handle: number }>;
  readonly active: number;
  readonly tls?: { readonly handle: number; readonly publicJwk: EcPublicJwk };
  readonly recovery: RecoveryPublic;
  readonly escrow: { readonly index: Envelope; readonly tls?: Envelope; readonly data: Readonly<Record<string, Envelope>> };
}

export function keyringPath(keysDir: string): string {
  return join(keysDir, 'keyring.json');
}

export async function readManifest(keysDir: string): Promise<KeyringManifest> {
  const path = keyringPath(keysDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `no sealed keys at ${path}: the box is not provisioned (edgectl provision)`, { cause });
  }
  const m = JSON.parse(text) as KeyringManifest;
  if (m.version !== 1) throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `${path} has an unknown version`);
  return m;
}

/** Written beside, fsynced, then renamed over: a crash leaves the old or the new manifest, never half. */
export async function writeManifest(keysDir: string, m: KeyringManifest): Promise<void> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const path = keyringPath(keysDir);
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(m, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(keysDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function freeHandles(tpm: TpmClient, taken: readonly number[], count: number): Promise<number[]> {
  const used = new Set([...(await tpm.persistentHandles()), ...taken]);
  const out: number[] = [];
  for (let i = 0; i < handleSlots && out.length < count; i++) {
    const h = handleBase + i;
    if (!used.has(h)) out.push(h);
  }
  if (out.length < count) throw new EdgeError('EDGE_TPM_COMMAND_FAILED', "no free persistent handle in the box's range");
  return out;
}

function handlesOf(m: KeyringManifest): number[] {
  return [m.index.handle, ...m.data.map((d) => d.handle), ...(m.tls === undefined ? [] : [m.tls.handle])];
}

export interface SealNewOptions {
  readonly tpm: TpmClient;
  readonly keysDir: string;
  readonly pcrs: string;
  /** The device key pair's private scalar (32 bytes) and public key, if the TLS key is to be sealed. */
  readonly tls?: { readonly d: Uint8Array; readonly publicJwk: EcPublicJwk };
}

/**
 * Factory state → sealed keys: a new index key and data key 1 (and the TLS key when given), sealed and
 * escrowed. Returns the recovery secret, which must be shown once and never stored on the box.
 */
export async function sealNewKeyring(o: SealNewOptions): Promise<{ recoverySecret: string; manifest: KeyringManifest }> {
  if (existsSync(keyringPath(o.keysDir))) {
    throw new EdgeError('EDGE_KEYS_UNAVAILABLE', `${keyringPath(o.keysDir)} exists: this box is already provisioned (decommission first)`);
  }
  const recoverySecret = newRecoverySecret();
  const recovery = recoveryPublicFor(recoverySecret);
  const indexKey = randomBytes(32);
  const dataKey = randomBytes(32);
  const [hIndex = 0, hData = 0, hTls = 0] = await freeHandles(o.tpm, [], 3);
  const sealed: number[] = [];
  try {
    await o.tpm.seal(indexKey, o.pcrs, hIndex);
    sealed.push(hIndex);
    await o.tpm.seal(dataKey, o.pcrs, hData);
    sealed.push(hData);
    if (o.tls !== undefined) {
      await o.tpm.seal(o.tls.d, o.pcrs, hTls);
      sealed.push(hTls);
    }
    const manifest: KeyringManifest = {
      version: 1,
      pcrs: o.pcrs,
      index: { handle: hIndex },
      data: [{ id: 1, handle: hData }],
      active: 1,
      ...(o.tls === undefined ? {} : { tls: { handle: hTls, publicJwk: o.tls.publicJwk } }),
      recovery,
      escrow: {
        index: escrow(recovery, 'index', indexKey),
        data: { '1': escrow(recovery, 'data 1', dataKey) },
        ...(o.tls === undefined ? {} : { tls: escrow(recovery, 'tls', o.tls.d) }),
      },
    };
    await writeManifest(o.keysDir, manifest);
    // A new keyring starts a new audit chain: the head counter of a previous one must not outrun it.
    await o.tpm.nvUndefine(auditCounterIndex);
    return { recoverySecret, manifest };
  } catch (err) {
    for (const h of sealed) await o.tpm.evict(h).catch(() => undefined);
    throw err;
  } finally {
    indexKey.fill(0);
    dataKey.fill(0);
  }
}

/**
 * After the boot state changed (PCR mismatch): open the escrow with the recovery secret and seal every
 * key again under the current PCR values (and `pcrs`, if the policy itself changes).
 */
export async function resealWithRecovery(o: {
  tpm: TpmClient;
  keysDir: string;
  recoverySecret: string;
  pcrs?: string;
}): Promise<KeyringManifest> {
  const old = await readManifest(o.keysDir);
  const opener = new RecoveryOpener(o.recoverySecret, old.recovery);
  const pcrs = o.pcrs ?? old.pcrs;
  const secrets: Array<{ label: string; secret: Buffer }> = [{ label: 'index', secret: opener.open('index', old.escrow.index) }];
  for (const d of old.data) {
    const env = old.escrow.data[String(d.id)];
    if (env === undefined) throw new EdgeError('EDGE_KEYS_RECOVERY_FAILED', `no escrow for data key ${d.id}`);
    secrets.push({ label: `data ${d.id}`, secret: opener.open(`data ${d.id}`, env) });
  }
  if (old.tls !== undefined && old.escrow.tls !== undefined) secrets.push({ label: 'tls', secret: opener.open('tls', old.escrow.tls) });
  try {
    for (const h of handlesOf(old)) {
      await o.tpm.evict(h).catch((err: unknown) => {
        if (!isEdgeError(err, 'EDGE_TPM_OBJECT_MISSING') && !isEdgeError(err, 'EDGE_TPM_COMMAND_FAILED')) throw err;
      });
    }
    const handles = await freeHandles(o.tpm, [], secrets.length);
    const at = new Map<string, number>();
    for (const [i, s] of secrets.entries()) {
      const h = handles[i]!;
      await o.tpm.seal(s.secret, pcrs, h);
      at.set(s.label, h);
    }
    const manifest: KeyringManifest = {
      ...old,
      pcrs,
      index: { handle: at.get('index')! },
      data: old.data.map((d) => ({ id: d.id, handle: at.get(`data ${d.id}`)! })),
      ...(old.tls === undefined ? {} : { tls: { ...old.tls, handle: at.get('tls')! } }),
    };
    await writeManifest(o.keysDir, manifest);
    return manifest;
  } finally {
    for (const s of secrets) s.secret.fill(0);
  }
}

/**
 * Crypto-erase: evict every sealed key from the TPM, overwrite the manifest (escrow included) and remove
 * it. Returns the handles evicted.
 */
export async function eraseSealedKeys(o: { tpm: TpmClient; keysDir: string }): Promise<number[]> {
  const path = keyringPath(o.keysDir);
  const evicted: number[] = [];
  if (existsSync(path)) {
    const m = await readManifest(o.keysDir);
    const present = new Set(await o.tpm.persistentHandles());
    for (const h of handlesOf(m)) {
      if (!present.has(h)) continue;
      await o.tpm.evict(h);
      evicted.push(h);
    }
    const size = (await stat(path)).size;
    const fh = await open(path, 'r+');
    try {
      await fh.write(randomBytes(size), 0, size, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rm(path, { force: true });
  }
  await o.tpm.nvUndefine(auditCounterIndex);
  return evicted;
}

export interface TpmKeySourceOptions {
  readonly tpm: TpmClient;
  readonly keysDir: string;
  readonly logger: Logger;
}

export class TpmKeySource implements KeySource {
  readonly backend = 'tpm';
  readonly rotation: DataKeyRotation;
  readonly #o: TpmKeySourceOptions;

  constructor(options: TpmKeySourceOptions) {
    this.#o = options;
    this.rotation = {
      addDataKey: (ring) => this.#addDataKey(ring),
      activate: (ring, id) => this.#activate(ring, id),
      retire: (ring, id) => this.#retire(ring, id),
    };
  }

  /** The TPM this key source talks to (one client per TPM: calls are serialised through it). */
  get tpm(): TpmClient {
    return this.#o.tpm;
  }

  /** Refuses early, with a clear reason, when the TPM is missing or locked out. */
  async load(): Promise<KeyRing> {
    const { tpm, keysDir } = this.#o;
    const manifest = await readManifest(keysDir);
    const lockout = await tpm.lockoutStatus();
    if (lockout.inLockout) {
      throw new EdgeError(
        'EDGE_TPM_LOCKOUT',
        `the TPM is in dictionary-attack lockout (${lockout.failedTries}/${lockout.maxTries} failed authorisations; recovery interval ${lockout.recoverySeconds} s)`,
      );
    }
    const indexKey = await tpm.unseal(manifest.index.handle, manifest.pcrs);
    const keys: Array<[number, Uint8Array]> = [];
    try {
      for (const d of manifest.data) keys.push([d.id, await tpm.unseal(d.handle, manifest.pcrs)]);
      checkLengths(indexKey, keys);
      return new KeyRing(indexKey, keys, manifest.active);
    } catch (err) {
      indexKey.fill(0);
      for (const [, k] of keys) k.fill(0);
      throw err;
    }
  }

  async tlsPrivateKey(): Promise<Buffer> {
    const manifest = await readManifest(this.#o.keysDir);
    if (manifest.tls === undefined)
      throw new EdgeError('EDGE_KEYS_UNAVAILABLE', 'no TLS key is sealed in the TPM (provision with a device key)');
    const d = await this.#o.tpm.unseal(manifest.tls.handle, manifest.pcrs);
    try {
      const key = createPrivateKey({ format: 'jwk', key: { ...manifest.tls.publicJwk, d: d.toString('base64url') } });
      return Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }));
    } finally {
      d.fill(0);
    }
  }

  async #addDataKey(ring: KeyRing): Promise<number> {
    const { tpm, keysDir } = this.#o;
    const m = await readManifest(keysDir);
    const id = Math.max(...m.data.map((d) => d.id), ...ring.keyIds) + 1;
    const [handle = 0] = await freeHandles(tpm, handlesOf(m), 1);
    const key = randomBytes(32);
    try {
      await tpm.seal(key, m.pcrs, handle);
      // Persist before use: a crash after the first value is written under `id` must still find it.
      await writeManifest(keysDir, {
        ...m,
        data: [...m.data, { id, handle }],
        escrow: { ...m.escrow, data: { ...m.escrow.data, [String(id)]: escrow(m.recovery, `data ${id}`, key) } },
      });
      ring.add(id, new Uint8Array(key));
      return id;
    } finally {
      key.fill(0);
    }
  }

  async #activate(ring: KeyRing, id: number): Promise<void> {
    const m = await readManifest(this.#o.keysDir);
    if (!m.data.some((d) => d.id === id)) throw new TypeError(`data key ${id} is not sealed`);
    await writeManifest(this.#o.keysDir, { ...m, active: id });
    ring.activate(id);
  }

  async #retire(ring: KeyRing, id: number): Promise<void> {
    const m = await readManifest(this.#o.keysDir);
    if (m.active === id) throw new TypeError('the active data key cannot be retired');
    const entry = m.data.find((d) => d.id === id);
    const { [String(id)]: _dropped, ...keptEscrow } = m.escrow.data;
    // Manifest first: if the eviction then fails, nothing points at the key any more.
    await writeManifest(this.#o.keysDir, { ...m, data: m.data.filter((d) => d.id !== id), escrow: { ...m.escrow, data: keptEscrow } });
    if (entry !== undefined) await this.#o.tpm.evict(entry.handle);
    ring.remove(id);
    this.#o.logger.info('keys.data-key-retired', { keyId: id });
  }
}

function checkLengths(indexKey: Uint8Array, keys: ReadonlyArray<readonly [number, Uint8Array]>): void {
  if (indexKey.length !== 32 || keys.some(([, k]) => k.length !== 32)) {
    throw new EdgeError('EDGE_KEYS_UNAVAILABLE', 'an unsealed key has the wrong length');
  }
}
