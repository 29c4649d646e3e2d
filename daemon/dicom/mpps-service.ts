// Modality Performed Procedure Step SOP Class (PS3.4 F.7), SCP side: N-CREATE and N-SET on
// 1.2.840.10008.3.1.2.3.3. The handler (wired in flows/procedure-status.ts to the core's MPPS intake) answers only after
// the step is durably committed; this file maps its refusals to the standard statuses:
//   duplicate SOP instance 0x0111, no such SOP instance 0x0112, invalid attribute value 0x0106,
//   missing attribute 0x0120, no such attribute (not settable by N-SET) 0x0105, and N-SET after
//   COMPLETED/DISCONTINUED 0x0110 with Error ID 0xC310 ("Performed Procedure Step Object may no longer be
//   updated", PS3.4 F.7.2.2.4) and an Error Comment. Anything else that fails → 0x0110.
import { randomBytes } from 'node:crypto';
import type { DataSet } from '../core/dataset.ts';
import { isEdgeError } from '../core/errors.ts';
import type { MppsRefusal } from '../core/mpps.ts';
import { MppsRefusalReason, MppsSopClass, isMppsRefusal } from '../core/mpps.ts';
import { decodeDataSet } from './dataset-codec.ts';
import { CommandField, Status } from './dimse-command.ts';
import type { AssociationContext, DimseExchange, DimseRequest, DimseService, ResponseCommand } from './dimse-service.ts';

const NoSuchAttribute = 0x0105;
/** PS3.4 F.7.2.2.4: Error ID for "Performed Procedure Step Object may no longer be updated". */
const ErrorIdMayNoLongerBeUpdated = 0xc310;
const ERROR_COMMENT_MAX = 64;

export interface MppsRequestContext {
  readonly association: AssociationContext;
}

/** The box's side: commit, then resolve. A refusal is returned, not thrown; throwing means 0x0110. */
export interface MppsHandler {
  nCreate(sopInstanceUid: string, attributes: DataSet, ctx: MppsRequestContext): Promise<'ok' | MppsRefusal>;
  nSet(sopInstanceUid: string, modifications: DataSet, ctx: MppsRequestContext): Promise<'ok' | MppsRefusal>;
}

export function mppsServices(handler: MppsHandler): DimseService[] {
  return [
    { commandField: CommandField.NCreateRq, sopClassUid: MppsSopClass, handle: (rq, ex) => handle('N-CREATE', handler, rq, ex) },
    { commandField: CommandField.NSetRq, sopClassUid: MppsSopClass, handle: (rq, ex) => handle('N-SET', handler, rq, ex) },
  ];
}

async function handle(op: 'N-CREATE' | 'N-SET', handler: MppsHandler, request: DimseRequest, exchange: DimseExchange): Promise<void> {
  const create = op === 'N-CREATE';
  const given = create ? request.command.AffectedSOPInstanceUID : request.command.RequestedSOPInstanceUID;
  // PS3.4 F.7.2.1.1 has the SCU name the instance; an SCP may assign one when it does not.
  const sopInstanceUid = given?.trim() || (create ? generateUid() : '');
  const respond = (status: number, extra: Partial<ResponseCommand> = {}): Promise<void> =>
    exchange.respond({
      CommandField: create ? CommandField.NCreateRsp : CommandField.NSetRsp,
      MessageIDBeingRespondedTo: request.command.MessageID ?? 0,
      AffectedSOPClassUID: MppsSopClass,
      ...(sopInstanceUid === '' ? {} : { AffectedSOPInstanceUID: sopInstanceUid }),
      Status: status,
      ...extra,
    });
  if (sopInstanceUid === '') {
    await respond(Status.NoSuchSOPInstance, { ErrorComment: 'Requested SOP Instance UID missing' });
    return;
  }
  let ds: DataSet;
  try {
    if (request.dataSet === undefined) throw new Error('no attribute list');
    ds = decodeDataSet(request.dataSet, request.transferSyntax);
  } catch (err) {
    exchange.logger.warn('dicom.mpps.dataset-invalid', { op, code: isEdgeError(err) ? err.code : 'missing' });
    await respond(Status.ProcessingFailure, { ErrorComment: 'attribute list cannot be decoded' });
    return;
  }
  let outcome: 'ok' | MppsRefusal;
  try {
    outcome = create
      ? await handler.nCreate(sopInstanceUid, ds, { association: exchange.association })
      : await handler.nSet(sopInstanceUid, ds, { association: exchange.association });
  } catch (err) {
    const code = isEdgeError(err) ? err.code : 'unexpected';
    exchange.logger.error('dicom.mpps.failed', { op, code });
    if (exchange.signal.aborted) return;
    await respond(Status.ProcessingFailure, { ErrorComment: code.slice(0, ERROR_COMMENT_MAX) });
    return;
  }
  if (!isMppsRefusal(outcome)) {
    // N-CREATE-RSP / N-SET-RSP may carry the attributes; the box returns none (allowed: PS3.4 F.7.2.1.2).
    await respond(Status.Success);
    return;
  }
  await respond(...refusalStatus(outcome));
}

export function refusalStatus(r: MppsRefusal): [number, Partial<ResponseCommand>] {
  const comment = { ErrorComment: r.comment.slice(0, ERROR_COMMENT_MAX) };
  const attr = r.tag === undefined ? {} : { AttributeIdentifierList: tagAt(r.tag) };
  switch (r.refused) {
    case MppsRefusalReason.Duplicate:
      return [Status.DuplicateSOPInstance, comment];
    case MppsRefusalReason.NoSuchInstance:
      return [Status.NoSuchSOPInstance, comment];
    case MppsRefusalReason.FinalState:
      return [Status.ProcessingFailure, { ...comment, ErrorID: ErrorIdMayNoLongerBeUpdated }];
    case MppsRefusalReason.InvalidValue:
      return [Status.InvalidAttributeValue, { ...comment, ...attr }];
    case MppsRefusalReason.MissingAttribute:
      return [Status.MissingAttribute, { ...comment, ...attr }];
    case MppsRefusalReason.NotSettable:
      return [NoSuchAttribute, { ...comment, ...attr }];
  }
}

/** An AT value as the command codec writes it (hex group/element pairs, `\`-separated). */
function tagAt(tag: number): string {
  return tag.toString(16).padStart(8, '0');
}

function generateUid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}
