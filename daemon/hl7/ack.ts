// Original-mode general acknowledgement (HL7 v2.5.1 2.9.2, 2.15.8 MSA, 2.15.5 ERR). The ACK uses the
// request's delimiters and charset, so sender fields can be echoed as they came. Texts in MSA-3 and ERR
// are fixed phrases chosen by the box: never patient data.
import { randomBytes } from 'node:crypto';
import { encodeHl7Text, msh18For, Hl7Charset } from './charset.ts';
import type { EncodingCharacters, Hl7Header, Hl7Message, Hl7Position } from './message.ts';
import { escapeHl7 } from './message.ts';

export const AckCode = {
  ApplicationAccept: 'AA',
  ApplicationError: 'AE',
  ApplicationReject: 'AR',
} as const;
export type AckCode = (typeof AckCode)[keyof typeof AckCode];

/** HL7 table 0357, message error condition codes. */
export const MessageErrorCondition = {
  SegmentSequenceError: 100,
  RequiredFieldMissing: 101,
  DataTypeError: 102,
  TableValueNotFound: 103,
  UnsupportedMessageType: 200,
  UnsupportedEventCode: 201,
  UnsupportedProcessingId: 202,
  UnsupportedVersionId: 203,
  UnknownKeyIdentifier: 204,
  DuplicateKeyIdentifier: 205,
  ApplicationRecordLocked: 206,
  ApplicationInternalError: 207,
} as const;
export type MessageErrorCondition = (typeof MessageErrorCondition)[keyof typeof MessageErrorCondition];

const CONDITION_TEXT: Record<MessageErrorCondition, string> = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

/** Where the error is (ERL in v2.5+, ELD before). */
export type ErrorLocation = Hl7Position;

/** `PID-3`, `PID-5.1`, `PID-3[101]`, `PID-5.1.33`, `ORC#101` (occurrence shown when not the first). */
export function formatLocation(location: ErrorLocation): string {
  let s = location.segment;
  if (location.sequence > 1) s += `#${location.sequence}`;
  if (location.field !== undefined) s += `-${location.field}`;
  if (location.repetition !== undefined && location.repetition > 1) s += `[${location.repetition}]`;
  if (location.component !== undefined) s += `.${location.component}`;
  if (location.subcomponent !== undefined) s += `.${location.subcomponent}`;
  return s;
}

export interface AckError {
  readonly condition: MessageErrorCondition;
  readonly location?: ErrorLocation;
}

export interface AckOptions {
  readonly code: AckCode;
  /** MSA-3 text; a fixed phrase, never message content. */
  readonly text?: string;
  readonly error?: AckError;
  /** MSH-11 of the ACK: the box's own processing id (default: the request's, echoed). */
  readonly processingId?: string;
  /** MSH-10 of the ACK; default: a new unique id. */
  readonly controlId?: string;
  readonly now?: Date;
}

let counter = 0;
const instance = randomBytes(3).toString('hex').toUpperCase();

/** A control id unique for this process and very likely across restarts: time, instance, counter (≤20 chars). */
export function newControlId(now = Date.now()): string {
  counter = (counter + 1) % 46656;
  return `${now.toString(36).toUpperCase()}${instance}${counter.toString(36).toUpperCase().padStart(3, '0')}`;
}

export function formatHl7Timestamp(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}` +
    `${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}+0000`
  );
}

/** True for versions whose ERR segment has ERR-2..4 (v2.5 and later); older ones use ERR-1. */
/** Whether HL7 version `version` (MSH-12.1) is `major.minor[.patch]` or later; false when unreadable. */
export function versionAtLeast(version: string, major: number, minor: number, patch = 0): boolean {
  const [a, b, c = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  if (a === undefined || b === undefined || Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(c)) return false;
  if (a !== major) return a > major;
  if (b !== minor) return b > minor;
  return c >= patch;
}

function usesV25Err(version: string): boolean {
  return versionAtLeast(version, 2, 5);
}

/**
 * MSH-9 of the ACK. MSG.3 (message structure) exists from v2.3.1 on; v2.3 and v2.2 define MSH-9 as
 * two components (message type ^ trigger event), so a third would fail a strict parser there.
 */
function ackMessageType(trigger: string, version: string, enc: EncodingCharacters): string {
  const c = enc.component;
  const event = escapeHl7(trigger, enc);
  return versionAtLeast(version, 2, 3, 1) ? `ACK${c}${event}${c}ACK` : `ACK${c}${event}`;
}

/**
 * Build the ACK payload (not framed) for a parsed request, or for a request whose body could not be
 * decoded (then only its MSH is known and the ACK is written in ASCII).
 */
export function buildAck(request: Hl7Message | Hl7Header, options: AckOptions): Buffer {
  const isMessage = 'segments' in request;
  const msh = request.msh;
  const enc: EncodingCharacters = request.encoding;
  const charset = isMessage ? request.charset : Hl7Charset.Ascii;
  const raw = (n: number): string => msh.rawFields[n] ?? '';
  const trigger = msh.get(9, 1, 2);
  const version = msh.get(12, 1, 1);
  const fieldsOfMsh = [
    'MSH',
    // MSH-2 then MSH-3..: the separator itself stands for MSH-1.
    raw(2),
    raw(5),
    raw(6),
    raw(3),
    raw(4),
    formatHl7Timestamp(options.now ?? new Date()),
    '',
    ackMessageType(trigger, version, enc),
    escapeHl7(options.controlId ?? newControlId(), enc),
    options.processingId === undefined ? raw(11) : escapeHl7(options.processingId, enc),
    raw(12),
    '',
    '',
    '',
    '',
    '',
    msh18For(charset),
  ];
  const segments = [trimTrailing(fieldsOfMsh).join(enc.field)];
  const msa = ['MSA', options.code, raw(10), escapeHl7(options.text ?? '', enc)];
  segments.push(trimTrailing(msa).join(enc.field));
  if (options.error !== undefined && options.code !== AckCode.ApplicationAccept) {
    segments.push(errSegment(options.error, enc, usesV25Err(version)));
  }
  return encodeHl7Text(segments.join('\r') + '\r', charset);
}

function errSegment(error: AckError, enc: EncodingCharacters, v25: boolean): string {
  const { component: c, subcomponent: s, field: f } = enc;
  const text = CONDITION_TEXT[error.condition];
  const loc = error.location;
  if (v25) {
    // ERR-2 ERL: segment id^sequence^field position^field repetition^component^subcomponent.
    const erl =
      loc === undefined
        ? ''
        : trimTrailing([
            loc.segment,
            String(loc.sequence),
            loc.field === undefined ? '' : String(loc.field),
            loc.field === undefined ? '' : String(loc.repetition ?? 1),
            loc.component === undefined ? '' : String(loc.component),
            loc.subcomponent === undefined ? '' : String(loc.subcomponent),
          ]).join(c);
    return ['ERR', '', erl, `${error.condition}${c}${text}${c}HL70357`, 'E'].join(f);
  }
  // v2.3.1 ERR-1 ELD: segment id^sequence^field position^code (CE: identifier&text&coding system).
  const eld = [
    loc?.segment ?? '',
    loc === undefined ? '' : String(loc.sequence),
    loc?.field === undefined ? '' : String(loc.field),
    `${error.condition}${s}${text}${s}HL70357`,
  ].join(c);
  return ['ERR', eld].join(f);
}

function trimTrailing(values: string[]): string[] {
  let n = values.length;
  while (n > 1 && values[n - 1] === '') n -= 1;
  return values.slice(0, n);
}
