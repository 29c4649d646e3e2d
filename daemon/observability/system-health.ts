// The box's own health for the admin page's overview: CPU load, memory, disk of the data directory and
// the spool, temperature where the hardware has a sensor, uptime, NTP sync. systeminformation spawns
// processes and takes half a second for the CPU load, so it runs on a timer in the background and a
// page view only reads the last sample: looking at the page costs the clinical path nothing.
import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import si from 'systeminformation';
import type { Logger } from '../core/log.ts';

export interface DiskUse {
  /** Which folder: `data` or `spool`. */
  readonly name: string;
  readonly totalBytes: number;
  readonly freeBytes: number;
}

export interface SystemHealth {
  /** ms since epoch of the sample. */
  readonly sampledAt: number;
  /** Percent of all cores, 0–100. */
  readonly cpuLoadPercent: number;
  readonly loadAverage1m: number;
  readonly memoryTotalBytes: number;
  readonly memoryAvailableBytes: number;
  readonly disks: readonly DiskUse[];
  /** °C of the main sensor; undefined when the hardware has none. */
  readonly temperatureC: number | undefined;
  readonly uptimeSeconds: number;
  /** From systemd-timesyncd (timedatectl); undefined where it cannot be asked. */
  readonly ntpSynchronized: boolean | undefined;
}

export interface SystemHealthOptions {
  readonly folders: readonly { readonly name: string; readonly path: string }[];
  readonly intervalMs: number;
  readonly logger: Logger;
}

export class SystemHealthSampler {
  readonly #o: SystemHealthOptions;
  #last: SystemHealth | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: SystemHealthOptions) {
    this.#o = options;
  }

  /** The last sample (undefined until the first one finished, a second or so after start). */
  get last(): SystemHealth | undefined {
    return this.#last;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #sample(): void {
    if (this.#running !== undefined) return;
    this.#running = this.#take()
      .then((h) => {
        this.#last = h;
      })
      .catch((err: unknown) => this.#o.logger.warn('health.sample-failed', { error: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        this.#running = undefined;
      });
  }

  async #take(): Promise<SystemHealth> {
    const [load, mem, temp, disks, ntp] = await Promise.all([
      si.currentLoad(),
      si.mem(),
      si.cpuTemperature(),
      Promise.all(
        this.#o.folders.map(async (f) => {
          const s = await statfs(f.path);
          return { name: f.name, totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
        }),
      ),
      ntpSynchronized(),
    ]);
    const time = si.time();
    return {
      sampledAt: Date.now(),
      cpuLoadPercent: Math.round(load.currentLoad * 10) / 10,
      loadAverage1m: load.avgLoad,
      memoryTotalBytes: mem.total,
      memoryAvailableBytes: mem.available,
      disks,
      temperatureC: typeof temp.main === 'number' ? temp.main : undefined,
      uptimeSeconds: Math.round(Number(time.uptime)),
      ntpSynchronized: ntp,
    };
  }
}

/** `timedatectl show -p NTPSynchronized --value`: yes / no; undefined without systemd. */
function ntpSynchronized(): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    execFile('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 2000 }, (err, stdout) => {
      if (err !== null) resolve(undefined);
      else resolve(stdout.trim() === 'yes' ? true : stdout.trim() === 'no' ? false : undefined);
    });
  });
}
