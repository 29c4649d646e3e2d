// The Storage Commitment report (PS3.4 J.3.3): N-EVENT-REPORT from the box, as commitment SCP, to the
// modality: on the association it asked on while that is still open, else on a new association the box
// opens to it. The box proposes the SCP role for the SOP class
// (SCP/SCU Role Selection, PS3.7 D.3.3.4); a modality that answers the role selection refusing it gets
// nothing sent. Every phase has a timeout (connect, association, response).
import type { Buffer } from 'node:buffer';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import {
  type CommitmentReport,
  StorageCommitmentPushModelSopClass,
  StorageCommitmentPushModelSopInstance,
} from '../core/storage-commitment.ts';
import { encodeDataSet } from './dataset-codec.ts';
import { eventInformation } from './storage-commitment-datasets.ts';
import { type Command, CommandDataSetTypePresent, CommandField } from './dimse-command.ts';
import type { AssociationContext } from './dimse-service.ts';
import { ScuConnection, type ScuConnectionOptions } from './scu-connection.ts';
import { TransferSyntax } from './transfer-syntax.ts';

/** The modality's commitment SCU: address, AE titles, TLS and timeouts as for any requestor association. */
export type CommitmentReportTarget = Pick<
  ScuConnectionOptions,
  'host' | 'port' | 'calledAeTitle' | 'callingAeTitle' | 'tls' | 'connectTimeoutMs' | 'responseTimeoutMs'
>;

export type CommitmentReportOutcome = { readonly status: number; readonly errorComment?: string };

const CONTEXT_ID = 1;
const UNLIMITED_SEND_PDU = 256 * 1024;

/** Send one report; resolves with the modality's N-EVENT-REPORT-RSP status, throws EdgeError otherwise. */
export async function sendCommitmentReport(
  target: CommitmentReportTarget,
  report: CommitmentReport,
  signal: AbortSignal,
): Promise<CommitmentReportOutcome> {
  const peerLabel = `the modality ${target.calledAeTitle}`;
  const conn = await ScuConnection.open({ ...target, peer: peerLabel }, signal).catch((err: unknown) => {
    throw failed(err, 'cannot connect');
  });
  try {
    const assoc = await conn
      .associate(
        [
          {
            id: CONTEXT_ID,
            abstractSyntax: StorageCommitmentPushModelSopClass,
            transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
          },
        ],
        [{ sopClassUid: StorageCommitmentPushModelSopClass, scu: false, scp: true }],
      )
      .catch((err: unknown) => {
        throw failed(err, 'association failed');
      });
    const ts = assoc.accepted.get(CONTEXT_ID);
    if (ts === undefined) throw failed(undefined, `${peerLabel} did not accept the Storage Commitment Push Model SOP class`);
    const role = assoc.roleSelections.get(StorageCommitmentPushModelSopClass);
    if (role !== undefined && !role.scp) throw failed(undefined, `${peerLabel} refused the box the SCP role for storage commitment`);
    let data: Buffer;
    try {
      data = encodeDataSet(eventInformation(report), ts);
    } catch (err) {
      throw new EdgeError('EDGE_DICOM_DATASET_INVALID', 'the commitment report cannot be encoded', { cause: err });
    }
    const peerMax = assoc.maxPduLength === 0 ? UNLIMITED_SEND_PDU : assoc.maxPduLength;
    const rsp = await conn
      .request(
        CONTEXT_ID,
        {
          CommandField: CommandField.NEventReportRq,
          AffectedSOPClassUID: StorageCommitmentPushModelSopClass,
          AffectedSOPInstanceUID: StorageCommitmentPushModelSopInstance,
          EventTypeID: report.eventTypeId,
          CommandDataSetType: CommandDataSetTypePresent,
        },
        data,
        peerMax,
      )
      .catch((err: unknown) => {
        throw failed(err, 'no answer to N-EVENT-REPORT');
      });
    await conn.release().catch(() => undefined);
    return { status: rsp.Status ?? 0xffff, ...(rsp.ErrorComment === undefined ? {} : { errorComment: rsp.ErrorComment }) };
  } finally {
    conn.close();
  }
}

/** Send one report on the open association the request came on (the box is its SCP in the default roles). */
export async function sendReportOnAssociation(
  invoke: NonNullable<AssociationContext['invoke']>,
  report: CommitmentReport,
): Promise<CommitmentReportOutcome> {
  let rsp: Command;
  try {
    rsp = await invoke(
      StorageCommitmentPushModelSopClass,
      {
        CommandField: CommandField.NEventReportRq,
        AffectedSOPClassUID: StorageCommitmentPushModelSopClass,
        AffectedSOPInstanceUID: StorageCommitmentPushModelSopInstance,
        EventTypeID: report.eventTypeId,
      },
      eventInformation(report),
    );
  } catch (err) {
    throw failed(err, 'no answer to N-EVENT-REPORT on the open association');
  }
  return { status: rsp.Status ?? 0xffff, ...(rsp.ErrorComment === undefined ? {} : { errorComment: rsp.ErrorComment }) };
}

function failed(err: unknown, what: string): EdgeError {
  if (isEdgeError(err) && err.code === 'EDGE_SHUTDOWN') return err;
  const message = isEdgeError(err) ? err.message : err instanceof Error ? err.message : what;
  return new EdgeError('EDGE_COMMITMENT_REPORT_FAILED', message === what ? what : `${what}: ${message}`, {
    ...(err === undefined ? {} : { cause: err }),
  });
}
