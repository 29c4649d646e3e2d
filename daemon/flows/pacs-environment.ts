// A test or training box must never put its images into a production PACS: test patients would land
// in real patients' archives. When the PACS is declared production on such a box, the destination's
// sender refuses every entry for good (each becomes a dead letter a person sees), and the start says so
// once in the audit trail and the log.
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import { securityAlert } from '../core/audit-event-builders.ts';
import { type Environment, isProduction } from '../core/environment.ts';
import type { Logger } from '../core/log.ts';
import type { DeliveryResult, OutboxEntry, OutboxSender } from '../core/outbox.ts';
import type { Service } from '../core/service.ts';
import type { EdgeConfig } from '../config/index.ts';

/** Whether a box of `box` may forward to a PACS of `pacs` (omitted: the box's own environment). */
export function forwardingAllowed(box: Environment, pacs: Environment | undefined): boolean {
  return isProduction(box) || pacs === undefined || !isProduction(pacs);
}

/**
 * The standing alarm while forwarding is refused: a part of the box that reports itself degraded, so
 * `edgectl status` (and the admin page) show it for as long as the config stays so, not only at start.
 */
export function pacsEnvironmentAlarm(config: EdgeConfig): Service[] {
  const pacs = config.upstream.pacs;
  if (pacs === undefined || forwardingAllowed(config.site.environment, pacs.environment)) return [];
  const detail = `forwarding refused: upstream.pacs.environment is "production" on a ${config.site.environment} box`;
  return [{ name: 'pacs-environment', start: async () => {}, stop: async () => {}, health: () => ({ status: 'degraded', detail }) }];
}

export class EnvironmentRefusingSender implements OutboxSender {
  readonly destination: string;
  readonly #message: string;

  constructor(destination: string, box: Environment) {
    this.destination = destination;
    this.#message = `not forwarded: this is a ${box} box and upstream.pacs.environment is "production"; point upstream.pacs at a ${box} PACS, then retry the dead letters`;
  }

  async deliver(entries: readonly OutboxEntry[]): Promise<readonly DeliveryResult[]> {
    const at = Date.now();
    return entries.map(() => ({
      outcome: 'failed' as const,
      error: { code: 'EDGE_PACS_ENVIRONMENT_MISMATCH' as const, message: this.#message, at },
    }));
  }
}

export function recordForwardingRefused(
  audit: AuditSink,
  logger: Logger,
  box: Environment,
  participants: readonly AuditParticipant[],
): void {
  logger.warn('pacs.environment-refused', { environment: box, pacsEnvironment: 'production' });
  audit.record(
    securityAlert(
      'pacs.environment-refused',
      participants,
      `this is a ${box} box and upstream.pacs.environment is "production": nothing is forwarded, each image becomes a dead letter (EDGE_PACS_ENVIRONMENT_MISMATCH); point upstream.pacs at a ${box} PACS`,
    ),
  );
}
