// One inbound HL7 message, from frame payload to ACK: parse → sender check → supported type → map →
// durable apply → only then AA. Each outcome is one event for the audit trail (identifiers only).
import { productionProcessingIds, type ProcessingIdPolicy } from '../core/environment.ts';
import type { StationAssignment } from '../core/station-assignment.ts';
import type { ErrorCode } from '../core/errors.ts';
import { isEdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { MessageReceipt } from '../core/order.ts';
import type { DowntimeLink, OrderRepository } from '../core/ports.ts';
import type { AckCode, AckError } from './ack.ts';
import { AckCode as Ack, buildAck, formatLocation, MessageErrorCondition } from './ack.ts';
import { auditSubjects, type Hl7AuditSubject } from './audit-subjects.ts';
import { checkMessageType, mapMessage } from './mapping.ts';
import type { Hl7Field, Hl7Header, Hl7Message, Hl7MessageLimits, Hl7Position } from './message.ts';
import { parseHl7Message, parseMessageHeader } from './message.ts';

/** The authenticated peer of a connection, as the owner's peer policy identified it. */
export interface Hl7Peer {
  readonly name: string;
  /** Expected MSH-3 (namespace id) of its messages. */
  readonly sendingApplication: string;
  /** Expected MSH-4 (namespace id) of its messages. */
  readonly sendingFacility: string;
  /**
   * Where this peer's orders go and which MSH-11 it must send, when not the listener's: a production
   * box's test channel has its own repository (the test worklist) and sends `T`.
   */
  readonly repository?: OrderRepository;
  readonly processingIds?: ProcessingIdPolicy;
}

/** `remoteAddress` is the connection's source address, when the owner of the connection gave it. */
export type Hl7InboundEvent = Hl7InboundOutcomeEvent & {
  readonly remoteAddress?: string;
  /** MSH-9 message code ^ trigger event, when MSH could be read (for counting; never content). */
  readonly msh9?: string;
  /** MSA-1 of the ACK answered; undefined when none was sent (the stream was not HL7). */
  readonly ackCode?: AckCode;
};

type Hl7InboundOutcomeEvent =
  | { readonly type: 'sender-mismatch'; readonly peer: string; readonly controlId: string; readonly claimed: string }
  | {
      readonly type: 'processing-id-refused';
      readonly peer: string;
      readonly controlId: string;
      /** MSH-11 as sent (clipped); a code, never patient data. */
      readonly received: string;
      readonly accepted: readonly string[];
    }
  | {
      readonly type: 'unsupported-message';
      readonly peer: string;
      readonly controlId: string;
      readonly messageType: string;
      readonly condition: number;
    }
  | { readonly type: 'duplicate'; readonly peer: string; readonly controlId: string; readonly subjects: readonly Hl7AuditSubject[] }
  | {
      readonly type: 'invalid-message';
      readonly peer: string;
      /** '' when not even MSH could be read. */
      readonly controlId: string;
      readonly code: ErrorCode;
      readonly condition: number;
      readonly location: string;
      /** What the message names, read leniently; empty when it could not be parsed. */
      readonly subjects: readonly Hl7AuditSubject[];
    }
  | {
      readonly type: 'apply-failed';
      readonly peer: string;
      readonly controlId: string;
      readonly code: string;
      readonly subjects: readonly Hl7AuditSubject[];
    }
  | {
      readonly type: 'order-committed';
      readonly peer: string;
      readonly controlId: string;
      /** MSH-9.1^MSH-9.2, e.g. ORM^O01 (the alert rules learn which types a sender uses). */
      readonly messageType: string;
      readonly commandTypes: readonly string[];
      readonly changedItems: number;
      readonly unknownOrders: number;
      /** Free-text values over their VR's length: kept whole in the order, cut in worklist answers. */
      readonly cutValues: number;
      /** One per command: the patient and order it touched (audit chain only, never logged). */
      readonly subjects: readonly Hl7AuditSubject[];
      /** Downtime orders the message linked (audit chain only). */
      readonly downtimeLinks?: readonly DowntimeLink[];
    };

export interface InboundContext {
  readonly peer: Hl7Peer;
  readonly repository: OrderRepository;
  readonly logger: Logger;
  readonly onEvent: (event: Hl7InboundEvent) => void;
  /** Source address of the connection, named in the events. */
  readonly remoteAddress?: string;
  /** Caps on segments, order groups, fields, repetitions, components, sub-components. */
  readonly limits?: Hl7MessageLimits;
  /** MSH-11 accepted, and sent in every ACK; default a production box's (P). */
  readonly processingIds?: ProcessingIdPolicy;
  readonly now?: () => number;
  readonly newStudyInstanceUid?: () => string;
  readonly stations?: StationAssignment;
}

export interface InboundOutcome {
  /** ACK payload (unframed) to send, or undefined to send nothing. */
  readonly ack: Buffer | undefined;
  /** Close the connection after sending (the stream carries something that is not HL7). */
  readonly close: boolean;
}

/** MSA-3 phrases: fixed texts, never content of the message. */
const Text = {
  Accepted: 'Message accepted',
  SenderMismatch: 'Sending application/facility not authorised for this connection',
  ProcessingId: 'Processing id (MSH-11) does not match the environment of this system',
  Unsupported: 'Message type, event or version not supported',
  Charset: 'Character set not supported',
  Invalid: 'Message invalid',
  Duplicate: 'Duplicate message control id',
  Transient: 'Temporary failure, please resend',
} as const;

function clip(value: string, max = 40): string {
  return value.length > max ? value.slice(0, max) : value;
}

export async function handleInboundMessage(payload: Buffer, ctx: InboundContext): Promise<InboundOutcome> {
  const receivedAt = (ctx.now ?? Date.now)();
  const processingIds = ctx.peer.processingIds ?? ctx.processingIds ?? productionProcessingIds;
  const repository = ctx.peer.repository ?? ctx.repository;
  const reply = (request: Hl7Message | Hl7Header, code: AckCode, text: string, error: AckError | undefined): InboundOutcome => ({
    ack: buildAck(request, { code, text, processingId: processingIds.own, ...(error === undefined ? {} : { error }) }),
    close: false,
  });
  const peer = ctx.peer.name;
  const address = ctx.remoteAddress;
  let msh9: string | undefined;
  const emit = (event: Hl7InboundOutcomeEvent, ackCode?: AckCode): void =>
    ctx.onEvent({
      ...event,
      ...(address === undefined ? {} : { remoteAddress: address }),
      ...(msh9 === undefined ? {} : { msh9 }),
      ...(ackCode === undefined ? {} : { ackCode }),
    });
  let header: Hl7Header;
  try {
    header = parseMessageHeader(payload);
  } catch (err) {
    const code: ErrorCode = isEdgeError(err) ? err.code : 'EDGE_HL7_PARSE';
    emit({ type: 'invalid-message', peer, controlId: '', code, condition: 100, location: 'MSH', subjects: [] });
    ctx.logger.warn('hl7.message.unreadable', { peer, code });
    return { ack: undefined, close: true };
  }
  const headerControlId = clip(header.msh.get(10));
  msh9 = clip(`${header.msh.get(9, 1, 1)}^${header.msh.get(9, 1, 2)}`, 16);

  let message: Hl7Message;
  try {
    message = parseHl7Message(payload, ctx.limits);
  } catch (err) {
    const code: ErrorCode = isEdgeError(err) ? err.code : 'EDGE_HL7_PARSE';
    const charset = code === 'EDGE_HL7_UNSUPPORTED_CHARSET';
    const error: AckError = charset
      ? { condition: MessageErrorCondition.TableValueNotFound, location: { segment: 'MSH', sequence: 1, field: 18 } }
      : code === 'EDGE_HL7_LIMIT_EXCEEDED' && isEdgeError(err)
        ? limitError(err.detail as unknown as Hl7Position)
        : { condition: MessageErrorCondition.DataTypeError, location: { segment: 'MSH', sequence: 1 } };
    emit(
      {
        type: 'invalid-message',
        peer,
        controlId: headerControlId,
        code,
        condition: error.condition,
        location: formatLocation(error.location!),
        subjects: [],
      },
      charset ? Ack.ApplicationReject : Ack.ApplicationError,
    );
    ctx.logger.warn('hl7.message.parse-failed', { peer, controlId: headerControlId, code });
    return reply(header, charset ? Ack.ApplicationReject : Ack.ApplicationError, charset ? Text.Charset : Text.Invalid, error);
  }
  const controlId = clip(message.controlId);

  const applicationMatches = isExactly(message.msh.fields[3], ctx.peer.sendingApplication);
  if (!applicationMatches || !isExactly(message.msh.fields[4], ctx.peer.sendingFacility)) {
    emit(
      {
        type: 'sender-mismatch',
        peer,
        controlId,
        claimed: clip(`${message.msh.rawFields[3] ?? ''}^${message.msh.rawFields[4] ?? ''}`, 80),
      },
      Ack.ApplicationReject,
    );
    ctx.logger.warn('hl7.message.sender-mismatch', { peer, controlId });
    return reply(message, Ack.ApplicationReject, Text.SenderMismatch, {
      condition: MessageErrorCondition.TableValueNotFound,
      location: { segment: 'MSH', sequence: 1, field: applicationMatches ? 4 : 3 },
    });
  }

  // Checked before anything else about the content: a training or test message must never reach a
  // production worklist, nor a production order a test box (HL7 v2.5.1 2.14.9.11, table 0103).
  const processingId = processingIdOf(message);
  if (processingId === undefined || !(processingIds.accepted as readonly string[]).includes(processingId)) {
    emit({
      type: 'processing-id-refused',
      peer,
      controlId,
      received: clip(message.msh.rawFields[11] ?? '', 20),
      accepted: processingIds.accepted,
    });
    ctx.logger.warn('hl7.message.processing-id-refused', { peer, controlId });
    return reply(message, Ack.ApplicationReject, Text.ProcessingId, {
      condition: MessageErrorCondition.UnsupportedProcessingId,
      location: { segment: 'MSH', sequence: 1, field: 11 },
    });
  }

  const unsupported = checkMessageType(message);
  if (unsupported !== undefined) {
    emit(
      {
        type: 'unsupported-message',
        peer,
        controlId,
        messageType: clip(`${message.messageCode}^${message.triggerEvent}^${message.versionId}`),
        condition: unsupported.condition,
      },
      Ack.ApplicationReject,
    );
    ctx.logger.warn('hl7.message.unsupported', { peer, controlId, condition: unsupported.condition });
    return reply(message, Ack.ApplicationReject, Text.Unsupported, unsupported);
  }

  const mapped = mapMessage(message, {
    receivedAt,
    ...(ctx.newStudyInstanceUid === undefined ? {} : { newStudyInstanceUid: ctx.newStudyInstanceUid }),
    ...(ctx.stations === undefined ? {} : { stations: ctx.stations }),
  });
  if (!mapped.ok) {
    const location = formatLocation(mapped.failure.location);
    emit(
      {
        type: 'invalid-message',
        peer,
        controlId,
        code: mapped.failure.errorCode,
        condition: mapped.failure.condition,
        location,
        subjects: auditSubjects(message),
      },
      Ack.ApplicationError,
    );
    ctx.logger.warn('hl7.message.invalid', { peer, controlId, condition: mapped.failure.condition, location });
    return reply(message, Ack.ApplicationError, Text.Invalid, mapped.failure);
  }

  const receipt: MessageReceipt = {
    sender: `${ctx.peer.sendingApplication}^${ctx.peer.sendingFacility}`,
    controlId: message.controlId,
    receivedAt,
  };
  const subjects = auditSubjects(message, mapped.commands);
  try {
    const outcome = await repository.apply(mapped.commands, receipt);
    if (outcome.status === 'duplicate') {
      emit({ type: 'duplicate', peer, controlId, subjects }, Ack.ApplicationReject);
      ctx.logger.info('hl7.message.duplicate', { peer, controlId });
      return reply(message, Ack.ApplicationReject, Text.Duplicate, {
        condition: MessageErrorCondition.DuplicateKeyIdentifier,
        location: { segment: 'MSH', sequence: 1, field: 10 },
      });
    }
    emit(
      {
        type: 'order-committed',
        peer,
        controlId,
        messageType: clip(`${message.messageCode}^${message.triggerEvent}`),
        commandTypes: mapped.commands.map((c) => c.type),
        changedItems: outcome.changedItems,
        unknownOrders: outcome.unknownOrders,
        cutValues: mapped.cutValues,
        subjects,
        ...(outcome.downtimeLinks === undefined ? {} : { downtimeLinks: outcome.downtimeLinks }),
      },
      Ack.ApplicationAccept,
    );
    ctx.logger.info('hl7.message.committed', { peer, controlId, commands: mapped.commands.length });
    return reply(message, Ack.ApplicationAccept, Text.Accepted, undefined);
  } catch (err) {
    const code = isEdgeError(err) ? err.code : 'unexpected';
    emit({ type: 'apply-failed', peer, controlId, code, subjects }, Ack.ApplicationError);
    ctx.logger.error('hl7.message.apply-failed', { peer, controlId, code });
    // AE: nothing was committed; the RIS resends the message later.
    return reply(message, Ack.ApplicationError, Text.Transient, {
      condition: MessageErrorCondition.ApplicationInternalError,
    });
  }
}

/**
 * MSH-3/MSH-4 are HD (namespace id ^ universal id ^ universal id type); the configured peer names the
 * namespace id only. The whole field must be exactly that: one repetition whose first component is the
 * namespace id with no sub-components, and no universal id (empty trailing components are the same HD).
 * Comparing HD.1 alone let `GENHOSP&EVIL` and `GENHOSP~OTHER` pass as GENHOSP.
 */
function isExactly(field: Hl7Field | undefined, namespaceId: string): boolean {
  if (field === undefined || field.length !== 1) return false;
  const [first, ...rest] = field[0]!;
  return first !== undefined && first.length === 1 && first[0] === namespaceId && rest.every((c) => c.length === 1 && c[0] === '');
}

/** Too many segments or order groups is a segment sequence error; too many parts of a field, a data type error. */
function limitError(position: Hl7Position): AckError {
  const condition = position.field === undefined ? MessageErrorCondition.SegmentSequenceError : MessageErrorCondition.DataTypeError;
  return { condition, location: position };
}

/**
 * PT.1 of MSH-11 when the field is one repetition whose first component is one value; PT.2 (processing
 * mode) may follow. Anything else (repeated, sub-components, empty) is no processing id.
 */
function processingIdOf(message: Hl7Message): string | undefined {
  const field = message.msh.fields[11];
  if (field === undefined || field.length !== 1) return undefined;
  const first = field[0]![0];
  if (first === undefined || first.length !== 1 || first[0] === '') return undefined;
  return first[0];
}
