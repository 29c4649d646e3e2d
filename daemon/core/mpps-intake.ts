// What the box does with an MPPS N-CREATE or N-SET: check it against the state machine, link it to its
// orders, and store it together with the status messages for the RIS in one durable commit. The DIMSE
// answer (success or a refusal) is given only after that commit.
import type { AuditParticipant, AuditSink } from './audit.ts';
import { auditEvent } from './audit-event-builders.ts';
import type { DataSet } from './dataset.ts';
import type { Logger } from './log.ts';
import { linkScheduledSteps } from './mpps-linking.ts';
import { procedureStatusEntries } from './mpps-status.ts';
import {
  type MppsRefusal,
  type MppsRepository,
  type PerformedProcedureStep,
  type ScheduledStepRef,
  applyNSet,
  isMppsRefusal,
  stepFromNCreate,
} from './mpps.ts';
import type { OrderLookup } from './ports.ts';

export interface MppsIntakeOptions {
  readonly repository: MppsRepository;
  readonly orders: OrderLookup;
  /** Outbox destination of status messages; undefined = no RIS configured (steps are still kept). */
  readonly statusDestination: string | undefined;
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** This box, as the receiving participant of audit events. */
  readonly box: AuditParticipant;
  readonly now?: () => number;
}

export interface MppsPeer {
  readonly callingAeTitle: string;
  readonly remoteAddress: string;
  /** Association id, for correlating logs and audit records. */
  readonly associationId: string;
}

export type MppsOutcome = { readonly ok: PerformedProcedureStep } | MppsRefusal;

export class MppsIntake {
  readonly #o: MppsIntakeOptions;
  readonly #now: () => number;

  constructor(options: MppsIntakeOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async nCreate(sopInstanceUid: string, ds: DataSet, peer: MppsPeer): Promise<MppsOutcome> {
    const now = this.#now();
    const parsed = stepFromNCreate(sopInstanceUid, ds, { callingAeTitle: peer.callingAeTitle, now });
    if (isMppsRefusal(parsed)) return this.#refused('N-CREATE', parsed, peer);
    const linkedOrders = await linkScheduledSteps(this.#o.orders, parsed.scheduledSteps, parsed.startDate);
    const step: PerformedProcedureStep = { ...parsed, linkedOrders, unscheduled: linkedOrders.length === 0 };
    const outbox = this.#o.statusDestination === undefined ? [] : procedureStatusEntries(step, this.#o.statusDestination, now);
    const created = await this.#o.repository.create(step, outbox);
    if (isMppsRefusal(created)) return this.#refused('N-CREATE', created, peer);
    this.#o.logger.info('mpps.created', {
      associationId: peer.associationId,
      linkedOrders: linkedOrders.length,
      unscheduled: step.unscheduled,
      statusMessages: outbox.length,
    });
    this.#audit(
      'mpps.created',
      step,
      peer,
      `IN PROGRESS; ${linkedOrders.length} linked order(s)${step.unscheduled ? '; UNSCHEDULED' : ''}; ${outbox.length} status message(s) queued`,
    );
    return { ok: step };
  }

  async nSet(sopInstanceUid: string, ds: DataSet, peer: MppsPeer): Promise<MppsOutcome> {
    const now = this.#now();
    let queued = 0;
    let statusChanged = false;
    const result = await this.#o.repository.update(sopInstanceUid, (prev) => {
      const t = applyNSet(prev, ds, now);
      if (isMppsRefusal(t)) return t;
      statusChanged = t.statusChanged;
      // Attribute updates while IN PROGRESS tell the RIS nothing new; status changes do.
      const outbox =
        t.statusChanged && this.#o.statusDestination !== undefined ? procedureStatusEntries(t.step, this.#o.statusDestination, now) : [];
      queued = outbox.length;
      return { step: t.step, outbox };
    });
    if (isMppsRefusal(result)) return this.#refused('N-SET', result, peer);
    this.#o.logger.info('mpps.updated', {
      associationId: peer.associationId,
      status: result.status,
      statusChanged,
      statusMessages: queued,
    });
    this.#audit('mpps.updated', result, peer, `${result.status}; ${queued} status message(s) queued`);
    return { ok: result };
  }

  #refused(op: string, r: MppsRefusal, peer: MppsPeer): MppsRefusal {
    this.#o.logger.warn('mpps.refused', {
      associationId: peer.associationId,
      op,
      reason: r.refused,
      ...(r.tag === undefined ? {} : { tag: r.tag.toString(16).padStart(8, '0') }),
    });
    this.#o.audit.record(
      auditEvent('mpps.refused', {
        action: op === 'N-CREATE' ? 'C' : 'U',
        at: this.#now(),
        participants: [{ kind: 'dicom', id: peer.callingAeTitle, address: peer.remoteAddress, requestor: true }, this.#o.box],
        controlId: peer.associationId,
        detail: `${op} refused: ${r.refused} (${r.comment})`,
      }),
    );
    return r;
  }

  /** One record per linked order (PS3.15 A.5.3.9 names one patient each); an unscheduled step names what it referenced. */
  #audit(type: 'mpps.created' | 'mpps.updated', step: PerformedProcedureStep, peer: MppsPeer, detail: string): void {
    const subjects: { patient?: { id: string; issuer: string }; accessionNumber?: string; studyInstanceUid?: string }[] =
      step.linkedOrders.length > 0
        ? step.linkedOrders.map((o) => ({
            patient: { id: o.patient.id, issuer: o.patient.issuer },
            accessionNumber: o.accessionNumber,
            studyInstanceUid: o.studyInstanceUid,
          }))
        : [nonEmptyRef(step.scheduledSteps[0])];
    subjects.forEach((subject, i) => {
      this.#o.audit.record(
        auditEvent(type, {
          at: this.#now(),
          participants: [{ kind: 'dicom', id: peer.callingAeTitle, address: peer.remoteAddress, requestor: true }, this.#o.box],
          ...subject,
          controlId: peer.associationId,
          detail: subjects.length > 1 ? `${detail} (${i + 1} of ${subjects.length})` : detail,
        }),
      );
    });
  }
}

function nonEmptyRef(ref: ScheduledStepRef | undefined): { accessionNumber?: string; studyInstanceUid?: string } {
  if (ref === undefined) return {};
  return {
    ...(ref.accessionNumber === '' ? {} : { accessionNumber: ref.accessionNumber }),
    ...(ref.studyInstanceUid === '' ? {} : { studyInstanceUid: ref.studyInstanceUid }),
  };
}
