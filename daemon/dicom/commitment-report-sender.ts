// The outbox sender of destination `storage-commitment`: each entry is one report, sent on the
// association the modality asked on while that is still open, else on a new association to the port its
// peer config names (commitment-report-scu.ts). Success of the N-EVENT-REPORT-RSP
// delivers it; a failure status is the modality's refusal of this report (retried, then a dead letter);
// a modality that cannot be reached queues the report, it never drops it.
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { DeliveryResult, OutboxEntry, OutboxSender } from '../core/outbox.ts';
import type { CommitmentReportPayload } from '../core/storage-commitment.ts';
import { type CommitmentReportTarget, sendCommitmentReport, sendReportOnAssociation } from './commitment-report-scu.ts';
import type { AssociationContext } from './dimse-service.ts';
import { Status } from './dimse-command.ts';

export interface CommitmentReportSenderOptions {
  readonly destination: string;
  /** Where the report goes, from the modality's peer config now (undefined: no route). */
  readonly route: (payload: CommitmentReportPayload) => CommitmentReportTarget | undefined;
  /** The open association the request came on, when it still is (undefined: none or closed). */
  readonly openAssociation?: (payload: CommitmentReportPayload) => AssociationContext | undefined;
  /** Called once per report the modality accepted (for the audit trail): the target, or the association it went on. */
  readonly onSent?: (payload: CommitmentReportPayload, via: CommitmentReportTarget | AssociationContext) => void;
  readonly logger: Logger;
  /** The transport (tests may put another in its place); the real N-EVENT-REPORT SCU by default. */
  readonly send?: typeof sendCommitmentReport;
}

export class CommitmentReportSender implements OutboxSender {
  readonly destination: string;
  readonly #o: CommitmentReportSenderOptions;

  constructor(options: CommitmentReportSenderOptions) {
    this.destination = options.destination;
    this.#o = options;
  }

  async deliver(entries: readonly OutboxEntry[], signal: AbortSignal): Promise<readonly DeliveryResult[]> {
    const results: DeliveryResult[] = [];
    for (const entry of entries) results.push(await this.#deliverOne(entry, signal));
    return results;
  }

  async #deliverOne(entry: OutboxEntry, signal: AbortSignal): Promise<DeliveryResult> {
    const payload = entry.payload as Partial<CommitmentReportPayload> | null;
    if (payload === null || typeof payload.modality !== 'string' || payload.report === undefined) {
      return { outcome: 'failed', error: { code: 'EDGE_OUTBOX_PAYLOAD_INVALID', message: 'not a commitment report', at: Date.now() } };
    }
    const p = payload as CommitmentReportPayload;
    const open = this.#o.openAssociation?.(p);
    if (open?.invoke !== undefined && open.isOpen?.() === true) {
      try {
        const outcome = await sendReportOnAssociation(open.invoke, p.report);
        if (outcome.status === Status.Success) {
          this.#o.logger.info('commitment.report-sent', { modality: p.modality, eventTypeId: p.report.eventTypeId, sameAssociation: true });
          this.#o.onSent?.(p, open);
          return { outcome: 'delivered' };
        }
        this.#o.logger.warn('commitment.report-refused', { modality: p.modality, status: hex(outcome.status), sameAssociation: true });
      } catch (err) {
        // The association ended or did not answer: the report goes on a new association instead.
        this.#o.logger.info('commitment.report-failed', {
          modality: p.modality,
          code: isEdgeError(err) ? err.code : 'unexpected',
          sameAssociation: true,
        });
      }
    }
    const target = this.#o.route(p);
    if (target === undefined) {
      return {
        outcome: 'failed',
        error: {
          code: 'EDGE_COMMITMENT_NO_ROUTE',
          message: `modality ${p.modality} has no storageCommitment port in dicom.modalities[] (or is no longer configured)`,
          at: Date.now(),
        },
      };
    }
    const send = this.#o.send ?? sendCommitmentReport;
    try {
      const outcome = await send(target, p.report, signal);
      const status = hex(outcome.status);
      if (outcome.status === Status.Success) {
        this.#o.logger.info('commitment.report-sent', { modality: p.modality, eventTypeId: p.report.eventTypeId });
        this.#o.onSent?.(p, target);
        return { outcome: 'delivered' };
      }
      this.#o.logger.warn('commitment.report-refused', { modality: p.modality, status });
      return {
        outcome: 'failed',
        reachedPeer: true,
        error: {
          code: 'EDGE_COMMITMENT_REPORT_FAILED',
          peerStatus: status,
          message: `modality ${p.modality} answered the N-EVENT-REPORT with ${status}`,
          at: Date.now(),
        },
      };
    } catch (err) {
      const e = isEdgeError(err) ? err : new EdgeError('EDGE_COMMITMENT_REPORT_FAILED', String(err));
      this.#o.logger.info('commitment.report-failed', { modality: p.modality, code: e.code });
      const code = e.code === 'EDGE_SHUTDOWN' || e.code === 'EDGE_DICOM_DATASET_INVALID' ? e.code : 'EDGE_COMMITMENT_REPORT_FAILED';
      return {
        outcome: 'failed',
        error: { code, message: `${target.host}:${target.port} ${target.calledAeTitle}: ${e.message}`.slice(0, 500), at: Date.now() },
      };
    }
  }
}

function hex(status: number): string {
  return `0x${status.toString(16).padStart(4, '0')}`;
}
