// Modality Worklist Information Model - FIND (PS3.4 K.4.1.3.1): one Pending response per match, then
// Success; Cancel when the SCU sends C-CANCEL; UnableToProcess when the handler fails.
// A match that cannot be encoded in the negotiated transfer syntax (a value too long for its Explicit VR
// length field) is skipped and reported: one bad item must never cost the modality the rest of its answer.
import type { DataSet } from '../core/dataset.ts';
import { isEdgeError } from '../core/errors.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { AssociationContext, DimseExchange, DimseRequest, DimseService } from './dimse-service.ts';
import { SopClass } from './dimse-service.ts';

export interface WorklistFindContext {
  readonly association: AssociationContext;
  /** Aborted when the SCU cancels or the association ends; the iterator is also closed (return()). */
  readonly signal: AbortSignal;
  /** Character sets in the identifier the codec could not honour (text was read as latin1). */
  readonly unsupportedCharsets: readonly string[];
  /** The identifier as the SCU sent it, for the audit trail (PS3.15 A.5.3.12 includes the query). */
  readonly query: { readonly dataSet: Buffer; readonly transferSyntaxUid: string };
}

/** Yields the result data sets for a worklist query identifier. */
export type WorklistFindHandler = (identifier: DataSet, ctx: WorklistFindContext) => AsyncIterable<DataSet>;

export interface WorklistFindOptions {
  /** A result the codec refused (`code`) was left out of the answer; the owner names its order. */
  readonly onItemSkipped?: (
    item: DataSet,
    code: string,
    ctx: { readonly association: AssociationContext; readonly transferSyntaxUid: string },
  ) => void;
}

const ERROR_COMMENT_MAX = 64;

export function worklistFindService(handler: WorklistFindHandler, options: WorklistFindOptions = {}): DimseService {
  return {
    commandField: CommandField.CFindRq,
    sopClassUid: SopClass.ModalityWorklistInformationModelFind,
    handle: (request, exchange) => handleFind(handler, options, request, exchange),
  };
}

async function handleFind(
  handler: WorklistFindHandler,
  options: WorklistFindOptions,
  request: DimseRequest,
  exchange: DimseExchange,
): Promise<void> {
  const response = (status: number, errorComment?: string) => ({
    CommandField: CommandField.CFindRsp,
    MessageIDBeingRespondedTo: request.command.MessageID ?? 0,
    AffectedSOPClassUID: SopClass.ModalityWorklistInformationModelFind,
    Status: status,
    ...(errorComment === undefined ? {} : { ErrorComment: errorComment.slice(0, ERROR_COMMENT_MAX) }),
  });
  const unsupportedCharsets: string[] = [];
  let identifier: DataSet;
  let query: WorklistFindContext['query'];
  try {
    if (request.dataSet === undefined) throw new Error('no identifier');
    query = { dataSet: request.dataSet, transferSyntaxUid: request.transferSyntax };
    identifier = decodeDataSet(request.dataSet, request.transferSyntax, {
      onUnsupportedCharset: (term) => unsupportedCharsets.push(term),
    });
  } catch (err) {
    exchange.logger.warn('dicom.cfind.identifier-invalid', { code: isEdgeError(err) ? err.code : 'missing' });
    await exchange.respond(response(Status.IdentifierDoesNotMatchSOPClass, 'identifier cannot be decoded'));
    return;
  }
  if (unsupportedCharsets.length > 0) {
    exchange.logger.warn('dicom.cfind.charset-unsupported', { charsets: unsupportedCharsets.join('\\') });
  }

  let iterator: AsyncIterator<DataSet> | undefined;
  let exhausted = false;
  let matches = 0;
  let skipped = 0;
  try {
    iterator = handler(identifier, { association: exchange.association, signal: exchange.signal, unsupportedCharsets, query })[
      Symbol.asyncIterator
    ]();
    while (!exchange.signal.aborted) {
      const next = await iterator.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      if (exchange.signal.aborted) break;
      try {
        await exchange.respond(response(Status.Pending), next.value);
      } catch (err) {
        // respond() refuses an unencodable data set before it sends anything, so the answer can go on.
        if (!isEdgeError(err, 'EDGE_DICOM_DATASET_INVALID')) throw err;
        skipped++;
        exchange.logger.warn('dicom.cfind.item-skipped', { code: err.code, matches });
        options.onItemSkipped?.(next.value, err.code, { association: exchange.association, transferSyntaxUid: request.transferSyntax });
        continue;
      }
      matches++;
    }
  } catch (err) {
    await closeIterator(iterator, exhausted, exchange);
    if (exchange.signal.aborted && !exchange.cancelled) return; // association gone; nobody to answer
    const code = isEdgeError(err) ? err.code : 'worklist query failed';
    // A key value its VR does not allow is the modality's fault (PS3.4 C.4.1.1.4: A900), not ours.
    const invalidQuery = isEdgeError(err, 'EDGE_WORKLIST_QUERY_INVALID');
    if (invalidQuery) exchange.logger.warn('dicom.cfind.query-invalid', { code, matches });
    else exchange.logger.error('dicom.cfind.failed', { code, matches });
    await exchange.respond(response(invalidQuery ? Status.IdentifierDoesNotMatchSOPClass : Status.UnableToProcess, code));
    return;
  }
  await closeIterator(iterator, exhausted, exchange);
  if (exchange.cancelled) {
    exchange.logger.info('dicom.cfind.cancelled', { matches });
    await exchange.respond(response(Status.Cancel));
  } else if (!exchange.signal.aborted) {
    exchange.logger.info('dicom.cfind.done', { matches, ...(skipped === 0 ? {} : { skipped }) });
    await exchange.respond(response(Status.Success));
  }
}

async function closeIterator(iterator: AsyncIterator<DataSet> | undefined, exhausted: boolean, exchange: DimseExchange): Promise<void> {
  if (iterator === undefined || exhausted || iterator.return === undefined) return;
  try {
    await iterator.return();
  } catch (err) {
    exchange.logger.warn('dicom.cfind.iterator-close-failed', { code: isEdgeError(err) ? err.code : 'unknown' });
  }
}
