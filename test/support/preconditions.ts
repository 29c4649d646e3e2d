// What a test needs from the machine (root, a tool, a tmpfs), probed synchronously while the file is
// imported, because ava registers tests synchronously. A test whose precondition is missing is
// registered with `test.skip` (ava prints "- [skip] title", `.ci/run` counts it) and the reason is
// printed: it never passes without having run.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What is missing, or undefined when the precondition holds. */
export type Precondition = string | undefined;

type Implementation = (t: ExecutionContext) => void | Promise<void>;
export interface Register {
  (title: string, implementation: Implementation): void;
  readonly serial: (title: string, implementation: Implementation) => void;
}

export function needsRoot(): Precondition {
  return process.getuid?.() === 0 ? undefined : 'needs root';
}

/** For a test of what an unprivileged user meets (root reads every file). */
export function needsNonRoot(): Precondition {
  return process.getuid?.() === 0 ? 'runs as root, which reads any file' : undefined;
}

const SBIN_PATH = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;

/** Every command on PATH (with the sbin directories, where root's tools live). */
export function needsCommand(...names: readonly string[]): Precondition {
  for (const name of names) {
    const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], {
      stdio: 'ignore',
      env: { ...process.env, PATH: SBIN_PATH },
      timeout: 10_000,
    });
    if (r.status !== 0) return `${name} is not installed`;
  }
  return undefined;
}

/** A tmpfs can be mounted (and unmounted) here: root, and not in a container that forbids mounts. */
export function needsTmpfs(): Precondition {
  const root = needsRoot();
  if (root !== undefined) return `${root} to mount a tmpfs`;
  const probe = mkdtempSync(join(tmpdir(), 'edge-tmpfs-probe-'));
  try {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { encoding: 'utf8', timeout: 10_000 });
    if (m.status !== 0) return `cannot mount a tmpfs here (${String(m.error ?? m.stderr).trim()})`;
    spawnSync('umount', [probe], { timeout: 10_000 });
    return undefined;
  } finally {
    rmdirSync(probe);
  }
}

/** `test` when every precondition holds, otherwise `test.skip` with the first missing one printed. */
export function whenMet(...preconditions: readonly Precondition[]): Register {
  const missing = preconditions.find((p) => p !== undefined);
  if (missing === undefined)
    return Object.assign((title: string, impl: Implementation) => test(title, impl), {
      serial: (title: string, impl: Implementation) => test.serial(title, impl),
    });
  const skip = (title: string, impl: Implementation): void => {
    process.stderr.write(`precondition missing, test skipped: ${title}: ${missing}\n`);
    test.skip(title, impl);
  };
  return Object.assign(skip, { serial: skip });
}
