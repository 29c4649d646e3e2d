import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentationDriftWatch } from './segmentation-drift-watch.ts';
import type { SegmentationState } from './segmentation-drift-watch.ts';

test('reports changes of state only: unknown, drift, ok, and stale results as unknown', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edge-drift-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'verify.json');
  let now = Date.parse('2026-12-04T12:00:00Z');
  const seen: SegmentationState['state'][] = [];
  const watch = new SegmentationDriftWatch({
    file,
    intervalMs: 3_600_000,
    staleAfterMs: 600_000,
    now: () => now,
    onChange: (s) => seen.push(s.state),
  });
  const write = (drift: boolean, at = new Date(now).toISOString()) =>
    writeFile(file, JSON.stringify({ at, drift, absent: false, missing: [], unexpected: drift ? ['tcp dport 22 accept'] : [] }));
  await watch.check();
  await write(true);
  await watch.check();
  await watch.check();
  t.like(watch.current, { state: 'drift', unexpected: 1 });
  await write(false);
  await watch.check();
  now += 700_000;
  await watch.check();
  t.deepEqual(seen, ['unknown', 'drift', 'ok', 'unknown']);
  t.regex((watch.current as { reason: string }).reason, /stale/);
});
