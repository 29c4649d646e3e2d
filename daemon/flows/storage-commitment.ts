// The storage commitment flow (PS3.4 Annex J, Push Model): the N-ACTION service modalities ask on, the
// tracker that answers them once the PACS holds their instances (core/storage-commitment-tracker.ts),
// and the `storage-commitment` outbox destination that delivers each report to the modality on a new
// association, to the port its peer config names.
import type { AuditParticipant } from '../core/audit.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import { EdgeError } from '../core/errors.ts';
import { DICOM_INSTANCE_KIND, type SpooledInstanceRef } from '../core/instance-spool.ts';
import type { DestinationOptions } from '../core/outbox-dispatcher.ts';
import type { Service } from '../core/service.ts';
import { StorageCommitmentTracker } from '../core/storage-commitment-tracker.ts';
import type { CommitmentReportPayload, InstanceLedger, InstanceState } from '../core/storage-commitment.ts';
import type { AssociationContext, DimseService } from '../dicom/index.ts';
import { CommitmentReportSender } from '../dicom/commitment-report-sender.ts';
import type { CommitmentReportTarget } from '../dicom/commitment-report-scu.ts';
import { storageCommitmentService } from '../dicom/storage-commitment-service.ts';
import { clientTls } from '../security/tls-material.ts';
import type { Spool } from '../store/spool.ts';
import type { FlowContext } from './flow-context.ts';
import type { BoxPeerPolicies, ModalityPeer } from './orders-worklist.ts';
import { PACS_DESTINATION, destinationPolicy } from './outbox.ts';

export const COMMITMENT_DESTINATION = 'storage-commitment';
/** Open associations remembered for same-association reports (older ones get a new association). */
const MAX_REMEMBERED_ASSOCIATIONS = 256;

function requestKey(callingAeTitle: string, transactionUid: string): string {
  return `${callingAeTitle}\u0000${transactionUid}`;
}

export interface StorageCommitmentFlow {
  /** Empty when dicom.storageCommitment.enabled is false. */
  readonly dimseServices: readonly DimseService[];
  readonly destinations: readonly DestinationOptions[];
  readonly service: Service;
  /** Tell the tracker an instance was confirmed by the PACS. */
  instanceForwarded(): void;
}

export function storageCommitmentFlow(ctx: FlowContext, spool: Spool, policies: BoxPeerPolicies): StorageCommitmentFlow {
  const { config, store, audit, box, logger } = ctx;
  const sc = config.dicom.storageCommitment;
  const log = logger.child({ component: 'commitment' });
  const ledger: InstanceLedger = {
    async states(uids) {
      // An instance the PACS refused for good is a dead letter of `pacs`: it will not be committed.
      const refused = new Set(
        store.outbox
          .deadLetters(PACS_DESTINATION)
          .filter((d) => d.entry.kind === DICOM_INSTANCE_KIND)
          .map((d) => (d.entry.payload as SpooledInstanceRef).key),
      );
      const found = await spool.states(uids);
      return found.map((s): InstanceState => {
        if (s.state === 'unknown') return s;
        if (s.state === 'spooled') return { state: 'spooled', sopClassUid: s.sopClassUid, refused: refused.has(s.key) };
        if (s.state === 'committed') return { state: 'committed', sopClassUid: s.sopClassUid };
        // Waiting for the PACS's own commitment is still "on its way"; its refusal is the PACS's refusal.
        return { state: 'spooled', sopClassUid: s.sopClassUid, refused: s.state === 'pacs-failed' };
      });
    },
    prune: (before) => spool.pruneForwarded(before),
  };
  const tracker = new StorageCommitmentTracker({
    repository: store.commitments,
    ledger,
    reportDestination: COMMITMENT_DESTINATION,
    deadlineMs: sc.deadlineMs,
    retentionMs: sc.retentionMs,
    audit,
    box,
    logger: log,
  });
  const tls = clientTls(ctx.tls);
  const route = (p: CommitmentReportPayload): CommitmentReportTarget | undefined => {
    // The peer config in force now (a reload may have added the port since the request came).
    const rule = policies.modalities.find((m) => m.name === p.modality);
    const to = rule?.storageCommitment;
    if (rule === undefined || to === undefined) return undefined;
    const useTls = to.tls ?? rule.transport === 'tls';
    return {
      host: to.host ?? p.remoteAddress,
      port: to.port,
      calledAeTitle: to.aeTitle ?? rule.aeTitle,
      callingAeTitle: config.dicom.aeTitle,
      ...(useTls ? { tls } : {}),
      connectTimeoutMs: sc.connectTimeoutMs,
      responseTimeoutMs: sc.responseTimeoutMs,
    };
  };
  // The association each pending request came on, while it may still be open (the report goes there first).
  const askedOn = new Map<string, AssociationContext>();
  const remember = (key: string, association: AssociationContext): void => {
    for (const [k, a] of askedOn) if (a.isOpen?.() !== true) askedOn.delete(k);
    if (askedOn.size >= MAX_REMEMBERED_ASSOCIATIONS) askedOn.delete(askedOn.keys().next().value!);
    askedOn.set(key, association);
  };
  const sender = new CommitmentReportSender({
    destination: COMMITMENT_DESTINATION,
    route,
    openAssociation: (p) => askedOn.get(requestKey(p.callingAeTitle, p.report.transactionUid)),
    logger: log,
    onSent: (p, via) => {
      askedOn.delete(requestKey(p.callingAeTitle, p.report.transactionUid));
      const same = !('host' in via);
      const modality: AuditParticipant = same
        ? { kind: 'dicom', id: via.callingAeTitle, address: via.remoteAddress, requestor: false }
        : { kind: 'dicom', id: via.calledAeTitle, address: via.host, requestor: false };
      audit.record(
        auditEvent('storage-commitment.report-sent', {
          at: Date.now(),
          participants: [{ ...box, requestor: true }, modality],
          ...(same ? { controlId: via.associationId } : {}),
          detail: `Transaction UID ${p.report.transactionUid}; event type ${p.report.eventTypeId}; ${p.report.success.length} committed, ${p.report.failed.length} failed; ${same ? 'on the association it was requested on' : `new association to ${via.host}:${via.port}`}`,
        }),
      );
    },
  });
  const services: DimseService[] = sc.enabled
    ? [
        storageCommitmentService({
          request: async (transactionUid, items, association) => {
            const peer = association.peer as Partial<ModalityPeer>;
            // Only modalities ask the box to commit (the PACS's association is for its reports).
            if (peer.rule === undefined)
              throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'storage commitment asked by a peer that is not a modality');
            remember(requestKey(association.callingAeTitle, transactionUid), association);
            await tracker.request(items, transactionUid, {
              callingAeTitle: association.callingAeTitle,
              modality: peer.rule.name,
              remoteAddress: association.remoteAddress,
              associationId: association.associationId,
            });
          },
          refused: (status, why, association) => {
            audit.record(
              auditEvent('storage-commitment.refused', {
                at: Date.now(),
                participants: [{ kind: 'dicom', id: association.callingAeTitle, address: association.remoteAddress, requestor: true }, box],
                controlId: association.associationId,
                detail: `status 0x${status.toString(16).padStart(4, '0')}: ${why}`,
              }),
            );
          },
        }),
      ]
    : [];
  return {
    dimseServices: services,
    destinations: [
      {
        sender,
        // One report per association; reports to different modalities go out side by side.
        batchSize: 1,
        concurrency: 2,
        ...destinationPolicy(config.outbox),
      },
    ],
    service: {
      name: 'storage-commitment',
      start: () => tracker.start(),
      stop: () => tracker.stop(),
      health: () => ({ status: 'ok', detail: `${tracker.pendingCount} request(s) waiting` }),
    },
    instanceForwarded: () => tracker.poke(),
  };
}
