// Storage SOP Classes, SCP role (PS3.4 Annex B): each C-STORE data set streams fragment by fragment into
// the encrypted spool (never whole in memory), its structure is checked on the way, and success is
// answered only once the spool committed it durably. A full spool or file system answers 0xA700.
import { Tag } from '../core/data-dictionary.ts';
import { isEdgeError } from '../core/errors.ts';
import type { InstanceSpool, SpoolCommitResult, SpooledInstanceMeta, SpoolWriter } from '../core/instance-spool.ts';
import type { Logger } from '../core/log.ts';
import { DataSetWalker } from './dataset-walker.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { AssociationContext, DataSetSink, DimseExchange, DimseRequest, DimseService, StreamedRequestStart } from './dimse-service.ts';

const ERROR_COMMENT_MAX = 64;

/** What happened to one C-STORE, for the owner's audit trail (identifiers only). */
export type StorageEvent =
  | {
      readonly type: 'instance-stored';
      readonly association: AssociationContext;
      readonly sopClassUid: string;
      readonly sopInstanceUid: string;
      readonly studyInstanceUid: string | undefined;
      /** From the data set's header, for the audit trail only (never logged). */
      readonly accessionNumber: string | undefined;
      readonly patientId: string | undefined;
      readonly issuerOfPatientId: string | undefined;
      readonly bytes: number;
      readonly replaced: boolean;
      readonly messageId: number;
    }
  | {
      readonly type: 'instance-refused';
      readonly association: AssociationContext;
      readonly sopClassUid: string;
      readonly status: number;
      readonly why: string;
      readonly messageId: number;
    };

export interface StorageServiceOptions {
  /** Storage SOP Class UIDs served (one service table entry each). */
  readonly sopClassUids: Iterable<string>;
  readonly spool: InstanceSpool;
  readonly onEvent?: (event: StorageEvent) => void;
  readonly logger: Logger;
}

/** The sink the association fills; handle() gets it back and finishes the store. */
class StoreSink implements DataSetSink {
  readonly walker: DataSetWalker;
  readonly writer: SpoolWriter | undefined;
  /** Why the instance is refused before its data arrived (spool above high-water, no space). */
  readonly refusal: string | undefined;
  #aborted = false;

  constructor(transferSyntax: string, writer: SpoolWriter | undefined, refusal: string | undefined) {
    this.walker = new DataSetWalker(transferSyntax, [
      Tag.SOPClassUID,
      Tag.SOPInstanceUID,
      Tag.StudyInstanceUID,
      Tag.AccessionNumber,
      Tag.PatientID,
      Tag.IssuerOfPatientID,
    ]);
    this.writer = writer;
    this.refusal = refusal;
  }

  write(fragment: Buffer): Promise<void> | undefined {
    if (this.#aborted) return undefined;
    this.walker.push(fragment);
    return this.writer?.write(fragment);
  }

  end(): void {}

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    void this.writer?.discard();
  }
}

export function storageServices(options: StorageServiceOptions): DimseService[] {
  const services: DimseService[] = [];
  for (const sopClassUid of new Set(options.sopClassUids)) {
    services.push({
      commandField: CommandField.CStoreRq,
      sopClassUid,
      openDataSetSink(start: StreamedRequestStart): DataSetSink {
        const admission = options.spool.admission();
        if (!admission.accept) return new StoreSink(start.transferSyntax, undefined, admission.why);
        return new StoreSink(start.transferSyntax, options.spool.begin(), undefined);
      },
      handle: (request, exchange) => handleStore(options, request, exchange),
    });
  }
  return services;
}

async function handleStore(options: StorageServiceOptions, request: DimseRequest, exchange: DimseExchange): Promise<void> {
  const command = request.command;
  const sopClassUid = command.AffectedSOPClassUID ?? request.abstractSyntax;
  const sopInstanceUid = command.AffectedSOPInstanceUID;
  const messageId = command.MessageID ?? 0;
  const respond = (status: number, errorComment?: string): Promise<void> =>
    exchange.respond({
      CommandField: CommandField.CStoreRsp,
      MessageIDBeingRespondedTo: messageId,
      AffectedSOPClassUID: sopClassUid,
      ...(sopInstanceUid === undefined ? {} : { AffectedSOPInstanceUID: sopInstanceUid }),
      Status: status,
      ...(errorComment === undefined ? {} : { ErrorComment: errorComment.slice(0, ERROR_COMMENT_MAX) }),
    });
  const refuse = async (status: number, why: string, comment: string): Promise<void> => {
    exchange.logger.warn('dicom.cstore.refused', { status: `0x${status.toString(16).padStart(4, '0')}`, why });
    options.onEvent?.({ type: 'instance-refused', association: exchange.association, sopClassUid, status, why, messageId });
    await respond(status, comment);
  };

  const sink = request.sink;
  if (!(sink instanceof StoreSink)) {
    await refuse(Status.CannotUnderstand, 'no data set', 'no data set');
    return;
  }
  if (sink.refusal !== undefined || sink.writer === undefined) {
    await refuse(Status.OutOfResources, sink.refusal ?? 'spool unavailable', 'out of resources: spool full');
    return;
  }
  const writer = sink.writer;
  const shape = sink.walker.finish();
  if (!shape.complete) {
    await writer.discard();
    await refuse(Status.CannotUnderstand, shape.why, shape.why);
    return;
  }
  const inDataSet = sink.walker.values;
  if (sopInstanceUid === undefined || sopInstanceUid === '') {
    await writer.discard();
    await refuse(Status.CannotUnderstand, 'no Affected SOP Instance UID', 'no Affected SOP Instance UID');
    return;
  }
  const dsClass = inDataSet.get(Tag.SOPClassUID);
  const dsInstance = inDataSet.get(Tag.SOPInstanceUID);
  if ((dsClass !== undefined && dsClass !== sopClassUid) || (dsInstance !== undefined && dsInstance !== sopInstanceUid)) {
    await writer.discard();
    await refuse(
      Status.DataSetDoesNotMatchSOPClass,
      'SOP Class/Instance UID in the data set differs from the command',
      'data set does not match the command',
    );
    return;
  }
  let result: SpoolCommitResult;
  try {
    result = await writer.commit({
      sopClassUid,
      sopInstanceUid,
      transferSyntaxUid: request.transferSyntax,
      callingAeTitle: exchange.association.callingAeTitle,
      ...headerIdentifiers(inDataSet),
    });
  } catch (err) {
    const code = isEdgeError(err) ? err.code : 'unexpected';
    if (code === 'EDGE_SPOOL_FULL' || code === 'EDGE_SPOOL_OBJECT_TOO_LARGE' || code === 'EDGE_SPOOL_HIGH_WATER') {
      await refuse(
        Status.OutOfResources,
        code,
        code === 'EDGE_SPOOL_OBJECT_TOO_LARGE' ? 'out of resources: object too large' : 'out of resources: spool full',
      );
    } else {
      exchange.logger.error('dicom.cstore.commit-failed', { code });
      await refuse(Status.ProcessingFailure, code, 'processing failure');
    }
    return;
  }
  options.onEvent?.({
    type: 'instance-stored',
    association: exchange.association,
    sopClassUid,
    sopInstanceUid,
    studyInstanceUid: inDataSet.get(Tag.StudyInstanceUID),
    accessionNumber: inDataSet.get(Tag.AccessionNumber),
    patientId: inDataSet.get(Tag.PatientID),
    issuerOfPatientId: inDataSet.get(Tag.IssuerOfPatientID),
    bytes: result.instance.bytes,
    replaced: result.replaced,
    messageId,
  });
  exchange.logger.debug('dicom.cstore.stored', { bytes: result.instance.bytes, replaced: result.replaced, spoolKey: result.instance.key });
  // The association may be gone (aborted after the last fragment): the instance is stored either way,
  // and a re-send of the same SOP Instance UID replaces it.
  await respond(Status.Success).catch((err: unknown) => {
    exchange.logger.info('dicom.cstore.response-not-sent', { code: isEdgeError(err) ? err.code : 'unexpected' });
  });
}

/** Identifiers from the header that the forward's audit record names (absent or empty ones left out). */
function headerIdentifiers(
  values: ReadonlyMap<number, string>,
): Pick<SpooledInstanceMeta, 'studyInstanceUid' | 'accessionNumber' | 'patientId' | 'issuerOfPatientId'> {
  const pick = (tag: number): string | undefined => {
    const v = values.get(tag);
    return v === undefined || v === '' ? undefined : v;
  };
  const studyInstanceUid = pick(Tag.StudyInstanceUID);
  const accessionNumber = pick(Tag.AccessionNumber);
  const patientId = pick(Tag.PatientID);
  const issuerOfPatientId = pick(Tag.IssuerOfPatientID);
  return {
    ...(studyInstanceUid === undefined ? {} : { studyInstanceUid }),
    ...(accessionNumber === undefined ? {} : { accessionNumber }),
    ...(patientId === undefined ? {} : { patientId }),
    ...(issuerOfPatientId === undefined ? {} : { issuerOfPatientId }),
  };
}
