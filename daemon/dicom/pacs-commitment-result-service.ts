// The PACS's storage commitment report to the box (PS3.4 J.3.3): N-EVENT-REPORT on an association the
// PACS opened as SCP of the Storage Commitment Push Model SOP class. The handler commits what the report
// says before the N-EVENT-REPORT-RSP (success) goes back; a malformed report gets 0x0110 and changes nothing.
import { itemsOf, textOf } from '../core/dataset.ts';
import { Tag } from '../core/data-dictionary.ts';
import { isEdgeError } from '../core/errors.ts';
import { CommitmentEventType, StorageCommitmentPushModelSopClass } from '../core/storage-commitment.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { AssociationContext, DimseService } from './dimse-service.ts';

export interface PacsCommitmentResult {
  readonly transactionUid: string;
  readonly committed: readonly string[];
  readonly failed: ReadonlyArray<{ readonly sopInstanceUid: string; readonly failureReason: number }>;
}

export interface PacsCommitmentResultHandler {
  /** Whether this association is the PACS's (deny by default: modalities never report to the box). */
  isPacs(association: AssociationContext): boolean;
  /** Commit the result; resolve once durable. Throwing means 0x0110. */
  result(result: PacsCommitmentResult, association: AssociationContext): Promise<void>;
}

export function pacsCommitmentResultService(handler: PacsCommitmentResultHandler): DimseService {
  return {
    commandField: CommandField.NEventReportRq,
    sopClassUid: StorageCommitmentPushModelSopClass,
    async handle(request, exchange) {
      const command = request.command;
      const respond = (status: number, comment?: string): Promise<void> =>
        exchange.respond({
          CommandField: CommandField.NEventReportRsp,
          MessageIDBeingRespondedTo: command.MessageID ?? 0,
          AffectedSOPClassUID: StorageCommitmentPushModelSopClass,
          ...(command.AffectedSOPInstanceUID === undefined ? {} : { AffectedSOPInstanceUID: command.AffectedSOPInstanceUID }),
          ...(command.EventTypeID === undefined ? {} : { EventTypeID: command.EventTypeID }),
          Status: status,
          ...(comment === undefined ? {} : { ErrorComment: comment.slice(0, 64) }),
        });
      if (!handler.isPacs(exchange.association)) {
        await respond(Status.RefusedNotAuthorized, 'only the PACS reports storage commitment to the box');
        return;
      }
      if (command.EventTypeID !== CommitmentEventType.Success && command.EventTypeID !== CommitmentEventType.Failures) {
        await respond(Status.NoSuchEventType, 'Event Type ID must be 1 or 2');
        return;
      }
      let result: PacsCommitmentResult;
      try {
        if (request.dataSet === undefined) throw new Error('no event information');
        const ds = decodeDataSet(request.dataSet, request.transferSyntax);
        const uidOf = (items: ReturnType<typeof itemsOf>): string[] =>
          (items ?? []).map((i) => textOf(i, Tag.ReferencedSOPInstanceUID)?.trim() ?? '').filter((u) => u !== '');
        result = {
          transactionUid: textOf(ds, Tag.TransactionUID)?.trim() ?? '',
          committed: uidOf(itemsOf(ds, Tag.ReferencedSOPSequence)),
          failed: (itemsOf(ds, Tag.FailedSOPSequence) ?? []).flatMap((i) => {
            const sopInstanceUid = textOf(i, Tag.ReferencedSOPInstanceUID)?.trim() ?? '';
            return sopInstanceUid === '' ? [] : [{ sopInstanceUid, failureReason: Number(textOf(i, Tag.FailureReason) ?? 0x0110) }];
          }),
        };
      } catch {
        await respond(Status.ProcessingFailure, 'event information cannot be decoded');
        return;
      }
      try {
        await handler.result(result, exchange.association);
      } catch (err) {
        const code = isEdgeError(err) ? err.code : 'unexpected';
        exchange.logger.error('dicom.pacs-commitment.failed', { code });
        if (!exchange.signal.aborted) await respond(Status.ProcessingFailure, code);
        return;
      }
      await respond(Status.Success);
    },
  };
}
