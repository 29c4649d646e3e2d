// What keeps an attack from filling the disk through the audit trail. Connection-level
// refusals (before any peer is authenticated) go through one coalescer, so a flood costs a few records
// per source and reason per interval; the chain's size is watched against a disk budget, with alarms
// in the chain, the log and the status. Every audit event it records is listed in docs/audit-events.md.
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import { AuditCoalescer } from '../core/audit-coalescer.ts';
import { type AuditBudgetChange, type AuditBudgetStatus, AuditDiskBudget } from '../core/audit-disk-budget.ts';
import type { Logger } from '../core/log.ts';
import type { Service } from '../core/service.ts';
import type { EdgeConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import { securityAlert } from '../core/audit-event-builders.ts';

/**
 * The audit types of connection-level refusals, which a peer can cause as often as it can connect: every
 * refusal before a peer is authenticated, and HL7 framing errors (the connection closes before any
 * message, so no later record tells about it). Refusals of a message (sender mismatch, unsupported
 * message, replayed MSH-10) stay one record each.
 */
export const CONNECTION_REFUSAL_TYPES: ReadonlySet<string> = new Set([
  'hl7.peer-refused',
  'hl7.framing-error',
  'dicom.connection-refused',
  'dicom.tls-handshake-failed',
  'dicom.association-rejected',
  'metrics.scrape-refused',
]);

const BUDGET_CHECK_EVERY_MS = 60_000;

/** Started before the listeners; stopped once they stopped (writes every pending summary), before the chain's last record. */
export interface AuditGuards extends Service {
  /** The audit sink for the listeners: refusals coalesced, everything else straight to the chain. */
  readonly sink: AuditSink;
  status(): AuditBudgetStatus & { readonly coalescing: number };
}

export function auditGuards(config: EdgeConfig['audit'], store: Store, box: AuditParticipant, logger: Logger): AuditGuards {
  const log = logger.child({ component: 'audit' });
  const coalescer = new AuditCoalescer({
    sink: store.audit,
    types: CONNECTION_REFUSAL_TYPES,
    intervalMs: config.coalesceIntervalMs,
    maxKeys: config.coalesceMaxSources,
  });
  const budget = new AuditDiskBudget({
    budgetBytes: config.diskBudgetBytes,
    measure: () => store.auditBytes(),
    checkEveryMs: BUDGET_CHECK_EVERY_MS,
    onChange: (change) => budgetAlarm(store.audit, box, log, change),
    onMeasureFailed: (error) => log.warn('audit.disk-budget-unmeasured', { error }),
  });
  return {
    name: 'audit-guards',
    sink: coalescer,
    async start() {
      coalescer.start();
      await budget.start();
    },
    status: () => ({ ...budget.status, coalescing: coalescer.trackedKeys }),
    health: () =>
      budget.status.level === 'ok' ? { status: 'ok' } : { status: 'degraded', detail: `audit disk budget ${budget.status.level}` },
    async stop() {
      coalescer.stop();
      await budget.stop();
    },
  };
}

function budgetAlarm(audit: AuditSink, box: AuditParticipant, log: Logger, c: AuditBudgetChange): void {
  const percent = Math.round((c.usedBytes / c.budgetBytes) * 100);
  const fields = { usedBytes: c.usedBytes, budgetBytes: c.budgetBytes, percent, from: c.from };
  const usage = `${c.usedBytes} of ${c.budgetBytes} bytes (${percent} %)`;
  switch (c.to) {
    case 'exceeded':
      log.error('audit.disk-budget-exceeded', fields);
      audit.record(
        securityAlert(
          'audit.disk-budget-exceeded',
          [box],
          `the audit chain uses ${usage}; recording continues, nothing is pruned before its retention`,
        ),
      );
      return;
    case 'warning':
      log.warn('audit.disk-budget-warning', fields);
      audit.record(securityAlert('audit.disk-budget-warning', [box], `the audit chain uses ${usage}`));
      return;
    case 'ok':
      log.info('audit.disk-budget-ok', fields);
      audit.record(securityAlert('audit.disk-budget-ok', [box], `the audit chain uses ${usage} again`));
      return;
  }
}
