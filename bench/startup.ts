// Start-up to ready: spawn `bin/edged --config FILE`, time until its `edged.ready` log line, stop it with
// SIGTERM and wait for it to exit; repeat. The data directory keeps whatever the config points at (the
// benchmark runs it with 100,000 stored orders).
//
// Usage: node bench/startup.ts --config EDGE.json [--runs 5] [--out FILE.json]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const edged = fileURLToPath(new URL('../bin/edged', import.meta.url));

export interface StartupResult {
  readonly runs: number;
  readonly readyMs: readonly number[];
  readonly medianMs: number;
  readonly stopMs: readonly number[];
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** One start/stop cycle: [ms to ready, ms to exit after SIGTERM]. */
async function cycle(config: string): Promise<[number, number]> {
  const t0 = performance.now();
  const child = spawn(edged, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString('utf8');
  });
  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('edged did not log edged.ready in time')), READY_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.includes('edged.ready')) return;
      try {
        if ((JSON.parse(line) as { event?: unknown }).event !== 'edged.ready') return;
      } catch {
        return; // not a JSON line: keep waiting for the real one
      }
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`edged exited (code ${String(code)}) before ready: ${stderr.trim().slice(0, 500)}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  const t1 = performance.now();
  child.kill('SIGTERM');
  const stopTimer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(stopTimer);
  child.stdout.resume();
  return [readyMs, performance.now() - t1];
}

export async function measureStartup(config: string, runs: number): Promise<StartupResult> {
  const readyMs: number[] = [];
  const stopMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [ready, stop] = await cycle(config);
    readyMs.push(Math.round(ready));
    stopMs.push(Math.round(stop));
  }
  return { runs, readyMs, medianMs: median(readyMs), stopMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, runs: { type: 'string', default: '5' }, out: { type: 'string' } },
  });
  if (values.config === undefined) throw new Error('usage: startup.ts --config EDGE.json [--runs 5] [--out FILE]');
  const result = await measureStartup(values.config, Math.min(50, Math.max(1, Number(values.runs))));
  const text = JSON.stringify(result);
  if (values.out !== undefined) writeFileSync(values.out, `${text}\n`);
  console.log(text);
}

if (import.meta.main) await main();
