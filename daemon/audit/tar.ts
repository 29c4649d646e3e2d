// The few parts of POSIX ustar a bundle needs: regular files, names under 100 bytes, sizes under 8 GiB.
// A bundle is a tar so a central team can open it with `tar -x` and check it with `openssl cms` alone.
import { open, readFile } from 'node:fs/promises';
import { EdgeError } from '../core/errors.ts';

export const BLOCK = 512;

export function ustarHeader(name: string, size: number, mtimeMs: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 99) throw new TypeError(`tar entry name too long: ${name}`);
  if (size >= 8 ** 11) throw new TypeError('tar entry over 8 GiB');
  nameBytes.copy(h, 0);
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(
    `${Math.floor(mtimeMs / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
    'ascii',
  );
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

export interface TarEntry {
  readonly name: string;
  /** Byte offset of the content in the file. */
  readonly offset: number;
  readonly size: number;
}

/** The entries of a tar file (headers only; content is read by offset). */
export async function readTarIndex(path: string): Promise<TarEntry[]> {
  const fh = await open(path, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    const entries: TarEntry[] = [];
    const h = Buffer.alloc(BLOCK);
    let off = 0;
    while (off + BLOCK <= fileSize) {
      const { bytesRead } = await fh.read(h, 0, BLOCK, off);
      if (bytesRead < BLOCK) break;
      if (h.every((b) => b === 0)) return entries;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
      const stored = parseInt(h.toString('ascii', 148, 156).replace(/\0.*$/s, '').trim(), 8);
      if (stored !== sum) throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', `tar header at byte ${off} has a bad checksum`);
      const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const size = parseInt(h.toString('ascii', 124, 136).replace(/\0.*$/s, '').trim(), 8);
      const type = String.fromCharCode(h[156]!);
      if (!Number.isSafeInteger(size) || size < 0)
        throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', `tar header at byte ${off} has a bad size`);
      if (off + BLOCK + size > fileSize)
        throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', `tar entry ${name} runs past the end of the file (truncated)`);
      if (type === '0' || type === '\0') entries.push({ name, offset: off + BLOCK, size });
      off += BLOCK + size + padding(size).length;
    }
    throw new EdgeError('EDGE_AUDIT_BUNDLE_INVALID', 'the tar file has no end-of-archive marker (truncated)');
  } finally {
    await fh.close();
  }
}

export async function readEntry(path: string, entry: TarEntry): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(entry.size);
    await fh.read(buf, 0, entry.size, entry.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Whole entries in memory (tools and tests; bundles are written by the streaming exporter). */
export async function readTar(path: string): Promise<Map<string, Buffer>> {
  const file = await readFile(path);
  const out = new Map<string, Buffer>();
  for (const e of await readTarIndex(path)) out.set(e.name, file.subarray(e.offset, e.offset + e.size));
  return out;
}

export function tarBytes(entries: ReadonlyArray<{ name: string; data: Buffer }>, mtimeMs = Date.now()): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(ustarHeader(e.name, e.data.length, mtimeMs), e.data, padding(e.data.length));
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}
