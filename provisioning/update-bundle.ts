// The appliance's update bundle (image/make-bundle.sh): an uncompressed ustar archive whose members are
// manifest.json, manifest.sig (ECDSA P-256 / SHA-256 over manifest.json, DER, made with the update key),
// the two UKIs, the root image and its hash tree. Read with positional reads only (it may be a block
// device), and nothing but the manifest is trusted before its signature verifies.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';

export interface BundleMember {
  readonly offset: number;
  readonly bytes: number;
}

export interface BundleManifest {
  readonly format: 'imaging-edge-bundle/1';
  readonly version: string;
  readonly rootHash: string;
  readonly files: Readonly<Record<BundleFile, { readonly sha256: string; readonly bytes: number }>>;
}

export const bundleFiles = ['root.squashfs', 'root.verity', 'uki-a.efi', 'uki-b.efi'] as const;
export type BundleFile = (typeof bundleFiles)[number];

const block = 512;
// A bundle holds six members; more (or a member name table this long) is not one of ours.
const maxMembers = 16;
const maxManifestBytes = 64 * 1024;

export class BundleError extends Error {}

/** Member name → where its content starts and how long it is. */
export async function bundleMembers(fd: FileHandle): Promise<Map<string, BundleMember>> {
  const out = new Map<string, BundleMember>();
  const header = Buffer.alloc(block);
  let at = 0;
  for (let i = 0; i <= maxMembers; i++) {
    const { bytesRead } = await fd.read(header, 0, block, at);
    if (bytesRead < block || header.every((b) => b === 0)) return out;
    if (header.subarray(257, 262).toString('latin1') !== 'ustar') throw new BundleError('not a bundle (no ustar header)');
    const name = header.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const bytes = Number.parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new BundleError(`bad size of member ${name}`);
    out.set(name, { offset: at + block, bytes });
    at += block + Math.ceil(bytes / block) * block;
  }
  throw new BundleError(`more than ${maxMembers} members: not a bundle`);
}

async function readMember(fd: FileHandle, m: BundleMember, cap: number, name: string): Promise<Buffer> {
  if (m.bytes > cap) throw new BundleError(`${name} is ${m.bytes} bytes (at most ${cap})`);
  const buf = Buffer.alloc(m.bytes);
  const { bytesRead } = await fd.read(buf, 0, m.bytes, m.offset);
  if (bytesRead !== m.bytes) throw new BundleError(`${name} is cut short`);
  return buf;
}

export interface OpenedBundle {
  readonly manifest: BundleManifest;
  readonly members: ReadonlyMap<string, BundleMember>;
  readonly fd: FileHandle;
}

/** Opens a bundle and verifies its manifest's signature against `publicKeyPem`; the caller closes fd. */
export async function openBundle(path: string, publicKeyPem: string): Promise<OpenedBundle> {
  const fd = await open(path, 'r');
  try {
    const members = await bundleMembers(fd);
    const m = members.get('manifest.json');
    const s = members.get('manifest.sig');
    if (m === undefined || s === undefined) throw new BundleError('the bundle has no manifest.json and manifest.sig');
    const manifestBytes = await readMember(fd, m, maxManifestBytes, 'manifest.json');
    const sig = await readMember(fd, s, 1024, 'manifest.sig');
    if (!verify('sha256', manifestBytes, createPublicKey(publicKeyPem), sig)) {
      throw new BundleError('the bundle is not signed with this box’s update key');
    }
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as BundleManifest;
    if (manifest.format !== 'imaging-edge-bundle/1') throw new BundleError(`unknown bundle format ${String(manifest.format)}`);
    if (!/^[0-9a-f]{64}$/.test(manifest.rootHash)) throw new BundleError('the manifest has no valid root hash');
    if (!/^\d+\.\d+\.\d+$/.test(manifest.version)) throw new BundleError(`the manifest's version ${manifest.version} is not X.Y.Z`);
    for (const f of bundleFiles) {
      const member = members.get(f);
      if (member === undefined) throw new BundleError(`the bundle lacks ${f}`);
      if (manifest.files[f]?.bytes !== member.bytes) throw new BundleError(`${f}: size differs from the signed manifest`);
    }
    return { manifest, members, fd };
  } catch (err) {
    await fd.close();
    throw err;
  }
}

/** Copies a member to `target` (a partition or a file) in 1 MiB chunks and checks its sha256 against the manifest. */
export async function writeMember(bundle: OpenedBundle, name: BundleFile, target: string): Promise<void> {
  const member = bundle.members.get(name);
  if (member === undefined) throw new BundleError(`the bundle lacks ${name}`);
  const out = await open(target, 'r+');
  try {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1_048_576);
    for (let done = 0; done < member.bytes;) {
      const n = Math.min(chunk.length, member.bytes - done);
      const { bytesRead } = await bundle.fd.read(chunk, 0, n, member.offset + done);
      if (bytesRead !== n) throw new BundleError(`${name} is cut short`);
      hash.update(chunk.subarray(0, n));
      await out.write(chunk, 0, n, done);
      done += n;
    }
    await out.sync();
    if (hash.digest('hex') !== bundle.manifest.files[name].sha256)
      throw new BundleError(`${name}: sha256 differs from the signed manifest`);
  } finally {
    await out.close();
  }
}

/** Reads a (small) member whole and checks its sha256 against the manifest. */
export async function memberContent(bundle: OpenedBundle, name: BundleFile, cap: number): Promise<Buffer> {
  const member = bundle.members.get(name);
  if (member === undefined) throw new BundleError(`the bundle lacks ${name}`);
  const buf = await readMember(bundle.fd, member, cap, name);
  if (createHash('sha256').update(buf).digest('hex') !== bundle.manifest.files[name].sha256) {
    throw new BundleError(`${name}: sha256 differs from the signed manifest`);
  }
  return buf;
}

/** -1, 0, 1 for X.Y.Z versions. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
