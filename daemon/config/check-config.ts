// Pure-ish validation of a parsed JSON document: every issue at once, and the config with defaults
// applied and paths made absolute only when there is no error. Reads the file system only to check
// that referenced files exist (turn off with checkFiles: false).
import { edgeConfigSchema } from './edge-config-schema.ts';
import type { EdgeConfig } from './edge-config-schema.ts';
import { INVALID } from './schema-kit.ts';
import type { ConfigIssue } from './schema-kit.ts';

export interface CheckOptions {
  /** Folder that relative paths are resolved against; the config file's folder. Default: the working directory. */
  readonly baseDir?: string;
  /** Check that referenced files exist and that private keys are 0600. Default true. */
  readonly checkFiles?: boolean;
}

export interface CheckResult {
  /** Present only when there are no errors (warnings allowed). */
  readonly config?: EdgeConfig;
  readonly issues: readonly ConfigIssue[];
}

export function checkConfig(raw: unknown, options: CheckOptions = {}): CheckResult {
  const issues: ConfigIssue[] = [];
  const parsed = edgeConfigSchema.parse(raw, '', {
    baseDir: options.baseDir ?? process.cwd(),
    checkFiles: options.checkFiles ?? true,
    report(severity, code, path, message) {
      issues.push({ severity, code, path, message });
    },
  });
  const hasErrors = issues.some((i) => i.severity === 'error');
  return parsed === INVALID || hasErrors ? { issues } : { config: parsed, issues };
}

export function errorsIn(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues.filter((i) => i.severity === 'error');
}

/** One line per issue, for logs of the CLI and error messages (config values are not patient data). */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.severity}: ${issue.path === '' ? '(document)' : issue.path}: ${issue.message} [${issue.code}]`;
}
