// edged: the one process of the box. This file is the process only: arguments, signals, exit statuses,
// readiness (systemd notify), and the start and stop of the box, which daemon/flows/edge.ts composes
// from one module per flow. Start: config → keys → store → services in order → ready. Stop: the
// services in reverse, within shutdown.drainTimeoutMs.
import { execFile } from 'node:child_process';
import { parseArgs } from 'node:util';
import { isEdgeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { type EdgeConfig, errorsIn, formatIssue, loadConfig } from './config/index.ts';
import { createJsonLogger } from './observability/json-logger.ts';
import { type RunningEdge, startEdge } from './flows/edge.ts';
import { isSafeModeCause, startSafeMode } from './flows/safe-mode.ts';

/** Exit statuses (sysexits.h), documented in docs/error-codes.md. */
export const ExitCode = {
  Ok: 0,
  Usage: 64,
  Software: 70,
  IoError: 74,
  NoPermission: 77,
  Config: 78,
} as const;

function notifySystemd(logger: Logger): void {
  if (process.env['NOTIFY_SOCKET'] === undefined) return;
  execFile('systemd-notify', ['--ready', `--pid=${process.pid}`], { timeout: 5000 }, (err) => {
    if (err) logger.warn('edged.notify-failed', { error: err.message });
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: [...argv], options: { config: { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  } catch (err) {
    process.stderr.write(`edged: ${(err as Error).message}\nusage: edged --config FILE\n`);
    return ExitCode.Usage;
  }
  if (args.values.help === true || args.values.config === undefined) {
    process.stderr.write('usage: edged --config FILE\n');
    return args.values.help === true ? ExitCode.Ok : ExitCode.Usage;
  }
  let config: EdgeConfig;
  let log = createJsonLogger(process.stdout, 'info', { service: 'edged' });
  try {
    const loaded = loadConfig(args.values.config);
    config = loaded.config;
    log = createJsonLogger(process.stdout, config.log.level, { service: 'edged', site: config.site.name });
    for (const issue of loaded.issues) log.warn('config.warning', { path: issue.path, code: issue.code, message: issue.message });
  } catch (err) {
    const issues = (err as { issues?: Parameters<typeof formatIssue>[0][] }).issues ?? [];
    log.error('config.invalid', {
      code: isEdgeError(err) ? err.code : 'unexpected',
      error: (err as Error).message,
      issues: errorsIn(issues).length,
    });
    for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return ExitCode.Config;
  }

  // Signals that arrive while the box starts are held and handled once it is up: a SIGHUP right after
  // `edged.ready` must reload, not kill it (Node's default action), and a SIGTERM stops it cleanly.
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => {
    held.push(signal);
  };
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, hold);
  const release = (): void => {
    for (const signal of signals) process.off(signal, hold);
  };

  let edge: RunningEdge;
  const startedAt = Date.now();
  try {
    edge = await startEdge(config, log, { configFile: args.values.config });
  } catch (err) {
    release();
    const code = isEdgeError(err) ? err.code : 'unexpected';
    log.error('edged.start-failed', { code, error: (err as Error).message });
    if (isSafeModeCause(config, code)) return runSafeMode(config, log, code, (err as Error).message);
    if (code === 'EDGE_STORE_LOCKED' || code === 'EDGE_STORE_WRITE_FAILED') return ExitCode.IoError;
    if (code === 'EDGE_START_STEP_TIMEOUT') {
      // The blocked file system call holds a libuv thread, and process.exit() would wait for it for ever.
      log.error('edged.forced-exit', { reason: code });
      process.kill(process.pid, 'SIGKILL');
    }
    if (code.startsWith('EDGE_KEYS_')) return ExitCode.NoPermission;
    return ExitCode.Software;
  }

  log.info('edged.ready', {
    ...edge.ports,
    aeTitle: config.dicom.aeTitle,
    environment: config.site.environment,
    keysBackend: edge.keysBackend,
    startMs: Date.now() - startedAt,
  });
  notifySystemd(log);

  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn('edged.forced-exit', { signal });
        resolve(ExitCode.Software);
        return;
      }
      signalled = true;
      log.info('edged.signal', { signal });
      edge.stop().then(
        () => resolve(ExitCode.Ok),
        (err: unknown) => {
          log.error('edged.stop-failed', { error: (err as Error).message });
          resolve(ExitCode.Software);
        },
      );
    };
    const onHangup = (): void => {
      log.info('edged.signal', { signal: 'SIGHUP' });
      edge.reload().then(
        (r) => {
          if (!r.applied) log.warn('config.reload-refused', { errors: errorsIn(r.issues).length });
        },
        (err: unknown) =>
          log.error('config.reload-failed', { code: isEdgeError(err) ? err.code : 'unexpected', error: (err as Error).message }),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onHangup);
    release();
    for (const signal of held) {
      if (signal === 'SIGHUP') onHangup();
      else onSignal(signal);
    }
  });
}

/**
 * Keys that cannot be unsealed: the daemon stays up answering only `GET /v1/status` (flows/safe-mode.ts);
 * SIGTERM ends it with status 77 (EX_NOPERM).
 */
async function runSafeMode(config: EdgeConfig, log: Logger, code: string, message: string): Promise<number> {
  let safe: { stop(): Promise<void> } | undefined;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info('edged.signal', { signal });
      (safe?.stop() ?? Promise.resolve()).then(
        () => resolve(ExitCode.NoPermission),
        () => resolve(ExitCode.NoPermission),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  safe = await startSafeMode(config, log, code, message);
  notifySystemd(log);
  return stopped;
}

if (import.meta.main) {
  process.on('unhandledRejection', (reason) => {
    process.stdout.write(
      `${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'edged.unhandled-rejection', error: String(reason instanceof Error ? reason.message : reason) })}\n`,
    );
    process.exit(ExitCode.Software);
  });
  // main() ends with an explicit exit. An event loop that runs dry before that means a start or a stop
  // waited on something that can never happen; Node would exit 0 as if all were well, with the store
  // unclosed, so say so and exit 70 (systemd restarts the box).
  process.once('beforeExit', () => {
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'edged.event-loop-drained' })}\n`);
    process.exit(ExitCode.Software);
  });
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`edged: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(ExitCode.Software);
    },
  );
}
