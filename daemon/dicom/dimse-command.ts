// DIMSE command sets (PS3.7 9.3, 10.3, E.1): always Implicit VR Little Endian, group 0000, led by
// CommandGroupLength. Fields carry the standard's names.
import { Buffer } from 'node:buffer';
import { DataDictionary, Tag } from '../core/data-dictionary.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { DataSet } from '../core/dataset.ts';
import { decodeDataSet, encodeDataSet } from './dataset-codec.ts';
import { TransferSyntax } from './transfer-syntax.ts';

/** Command Field values (PS3.7 E.1). */
export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CGetRsp: 0x8010,
  CFindRq: 0x0020,
  CFindRsp: 0x8020,
  CMoveRq: 0x0021,
  CMoveRsp: 0x8021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  NEventReportRq: 0x0100,
  NEventReportRsp: 0x8100,
  NGetRq: 0x0110,
  NGetRsp: 0x8110,
  NSetRq: 0x0120,
  NSetRsp: 0x8120,
  NActionRq: 0x0130,
  NActionRsp: 0x8130,
  NCreateRq: 0x0140,
  NCreateRsp: 0x8140,
  NDeleteRq: 0x0150,
  NDeleteRsp: 0x8150,
  CCancelRq: 0x0fff,
} as const;

/** Command Data Set Type: this value means "no data set"; any other means one follows (PS3.7 E.1). */
export const CommandDataSetTypeNone = 0x0101;
/** The value the box writes when a data set follows. */
export const CommandDataSetTypePresent = 0x0000;

/** Status codes (PS3.7 Annex C and the service classes of PS3.4), named as in the standard. */
export const Status = {
  Success: 0x0000,
  Pending: 0xff00,
  PendingWarning: 0xff01,
  Cancel: 0xfe00,
  AttributeListError: 0x0107,
  AttributeValueOutOfRange: 0x0116,
  ProcessingFailure: 0x0110,
  DuplicateSOPInstance: 0x0111,
  NoSuchSOPInstance: 0x0112,
  NoSuchEventType: 0x0113,
  NoSuchArgument: 0x0114,
  InvalidArgumentValue: 0x0115,
  InvalidAttributeValue: 0x0106,
  InvalidObjectInstance: 0x0117,
  NoSuchSOPClass: 0x0118,
  ClassInstanceConflict: 0x0119,
  MissingAttribute: 0x0120,
  MissingAttributeValue: 0x0121,
  RefusedSOPClassNotSupported: 0x0122,
  NoSuchActionType: 0x0123,
  RefusedNotAuthorized: 0x0124,
  DuplicateInvocation: 0x0210,
  UnrecognizedOperation: 0x0211,
  MistypedArgument: 0x0212,
  ResourceLimitation: 0x0213,
  OutOfResources: 0xa700,
  DataSetDoesNotMatchSOPClass: 0xa900,
  IdentifierDoesNotMatchSOPClass: 0xa900,
  CannotUnderstand: 0xc000,
  UnableToProcess: 0xc000,
  CoercionOfDataElements: 0xb000,
  ElementsDiscarded: 0xb006,
  DataSetDoesNotMatchSOPClassWarning: 0xb007,
} as const;

/** A decoded command set. Absent fields are undefined. */
export interface Command {
  readonly CommandField: number;
  readonly MessageID?: number;
  readonly MessageIDBeingRespondedTo?: number;
  readonly AffectedSOPClassUID?: string;
  readonly RequestedSOPClassUID?: string;
  readonly AffectedSOPInstanceUID?: string;
  readonly RequestedSOPInstanceUID?: string;
  readonly CommandDataSetType: number;
  readonly Priority?: number;
  readonly Status?: number;
  readonly ErrorComment?: string;
  readonly ErrorID?: number;
  readonly OffendingElement?: string;
  readonly MoveDestination?: string;
  readonly EventTypeID?: number;
  readonly ActionTypeID?: number;
  readonly AttributeIdentifierList?: string;
}

export function hasDataSet(command: Command): boolean {
  return command.CommandDataSetType !== CommandDataSetTypeNone;
}

export function isRequest(commandField: number): boolean {
  return (commandField & 0x8000) === 0;
}

const numericFields = ['MessageID', 'MessageIDBeingRespondedTo', 'Priority', 'Status', 'ErrorID', 'EventTypeID', 'ActionTypeID'] as const;
const textFields = [
  'AffectedSOPClassUID',
  'RequestedSOPClassUID',
  'AffectedSOPInstanceUID',
  'RequestedSOPInstanceUID',
  'ErrorComment',
  'OffendingElement',
  'MoveDestination',
  'AttributeIdentifierList',
] as const;

function invalid(message: string, cause?: unknown): EdgeError {
  return new EdgeError('EDGE_DICOM_PDU_INVALID', message, cause === undefined ? undefined : { cause });
}

/** Decode a command set; throws EDGE_DICOM_PDU_INVALID when it is not a usable command. */
export function decodeCommand(bytes: Uint8Array): Command {
  let ds: DataSet;
  try {
    ds = decodeDataSet(bytes, TransferSyntax.ImplicitVRLittleEndian, { maxDepth: 0 });
  } catch (err) {
    throw invalid('command set cannot be decoded', isEdgeError(err) ? err : undefined);
  }
  const num = (tag: number): number | undefined => {
    const el = ds.get(tag);
    if (el === undefined) return undefined;
    if (typeof el.value !== 'string' || !/^\d+$/.test(el.value)) throw invalid('command element has a wrong value');
    return Number(el.value);
  };
  const text = (tag: number): string | undefined => {
    const el = ds.get(tag);
    if (el === undefined) return undefined;
    if (typeof el.value !== 'string') throw invalid('command element has a wrong value');
    return el.value;
  };
  const commandField = num(Tag.CommandField);
  const dataSetType = num(Tag.CommandDataSetType);
  if (commandField === undefined || dataSetType === undefined) throw invalid('command set lacks CommandField or CommandDataSetType');
  const out: Record<string, string | number> = { CommandField: commandField, CommandDataSetType: dataSetType };
  for (const f of numericFields) {
    const v = num(Tag[f]);
    if (v !== undefined) out[f] = v;
  }
  for (const f of textFields) {
    const v = text(Tag[f]);
    if (v !== undefined) out[f] = v;
  }
  return out as unknown as Command;
}

/** Encode a command set with its CommandGroupLength. */
export function encodeCommand(command: Command): Buffer {
  const ds: DataSet = new Map();
  ds.set(Tag.CommandField, { vr: DataDictionary.CommandField.vr, value: String(command.CommandField) });
  ds.set(Tag.CommandDataSetType, { vr: DataDictionary.CommandDataSetType.vr, value: String(command.CommandDataSetType) });
  for (const f of numericFields) {
    const v = command[f];
    if (v !== undefined) ds.set(Tag[f], { vr: DataDictionary[f].vr, value: String(v) });
  }
  for (const f of textFields) {
    const v = command[f];
    if (v === undefined) continue;
    ds.set(Tag[f], { vr: DataDictionary[f].vr, value: v });
  }
  const body = encodeDataSet(ds, TransferSyntax.ImplicitVRLittleEndian);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(0x00000000, 0);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}
