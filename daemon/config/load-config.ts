// Read and check the config file. Synchronous on purpose: it runs once at start (and on reload) on a
// small local file, before any listener exists.
import { dirname, resolve } from 'node:path';
import { EdgeError } from '../core/errors.ts';
import { checkConfig, errorsIn, formatIssue } from './check-config.ts';
import type { CheckOptions, CheckResult } from './check-config.ts';
import { findDuplicateKeys } from './duplicate-keys.ts';
import { readFileUpTo, unreadableFileMessage } from './file-access.ts';
import { IssueCode } from './schema-kit.ts';
import type { EdgeConfig } from './edge-config-schema.ts';
import type { ConfigIssue } from './schema-kit.ts';

/** A config file larger than this is refused before parsing. */
export const maxConfigBytes = 1_048_576;

/** EDGE_CONFIG_UNREADABLE or EDGE_CONFIG_INVALID, with every issue found. */
export class ConfigError extends EdgeError {
  readonly issues: readonly ConfigIssue[];

  constructor(code: 'EDGE_CONFIG_UNREADABLE' | 'EDGE_CONFIG_INVALID', message: string, issues: readonly ConfigIssue[], cause?: unknown) {
    super(code, message, { cause, detail: { issues: issues.length } });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Reads and parses the JSON document; throws ConfigError EDGE_CONFIG_UNREADABLE. */
export function readConfigDocument(path: string): unknown {
  return parseConfigText(path, readConfigText(path));
}

function readConfigText(path: string): string {
  let data: Buffer | undefined;
  try {
    data = readFileUpTo(path, maxConfigBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'EACCES' || code === 'EPERM' ? unreadableFileMessage(path) : `cannot read ${path} (${code})`;
    throw new ConfigError('EDGE_CONFIG_UNREADABLE', why, [], err);
  }
  if (data === undefined) throw new ConfigError('EDGE_CONFIG_UNREADABLE', `${path} is larger than ${maxConfigBytes} bytes`, []);
  return data.toString('utf8');
}

function parseConfigText(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const why = err instanceof Error ? err.message : 'invalid JSON';
    throw new ConfigError('EDGE_CONFIG_UNREADABLE', `${path} is not valid JSON: ${why}`, [], err);
  }
}

/**
 * Every issue of a config file: duplicate keys (which JSON.parse would hide), then the schema's checks.
 * The one check that `edgectl config check`, the daemon's start and its reload all run.
 * Throws ConfigError EDGE_CONFIG_UNREADABLE when the file cannot be read or is not JSON.
 */
export function checkConfigFile(path: string, options: Omit<CheckOptions, 'baseDir'> = {}): CheckResult {
  const absolute = resolve(path);
  const text = readConfigText(absolute);
  const raw = parseConfigText(absolute, text);
  const duplicates: ConfigIssue[] = findDuplicateKeys(text).map((d) => ({
    severity: 'error',
    code: IssueCode.Duplicate,
    path: d.path,
    message: `appears twice in one object (lines ${d.firstLine} and ${d.line}); only the last one would count: keep one and delete the other`,
  }));
  const result = checkConfig(raw, { ...options, baseDir: dirname(absolute) });
  const issues = [...duplicates, ...result.issues];
  return duplicates.length === 0 ? { ...result, issues } : { issues };
}

/**
 * Load the config file; relative paths inside it are resolved against its folder.
 * Returns the config and its warnings; throws ConfigError when it cannot be read or has errors.
 */
export function loadConfig(
  path: string,
  options: Omit<CheckOptions, 'baseDir'> = {},
): { config: EdgeConfig; issues: readonly ConfigIssue[] } {
  const absolute = resolve(path);
  const { config, issues } = checkConfigFile(absolute, options);
  if (config === undefined) {
    const errors = errorsIn(issues);
    const first = errors[0];
    const summary = first === undefined ? 'invalid' : formatIssue(first);
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new ConfigError('EDGE_CONFIG_INVALID', `${absolute}: ${summary}${more}`, issues);
  }
  return { config, issues };
}
