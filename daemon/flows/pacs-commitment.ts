// The PACS's own storage commitment (`upstream.pacs.storageCommitment`): the box, as commitment SCU,
// asks the PACS to commit the instances it confirmed (one N-ACTION per batch, asked again after
// `storageCommitmentReaskMs` without an answer), and takes the PACS's N-EVENT-REPORT on an association
// the PACS opens to the box's DICOM listener. Only instances the PACS reported committed count as
// committed toward the modalities (flows/storage-commitment.ts).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AuditParticipant } from '../core/audit.ts';
import { auditEvent } from '../core/audit-event-builders.ts';
import { isEdgeError } from '../core/errors.ts';
import type { Service } from '../core/service.ts';
import type { AssociationRequest, DimseService } from '../dicom/index.ts';
import { requestPacsCommitment } from '../dicom/pacs-commitment-scu.ts';
import { pacsCommitmentResultService } from '../dicom/pacs-commitment-result-service.ts';
import type { StoreScuOptions } from '../dicom/store-scu.ts';
import { clientTls } from '../security/tls-material.ts';
import type { Spool } from '../store/spool.ts';
import type { FlowContext } from './flow-context.ts';

/** The association policy's peer value for the PACS reporting storage commitment. */
export const PACS_COMMITMENT_PEER = Object.freeze({ kind: 'pacs-storage-commitment' as const });

/** Instances asked in one N-ACTION. */
const BATCH = 500;
const COALESCE_MS = 500;
const SWEEP_MS = 10_000;

export interface PacsCommitment {
  readonly dimseServices: readonly DimseService[];
  readonly service: Service;
  /** Whether an A-ASSOCIATE-RQ is the PACS coming to report (calling AE and source address, or TLS). */
  admits(rq: Pick<AssociationRequest, 'callingAeTitle' | 'remoteAddress' | 'transport' | 'peerCertificate'>): boolean;
  /** Whether a connection from this address may reach the plain listener's handshake. */
  admitsSource(address: string): boolean;
  /** An instance was confirmed by the PACS: ask for its commitment soon. */
  instanceForwarded(): void;
}

export function pacsCommitmentFlow(ctx: FlowContext, spool: Spool, committed: () => void): PacsCommitment | undefined {
  const { config, audit, box, logger } = ctx;
  const pacs = config.upstream.pacs;
  if (pacs === undefined || pacs.protocol !== 'dimse' || !pacs.storageCommitment) return undefined;
  const log = logger.child({ component: 'pacs-commitment' });
  const pacsParticipant: AuditParticipant = { kind: 'dicom', id: pacs.aeTitle, address: pacs.host, requestor: false };
  const options: StoreScuOptions = {
    host: pacs.host,
    port: pacs.port,
    calledAeTitle: pacs.aeTitle,
    callingAeTitle: config.dicom.aeTitle,
    ...(pacs.tls ? { tls: clientTls(ctx.tls) } : {}),
    connectTimeoutMs: pacs.connectTimeoutMs,
    responseTimeoutMs: pacs.responseTimeoutMs,
    maxPduLength: pacs.maxPduLength,
  };
  const sameAddress = (address: string): boolean => net.isIP(pacs.host) !== 0 && address.replace(/^::ffff:/, '') === pacs.host;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;
  const controller = new AbortController();

  const askOnce = async (): Promise<void> => {
    const now = Date.now();
    const items = await spool.pacsCommitmentCandidates(now - pacs.storageCommitmentReaskMs, BATCH);
    if (items.length === 0) return;
    const transactionUid = `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
    const status = await requestPacsCommitment(options, transactionUid, items, controller.signal);
    if (status !== 0) {
      log.warn('pacs.commitment-refused', { status: `0x${status.toString(16).padStart(4, '0')}`, instances: items.length });
      return;
    }
    await spool.setPacsCommitment(
      items.map((i) => i.sopInstanceUid),
      { pacs: 'requested', transactionUid },
      now,
    );
    log.info('pacs.commitment-requested', { instances: items.length });
    if (items.length === BATCH) again = true;
  };
  const arm = (ms: number): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      running = askOnce()
        .catch((err: unknown) => log.info('pacs.commitment-request-failed', { code: isEdgeError(err) ? err.code : 'unexpected' }))
        .finally(() => {
          running = undefined;
          const soon = again;
          again = false;
          arm(soon ? COALESCE_MS : SWEEP_MS);
        });
    }, ms);
    timer.unref();
  };

  return {
    dimseServices: [
      pacsCommitmentResultService({
        isPacs: (association) => association.peer === PACS_COMMITMENT_PEER,
        result: async (r, association) => {
          const done = await spool.setPacsCommitment(r.committed, { pacs: 'committed' });
          const refused = await spool.setPacsCommitment(
            r.failed.map((f) => f.sopInstanceUid),
            { pacs: 'failed' },
          );
          log.info('pacs.commitment-reported', { committed: r.committed.length, failed: r.failed.length, changed: done + refused });
          const detail = `Transaction UID ${r.transactionUid}; ${r.committed.length} committed, ${r.failed.length} failed`;
          const participants = [{ ...pacsParticipant, address: association.remoteAddress, requestor: true }, box];
          audit.record(
            r.failed.length === 0
              ? auditEvent('pacs.storage-committed', { at: Date.now(), participants, controlId: association.associationId, detail })
              : auditEvent('pacs.storage-commitment-failed', {
                  at: Date.now(),
                  participants,
                  controlId: association.associationId,
                  detail: `${detail}; failure reasons ${[...new Set(r.failed.map((f) => `0x${f.failureReason.toString(16).padStart(4, '0')}`))].join(', ')}`,
                }),
          );
          committed();
        },
      }),
    ],
    service: {
      name: 'pacs-storage-commitment',
      start: async () => {
        stopped = false;
        arm(0);
      },
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        controller.abort();
        await running;
      },
      health: () => ({ status: 'ok' }),
    },
    admits: (rq) =>
      rq.callingAeTitle === pacs.aeTitle && (rq.transport === 'tls' ? rq.peerCertificate !== undefined : sameAddress(rq.remoteAddress)),
    admitsSource: sameAddress,
    instanceForwarded: () => {
      if (running !== undefined) again = true;
      else arm(COALESCE_MS);
    },
  };
}
