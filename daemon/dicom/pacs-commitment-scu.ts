// The box as Storage Commitment SCU toward the PACS (PS3.4 J.3.2): an N-ACTION "Request Storage
// Commitment" for instances the PACS confirmed, on its own association (default roles: the box is SCU).
// The PACS answers with N-ACTION-RSP; its N-EVENT-REPORT comes later on an association it opens to the
// box (pacs-commitment-result-service.ts).
import type { Buffer } from 'node:buffer';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import {
  RequestStorageCommitmentActionType,
  StorageCommitmentPushModelSopClass,
  StorageCommitmentPushModelSopInstance,
  type ReferencedSop,
} from '../core/storage-commitment.ts';
import { encodeDataSet } from './dataset-codec.ts';
import { actionInformation } from './storage-commitment-datasets.ts';
import { CommandDataSetTypePresent, CommandField } from './dimse-command.ts';
import { ScuConnection, type ScuConnectionOptions } from './scu-connection.ts';
import { TransferSyntax } from './transfer-syntax.ts';

const CONTEXT_ID = 1;
const UNLIMITED_SEND_PDU = 256 * 1024;

/** Ask the PACS to commit `items` under `transactionUid`; resolves with the N-ACTION-RSP status. */
export async function requestPacsCommitment(
  options: ScuConnectionOptions,
  transactionUid: string,
  items: readonly ReferencedSop[],
  signal: AbortSignal,
): Promise<number> {
  const conn = await ScuConnection.open(options, signal);
  try {
    const assoc = await conn.associate([
      {
        id: CONTEXT_ID,
        abstractSyntax: StorageCommitmentPushModelSopClass,
        transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
      },
    ]);
    const ts = assoc.accepted.get(CONTEXT_ID);
    if (ts === undefined) {
      throw new EdgeError('EDGE_STORE_SCU_REJECTED', 'the PACS does not accept the Storage Commitment Push Model SOP class');
    }
    let data: Buffer;
    try {
      data = encodeDataSet(actionInformation(transactionUid, items), ts);
    } catch (err) {
      throw new EdgeError('EDGE_DICOM_DATASET_INVALID', 'the commitment request cannot be encoded', { cause: err });
    }
    const rsp = await conn.request(
      CONTEXT_ID,
      {
        CommandField: CommandField.NActionRq,
        RequestedSOPClassUID: StorageCommitmentPushModelSopClass,
        RequestedSOPInstanceUID: StorageCommitmentPushModelSopInstance,
        ActionTypeID: RequestStorageCommitmentActionType,
        CommandDataSetType: CommandDataSetTypePresent,
      },
      data,
      assoc.maxPduLength === 0 ? UNLIMITED_SEND_PDU : assoc.maxPduLength,
    );
    await conn.release().catch(() => undefined);
    return rsp.Status ?? 0xffff;
  } catch (err) {
    throw isEdgeError(err) ? err : new EdgeError('EDGE_STORE_SCU_FAILED', 'storage commitment request to the PACS failed', { cause: err });
  } finally {
    conn.close();
  }
}
