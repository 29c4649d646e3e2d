// Read and check the config file. Synchronous on purpose: it runs once at start (and on reload) on a
// small local file, before any listener exists.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import { checkConfig, errorsIn, formatIssue } from './check-config.ts';
import type { CheckOptions } from './check-config.ts';
import type { EdgeConfig } from './edge-config-schema.ts';
import type { ConfigIssue } from './schema-kit.ts';

/** A config file larger than this is refused before parsing. */
export const maxConfigBytes = 1_048_576;

/** EDGE_CONFIG_UNREADABLE or EDGE_CONFIG_INVALID, with every issue found. */
export class ConfigError extends EdgeError {
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: 'EDGE_CONFIG_UNREADABLE' | 'EDGE_CONFIG_INVALID',
    message: string,
    issues: readonly ConfigIssue[],
    cause?: unknown,
  ) {
    super(code, message, { cause, detail: { issues: issues.length } });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Reads and parses the JSON document; throws ConfigError EDGE_CONFIG_UNREADABLE. */
export function readConfigDocument(path: string): unknown {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size > maxConfigBytes) {
        throw new ConfigError('EDGE_CONFIG_UNREADABLE', `${path} is larger than ${maxConfigBytes} bytes`, []);
      }
      const buffer = Buffer.alloc(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, buffer, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      text = buffer.subarray(0, read).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError('EDGE_CONFIG_UNREADABLE', `cannot read ${path} (${code})`, [], err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const why = err instanceof Error ? err.message : 'invalid JSON';
    throw new ConfigError('EDGE_CONFIG_UNREADABLE', `${path} is not valid JSON: ${why}`, [], err);
  }
}

/**
 * Load the config file; relative paths inside it are resolved against its folder.
 * Returns the config and its warnings; throws ConfigError when it cannot be read or has errors.
 */
export function loadConfig(path: string, options: Omit<CheckOptions, 'baseDir'> = {}): { config: EdgeConfig; issues: readonly ConfigIssue[] } {
  const absolute = resolve(path);
  const raw = readConfigDocument(absolute);
  const { config, issues } = checkConfig(raw, { ...options, baseDir: dirname(absolute) });
  if (config === undefined) {
    const errors = errorsIn(issues);
    const first = errors[0];
    const summary = first === undefined ? 'invalid' : formatIssue(first);
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new ConfigError('EDGE_CONFIG_INVALID', `${absolute}: ${summary}${more}`, issues);
  }
  return { config, issues };
}
