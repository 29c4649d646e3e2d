// The store's way back from a failed write (store/store-recovery.ts), audited, and the systemd watchdog
// (observability/systemd-watchdog.ts), which pings only while the store is not stuck and the thread
// pool answers.
import { statfs } from 'node:fs/promises';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { Logger } from '../core/log.ts';
import { type Service, healthy } from '../core/service.ts';
import { SystemdWatchdog, watchdogIntervalMs } from '../observability/systemd-watchdog.ts';
import type { Store } from '../store/index.ts';
import type { StoreHealth } from '../store/store-recovery.ts';

export interface StoreRecoveryService extends Service {
  store(): StoreHealth;
}

/** Watches the store from the moment it is composed: a write can fail during the start already. */
export function storeRecovery(
  dataDir: string,
  store: Store,
  audit: AuditSink,
  box: AuditParticipant,
  logger: Logger,
): StoreRecoveryService {
  const recovery = store.watchRecovery({
    dataDir,
    logger: logger.child({ component: 'store' }),
    // Recorded once the store takes writes again: while it is degraded no record can be written.
    onRecovered: (was, degradedMs) => {
      audit.record({
        eventId: 'ApplicationActivity',
        type: 'store.degraded',
        action: 'E',
        outcome: 8,
        at: was.since ?? Date.now(),
        participants: [box],
        detail: `${was.code ?? 'EDGE_STORE_WRITE_FAILED'}: ${was.reason ?? 'write failed'}; writes refused until recovered`,
      });
      audit.record({
        eventId: 'ApplicationActivity',
        type: 'store.recovered',
        action: 'E',
        outcome: 0,
        at: Date.now(),
        participants: [box],
        detail: `database reopened and taking writes after ${degradedMs} ms degraded`,
      });
    },
  });
  return {
    name: 'store-recovery',
    start: () => Promise.resolve(),
    stop: async () => recovery.stop(),
    health: () => {
      const h = recovery.health();
      return h.state === 'ok'
        ? healthy
        : { status: 'degraded', detail: `${h.code ?? 'EDGE_STORE_WRITE_FAILED'} since ${new Date(h.since ?? Date.now()).toISOString()}` };
    },
    store: () => recovery.health(),
  };
}

/** The watchdog as the last service of the box: it pings from readiness on. */
export function watchdogService(dataDir: string, logger: Logger, store: Pick<Store, 'writeAgeMs'>): Service {
  let watchdog: SystemdWatchdog | undefined;
  return {
    name: 'watchdog',
    start: async () => {
      watchdog = startWatchdog(dataDir, logger, store);
    },
    stop: async () => watchdog?.stop(),
    health: () => (watchdog === undefined ? { status: 'ok', detail: 'off (no WATCHDOG_USEC)' } : healthy),
  };
}

/**
 * Ping systemd's watchdog when WATCHDOG_USEC asks for it (also in safe mode, where no store is open:
 * then only the event loop and the thread pool are checked). Undefined when the watchdog is off.
 */
export function startWatchdog(dataDir: string, logger: Logger, store?: Pick<Store, 'writeAgeMs'>): SystemdWatchdog | undefined {
  const intervalMs = watchdogIntervalMs();
  if (intervalMs === undefined) return undefined;
  // A synced write running for a whole watchdog period is a hung disk, not a slow one.
  const stuckWriteMs = intervalMs * 2;
  const watchdog = new SystemdWatchdog({
    intervalMs,
    logger,
    check: async () => {
      const age = store?.writeAgeMs() ?? 0;
      if (age > stuckWriteMs) return `a synced write has been running for ${age} ms`;
      // A round trip through libuv's thread pool, which every database and spool operation needs.
      await statfs(dataDir);
      return undefined;
    },
  });
  watchdog.start();
  return watchdog;
}
