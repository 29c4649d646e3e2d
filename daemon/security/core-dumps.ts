// A core dump of edged holds what its memory holds: the unsealed data key, the TLS private key and
// patient data in flight. Node cannot call setrlimit or prctl(PR_SET_DUMPABLE), so the launcher
// (bin/edged, and LimitCORE=0 in the unit) sets the limit before exec, and at start the daemon checks
// its own limit and, when it was started some other way, lowers it from outside with prlimit(1)
// (prlimit(2) on our own pid needs no privilege to lower a limit). If the limit still is not 0, the
// daemon refuses to start: it never holds a key with dumps enabled. See docs/operations.md.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export interface CoreLimit {
  readonly soft: string;
  readonly hard: string;
}

/** The "Max core file size" row of a /proc/PID/limits text. */
export function coreLimitOf(limitsText: string): CoreLimit | undefined {
  const row = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(limitsText);
  return row?.[1] === undefined || row[2] === undefined ? undefined : { soft: row[1], hard: row[2] };
}

async function ownCoreLimit(): Promise<CoreLimit | undefined> {
  try {
    return coreLimitOf(await readFile('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

function lowerWithPrlimit(timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('prlimit', [`--pid=${process.pid}`, '--core=0:0'], { timeout: timeoutMs }, (err, _stdout, stderr) => {
      resolve(err === null ? undefined : stderr.trim() || err.message);
    });
  });
}

/**
 * Resolves, with who set it, when the process cannot dump core (RLIMIT_CORE soft limit 0); throws
 * EDGE_CORE_DUMPS_ENABLED when it still can.
 */
export async function ensureNoCoreDumps(logger: Logger, timeoutMs = 5000): Promise<'launcher' | 'edged'> {
  const before = await ownCoreLimit();
  let by: 'launcher' | 'edged' = 'launcher';
  if (before?.soft === '0') {
    logger.info('process.core-dumps-disabled', { by, hard: before.hard });
  } else {
    by = 'edged';
    const failed = await lowerWithPrlimit(timeoutMs);
    const after = await ownCoreLimit();
    if (after?.soft !== '0') {
      const was = before === undefined ? 'unknown (/proc/self/limits unreadable)' : before.soft;
      throw new EdgeError(
        'EDGE_CORE_DUMPS_ENABLED',
        `core dumps are enabled (core limit ${was}) and could not be disabled (${failed ?? 'limit unchanged'}); ` +
          'start edged with bin/edged or systemd (LimitCORE=0), or run `ulimit -c 0` first',
      );
    }
    logger.warn('process.core-dumps-disabled', {
      by,
      was: before?.soft ?? 'unknown',
      message: 'edged was started with core dumps enabled (not through bin/edged or the unit); it set its own core limit to 0',
    });
  }
  await warnOnPipedCoreHandler(logger);
  return by;
}

/**
 * With a piped core_pattern the kernel runs the handler even at limit 0 (it only passes the limit on,
 * as %c); systemd-coredump honours it and keeps no dump, other handlers may not.
 */
async function warnOnPipedCoreHandler(logger: Logger): Promise<void> {
  let pattern: string;
  try {
    pattern = (await readFile('/proc/sys/kernel/core_pattern', 'utf8')).trim();
  } catch {
    return;
  }
  if (!pattern.startsWith('|')) return;
  const handler = pattern.slice(1).trim().split(/\s+/)[0] ?? '';
  if (/\/systemd-coredump$/.test(handler)) return;
  logger.warn('process.core-handler-unverified', {
    handler,
    message:
      'kernel.core_pattern pipes crashes to a handler that receives the memory image even with core limit 0; make sure it honours the limit (%c) or set kernel.core_pattern to a file name',
  });
}
