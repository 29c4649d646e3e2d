// The one lifecycle of every long-lived part of the box (listeners, senders, timers, the store): started
// in a declared order, stopped in the reverse order within one shared deadline, and a start that fails
// stops what had already started. Health is what `edgectl status` (and the admin page) show per part.
import type { Logger } from './log.ts';

export interface ServiceHealth {
  /** ok: doing its job; degraded: running but not fully (a collector down, the store refusing writes). */
  readonly status: 'ok' | 'degraded' | 'down';
  /** Identifiers and counts only, never patient data. */
  readonly detail?: string;
}

export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Drain in-flight work for at most `deadlineMs`, then let go. Called once, only after start resolved. */
  stop(deadlineMs: number): Promise<void>;
  health(): ServiceHealth;
}

export type ServiceState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface ServiceStatus extends ServiceHealth {
  readonly name: string;
  readonly state: ServiceState;
}

export const healthy: ServiceHealth = { status: 'ok' };

/** A service for a part with nothing to start (or started while it was composed): only a stop. */
export function stopOnly(
  name: string,
  stop: (deadlineMs: number) => Promise<void> | void,
  health: () => ServiceHealth = () => healthy,
): Service {
  return { name, start: () => Promise.resolve(), stop: async (deadlineMs) => stop(deadlineMs), health };
}

/** The running parts of the box, in start order. */
export class ServiceSet {
  readonly #services: readonly Service[];
  readonly #states = new Map<string, ServiceState>();
  readonly #logger: Logger;
  #started: Service[] = [];
  #stopping: Promise<void> | undefined;

  constructor(services: readonly Service[], logger: Logger) {
    const names = new Set<string>();
    for (const s of services) {
      if (names.has(s.name)) throw new TypeError(`two services are named ${s.name}`);
      names.add(s.name);
    }
    this.#services = services;
    this.#logger = logger;
  }

  /** Starts each in order; if one fails, stops those started (in reverse) and rethrows its error. */
  async start(stopDeadlineMs: number): Promise<void> {
    for (const s of this.#services) {
      this.#states.set(s.name, 'starting');
      try {
        await s.start();
      } catch (err) {
        this.#states.delete(s.name);
        this.#logger.error('edged.service-start-failed', { service: s.name });
        // Each failure to stop was logged by stop(); the error that matters is the one that failed the start.
        await this.stop(stopDeadlineMs).then(
          () => undefined,
          () => undefined,
        );
        throw err;
      }
      this.#started.push(s);
      this.#states.set(s.name, 'running');
    }
  }

  /**
   * Stops what started, last first; the deadline is shared, each gets what the ones before left. Every
   * part is stopped even when one fails; the first failure is rethrown at the end.
   */
  stop(deadlineMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      const end = Date.now() + deadlineMs;
      let failed: unknown;
      for (const s of [...this.#started].reverse()) {
        this.#states.set(s.name, 'stopping');
        try {
          await s.stop(Math.max(0, end - Date.now()));
        } catch (err) {
          // One part that fails to stop must not keep the others (the store above all) from stopping.
          this.#logger.error('edged.service-stop-failed', { service: s.name, error: err instanceof Error ? err.message : String(err) });
          failed ??= err;
        }
        this.#states.set(s.name, 'stopped');
      }
      this.#started = [];
      if (failed !== undefined) throw failed;
    })();
    return this.#stopping;
  }

  status(): ServiceStatus[] {
    return this.#services.flatMap((s) => {
      const state = this.#states.get(s.name);
      if (state === undefined) return [];
      return [{ name: s.name, state, ...(state === 'running' ? s.health() : { status: 'down' as const }) }];
    });
  }
}

export interface ListenerService extends Service {
  /** The bound port once started (the config may ask for port 0). */
  readonly port: number | undefined;
}

/** A network listener (HL7, DICOM) as a service: started it binds, stopped it drains. */
export function listenerService(
  name: string,
  listener: { start(): Promise<number>; stop(deadlineMs: number): Promise<void> },
): ListenerService {
  let port: number | undefined;
  return {
    name,
    get port() {
      return port;
    },
    start: async () => {
      port = await listener.start();
    },
    stop: (deadlineMs) => listener.stop(deadlineMs),
    health: () => (port === undefined ? { status: 'down' } : { status: 'ok', detail: `port ${port}` }),
  };
}
