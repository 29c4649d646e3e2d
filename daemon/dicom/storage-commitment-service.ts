// Storage Commitment Push Model SOP Class (PS3.4 J.3), SCP side: N-ACTION "Request Storage Commitment"
// on the well-known instance. The handler (flows/storage-commitment.ts, core/storage-commitment-tracker.ts)
// resolves once the request is durably committed; only then is success answered. Refusals map to the
// standard statuses: wrong action type 0x0123, wrong SOP instance 0x0117, missing Transaction UID or
// Referenced SOP Sequence 0x0120, invalid values 0x0106, anything else 0x0110.
import type { DataSet } from '../core/dataset.ts';
import { itemsOf, textOf } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { isEdgeError } from '../core/errors.ts';
import {
  MAX_COMMITMENT_ITEMS,
  RequestStorageCommitmentActionType,
  StorageCommitmentPushModelSopClass,
  StorageCommitmentPushModelSopInstance,
  type ReferencedSop,
} from '../core/storage-commitment.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { AssociationContext, DimseService } from './dimse-service.ts';

const ERROR_COMMENT_MAX = 64;
const UID = /^[0-9]+(\.[0-9]+)*$/;

/** The box's side: commit, then resolve. Throwing means 0x0110 (nothing was committed). */
export interface StorageCommitmentHandler {
  request(transactionUid: string, items: readonly ReferencedSop[], association: AssociationContext): Promise<void>;
  /** A request refused before it was committed (for the audit trail). */
  refused(status: number, why: string, association: AssociationContext): void;
}

type Parsed =
  { readonly transactionUid: string; readonly items: readonly ReferencedSop[] } | { readonly status: number; readonly why: string };

export function storageCommitmentService(handler: StorageCommitmentHandler): DimseService {
  return {
    commandField: CommandField.NActionRq,
    sopClassUid: StorageCommitmentPushModelSopClass,
    async handle(request, exchange) {
      const command = request.command;
      const respond = (status: number, comment?: string): Promise<void> =>
        exchange.respond({
          CommandField: CommandField.NActionRsp,
          MessageIDBeingRespondedTo: command.MessageID ?? 0,
          AffectedSOPClassUID: StorageCommitmentPushModelSopClass,
          AffectedSOPInstanceUID: StorageCommitmentPushModelSopInstance,
          Status: status,
          ...(status === Status.Success ? { ActionTypeID: RequestStorageCommitmentActionType } : {}),
          ...(comment === undefined ? {} : { ErrorComment: comment.slice(0, ERROR_COMMENT_MAX) }),
        });
      const parsed = parseRequest(command.ActionTypeID, command.RequestedSOPInstanceUID, request.dataSet, request.transferSyntax);
      if ('status' in parsed) {
        exchange.logger.info('dicom.commitment.refused', { status: parsed.status, why: parsed.why });
        handler.refused(parsed.status, parsed.why, exchange.association);
        await respond(parsed.status, parsed.why);
        return;
      }
      try {
        await handler.request(parsed.transactionUid, parsed.items, exchange.association);
      } catch (err) {
        const code = isEdgeError(err) ? err.code : 'unexpected';
        exchange.logger.error('dicom.commitment.failed', { code });
        handler.refused(Status.ProcessingFailure, code, exchange.association);
        if (!exchange.signal.aborted) await respond(Status.ProcessingFailure, code);
        return;
      }
      await respond(Status.Success);
    },
  };
}

function parseRequest(
  actionTypeId: number | undefined,
  sopInstanceUid: string | undefined,
  dataSet: Uint8Array | undefined,
  transferSyntax: string,
): Parsed {
  if (actionTypeId !== RequestStorageCommitmentActionType) return { status: Status.NoSuchActionType, why: 'Action Type ID must be 1' };
  if (sopInstanceUid?.replace(/\0+$/, '').trim() !== StorageCommitmentPushModelSopInstance) {
    return { status: Status.InvalidObjectInstance, why: `Requested SOP Instance UID must be ${StorageCommitmentPushModelSopInstance}` };
  }
  let ds: DataSet;
  try {
    if (dataSet === undefined) return { status: Status.MissingAttribute, why: 'no action information' };
    ds = decodeDataSet(dataSet, transferSyntax);
  } catch {
    return { status: Status.ProcessingFailure, why: 'action information cannot be decoded' };
  }
  const transactionUid = textOf(ds, Tag.TransactionUID)?.trim() ?? '';
  if (transactionUid === '') return { status: Status.MissingAttribute, why: 'Transaction UID (0008,1195) missing' };
  if (!isUid(transactionUid)) return { status: Status.InvalidAttributeValue, why: 'Transaction UID (0008,1195) is not a UID' };
  const refs = itemsOf(ds, Tag.ReferencedSOPSequence);
  if (refs === undefined || refs.length === 0)
    return { status: Status.MissingAttribute, why: 'Referenced SOP Sequence (0008,1199) missing or empty' };
  if (refs.length > MAX_COMMITMENT_ITEMS) {
    return { status: Status.ProcessingFailure, why: `more than ${MAX_COMMITMENT_ITEMS} instances in one request` };
  }
  const items: ReferencedSop[] = [];
  for (const item of refs) {
    const sopClassUid = textOf(item, Tag.ReferencedSOPClassUID)?.trim() ?? '';
    const sopInstanceUid = textOf(item, Tag.ReferencedSOPInstanceUID)?.trim() ?? '';
    if (sopClassUid === '' || sopInstanceUid === '') {
      return { status: Status.MissingAttribute, why: 'a Referenced SOP Sequence item lacks its SOP Class or Instance UID' };
    }
    if (!isUid(sopClassUid) || !isUid(sopInstanceUid)) {
      return { status: Status.InvalidAttributeValue, why: 'a Referenced SOP Sequence item has an invalid UID' };
    }
    items.push({ sopClassUid, sopInstanceUid });
  }
  return { transactionUid, items };
}

function isUid(s: string): boolean {
  return s.length <= 64 && UID.test(s);
}
