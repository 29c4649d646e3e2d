// The systemd watchdog (sd_watchdog_enabled(3), sd_notify(3)): with WatchdogSec= in the unit, systemd
// sets WATCHDOG_USEC and restarts the service when no WATCHDOG=1 arrives within it. The ping is earned,
// not sent from a free-running timer: each one follows a check (the owner's: the store not stuck, a
// round trip through the thread pool) that finished in time, so a blocked event loop, a hung disk or a
// wedged store stop the pings and systemd restarts the daemon.
import { execFile } from 'node:child_process';
import type { Logger } from '../core/log.ts';

/** Half of WATCHDOG_USEC (systemd's advice), or undefined when the watchdog is off or meant for another process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  if (env['NOTIFY_SOCKET'] === undefined) return undefined;
  const usec = Number(env['WATCHDOG_USEC']);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && forPid !== '' && Number(forPid) !== pid) return undefined;
  return Math.max(100, Math.floor(usec / 2000));
}

export interface SystemdWatchdogOptions {
  readonly intervalMs: number;
  /** Resolves undefined when healthy, else why not; one that does not settle within the interval counts as stuck. */
  readonly check: (deadlineMs: number) => Promise<string | undefined>;
  readonly logger: Logger;
}

export class SystemdWatchdog {
  readonly #o: SystemdWatchdogOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #withheld: string | undefined;

  constructor(options: SystemdWatchdogOptions) {
    this.#o = options;
  }

  start(): void {
    this.#o.logger.info('edged.watchdog', { intervalMs: this.#o.intervalMs });
    this.#next();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #next(): void {
    if (this.#stopped) return;
    // Chained, not an interval: a slow check never overlaps the next, and a late timer (blocked loop)
    // simply means a late ping.
    this.#timer = setTimeout(() => void this.#tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const deadline = this.#o.intervalMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`the health check did not finish within ${deadline} ms`), deadline);
    });
    const why = await Promise.race([
      this.#o.check(deadline).catch((err: unknown) => `the health check failed: ${err instanceof Error ? err.message : String(err)}`),
      late,
    ]);
    clearTimeout(timer);
    if (this.#stopped) return;
    if (why === undefined) {
      if (this.#withheld !== undefined) this.#o.logger.warn('edged.watchdog-resumed', { withheld: this.#withheld });
      this.#withheld = undefined;
      this.#ping();
    } else if (why !== this.#withheld) {
      this.#withheld = why;
      this.#o.logger.error('edged.watchdog-withheld', { reason: why });
    }
    this.#next();
  }

  #ping(): void {
    // The child, not this process, sends the datagram (Node has no AF_UNIX datagram socket), hence
    // NotifyAccess=all; --pid names the main process, and without --no-block systemd-notify waits until
    // systemd has read the message, so it is never dropped for a sender that already exited.
    execFile('systemd-notify', [`--pid=${process.pid}`, 'WATCHDOG=1'], { timeout: this.#o.intervalMs }, (err) => {
      if (err) this.#o.logger.warn('edged.watchdog-notify-failed', { error: err.message });
    });
  }
}
