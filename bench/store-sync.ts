// The floor under "AA only after durable commit": how many synced writes classic-level (LevelDB) does on
// this disk, measured in a temp dir in the same run as the box. Sequential put({sync:true}) is what a
// naive commit per message costs; batch(100, {sync:true}) is what group commit can reach.
//
// Usage: node bench/store-sync.ts [--duration-ms 3000] [--max-ops 20000] [--value-bytes 1024] [--out FILE]
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';

export interface StoreSyncResult {
  readonly valueBytes: number;
  readonly put: { readonly ops: number; readonly elapsedMs: number; readonly opsPerSecond: number };
  readonly batch100: {
    readonly batches: number;
    readonly ops: number;
    readonly elapsedMs: number;
    readonly opsPerSecond: number;
    readonly batchesPerSecond: number;
  };
}

export async function measureStoreSync(durationMs: number, maxOps: number, valueBytes: number): Promise<StoreSyncResult> {
  const dir = await mkdtemp(join(process.env.BENCH_TMP ?? tmpdir(), 'bench-store-'));
  const db = new ClassicLevel<string, Buffer>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  try {
    await db.open();
    const value = randomBytes(valueBytes);
    let ops = 0;
    let t0 = performance.now();
    while (ops < maxOps && performance.now() - t0 < durationMs) {
      await db.put(`p!${String(ops).padStart(9, '0')}`, value, { sync: true });
      ops++;
    }
    const putMs = performance.now() - t0;

    let batches = 0;
    t0 = performance.now();
    while (batches * 100 < maxOps * 10 && performance.now() - t0 < durationMs) {
      const batch = Array.from({ length: 100 }, (_, i) => ({
        type: 'put' as const,
        key: `b!${String(batches * 100 + i).padStart(9, '0')}`,
        value,
      }));
      await db.batch(batch, { sync: true });
      batches++;
    }
    const batchMs = performance.now() - t0;
    return {
      valueBytes,
      put: { ops, elapsedMs: Math.round(putMs), opsPerSecond: Math.round((ops / putMs) * 1000) },
      batch100: {
        batches,
        ops: batches * 100,
        elapsedMs: Math.round(batchMs),
        opsPerSecond: Math.round(((batches * 100) / batchMs) * 1000),
        batchesPerSecond: Math.round((batches / batchMs) * 1000),
      },
    };
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '3000' },
      'max-ops': { type: 'string', default: '20000' },
      'value-bytes': { type: 'string', default: '1024' },
      out: { type: 'string' },
    },
  });
  const result = await measureStoreSync(Number(values['duration-ms']), Number(values['max-ops']), Number(values['value-bytes']));
  const text = JSON.stringify(result);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
  console.log(text);
}

if (import.meta.main) await main();
