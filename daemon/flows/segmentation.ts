// The firewall drift alarm: the watch (security/segmentation-drift-watch.ts) reads the result the root
// verify timer writes; here its state changes become log lines and audit records.
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { Logger } from '../core/log.ts';
import { type Service, type ServiceHealth, healthy } from '../core/service.ts';
import type { EdgeConfig } from '../config/index.ts';
import { SegmentationDriftWatch } from '../security/segmentation-drift-watch.ts';

/** Watches when network.verifyResultFile is set; otherwise a service with nothing to do. */
export function segmentationWatch(config: EdgeConfig, audit: AuditSink, box: AuditParticipant, parent: Logger): Service {
  const file = config.network.verifyResultFile;
  if (file === undefined)
    return {
      name: 'segmentation-watch',
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      health: () => ({ status: 'ok', detail: 'off' }),
    };
  let state: ServiceHealth = healthy;
  const logger = parent.child({ component: 'segmentation' });
  const watch = new SegmentationDriftWatch({
    file,
    intervalMs: config.network.verifyCheckIntervalMs,
    // The timer verifies every minute; three missed runs and a slow box are still within ten minutes.
    staleAfterMs: Math.max(600_000, 3 * config.network.verifyCheckIntervalMs),
    onChange(current, previous) {
      state =
        current.state === 'ok'
          ? healthy
          : { status: 'degraded', detail: current.state === 'drift' ? 'firewall drift' : 'firewall state unknown' };
      if (current.state === 'drift') {
        const detail = current.absent
          ? 'table inet imaging_edge is not loaded'
          : `table inet imaging_edge differs from the plan: ${current.missing} planned line(s) missing, ${current.unexpected} unexpected`;
        logger.error('segmentation.drift', {
          code: 'EDGE_FIREWALL_DRIFT',
          absent: current.absent,
          missing: current.missing,
          unexpected: current.unexpected,
          verifiedAt: current.at,
        });
        audit.record({
          eventId: 'SecurityAlert',
          type: 'network.segmentation-drift',
          action: 'E',
          outcome: 8,
          at: Date.now(),
          participants: [box],
          detail,
        });
      } else if (current.state === 'ok') {
        logger.info('segmentation.verified', { verifiedAt: current.at });
        if (previous?.state === 'drift') {
          audit.record({
            eventId: 'ApplicationActivity',
            type: 'network.segmentation-restored',
            action: 'E',
            outcome: 0,
            at: Date.now(),
            participants: [box],
            detail: 'table inet imaging_edge matches the plan again',
          });
        }
      } else {
        logger.warn('segmentation.unknown', { reason: current.reason });
      }
    },
  });
  return {
    name: 'segmentation-watch',
    start: async () => watch.start(),
    stop: () => watch.stop(),
    health: () => state,
  };
}
