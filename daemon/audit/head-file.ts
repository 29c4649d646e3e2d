// The chain's head written to a second place: after every checkpoint, the signed checkpoint itself goes
// to a small file outside the database (beside the keys; with the file backend outside the data
// directory). Deleting the store's tail then leaves a head file that names records the store no longer
// has. It is only as safe as that file: an attacker who deletes or rolls back the file too is not seen
// (the TPM counter covers that case); docs/audit.md says what each backend promises.
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import type { AuditCheckpoint, AuditHeadAnchor } from '../core/audit-trail.ts';
import { checkpointProblem } from './checkpointer.ts';

export class HeadFile implements AuditHeadAnchor {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async advance(): Promise<number | undefined> {
    return undefined;
  }

  /** Replace the file atomically (write, fsync, rename), so a crash leaves the old head or the new. */
  async recorded(checkpoint: AuditCheckpoint): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(checkpoint)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }

  /** The head as last written, or undefined when there is no file; throws on an unreadable one. */
  read(): AuditCheckpoint | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return JSON.parse(text) as AuditCheckpoint;
  }
}

/**
 * The start check: a head file whose signed checkpoint lies beyond the stored chain (or names a record
 * the chain holds with another hash) means the tail was cut. `hashAt` gives a stored record's hash.
 */
export async function headFileProblem(
  file: HeadFile,
  storedHeadSeq: number,
  hashAt: (seq: number) => Promise<string | undefined>,
  trustAnchors: readonly X509Certificate[],
): Promise<string | undefined> {
  let head: AuditCheckpoint | undefined;
  try {
    head = file.read();
  } catch (err) {
    return `the head file ${file.path} cannot be read (${err instanceof Error ? err.message : String(err)})`;
  }
  if (head === undefined) return undefined;
  const bad = checkpointProblem(head, trustAnchors);
  if (bad !== undefined) return `the head file ${file.path} is not a valid signed checkpoint (${bad})`;
  const at = new Date(head.at).toISOString();
  if (head.seq > storedHeadSeq) {
    return `the audit chain was cut: records seq ${storedHeadSeq + 1}..${head.seq} are missing (the signed head in ${file.path} says the chain reached seq ${head.seq} at ${at}; the store ends at seq ${storedHeadSeq})`;
  }
  const stored = await hashAt(head.seq);
  if (stored !== undefined && stored !== head.hash) {
    return `the audit chain was replaced: record seq ${head.seq} differs from the signed head in ${file.path} (written ${at})`;
  }
  return undefined;
}
