// Worker thread of the bundle verifier: SHA-256 of one byte range of a file (the audit XML, the larger
// part of a bundle) while the main thread checks the chain in records.jsonl.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface DigestJob {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
}

export type DigestResult = { readonly sha256: string; readonly bytes: number } | { readonly error: string };

function digest(job: DigestJob): DigestResult {
  const fd = openSync(job.path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(1, job.size)));
    let done = 0;
    while (done < job.size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, job.size - done), job.offset + done);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      done += n;
    }
    return { sha256: hash.digest('hex'), bytes: done };
  } finally {
    closeSync(fd);
  }
}

let result: DigestResult;
try {
  result = digest(workerData as DigestJob);
} catch (err) {
  result = { error: err instanceof Error ? err.message : String(err) };
}
parentPort?.postMessage(result);
