// PS3.8 9.3 upper-layer PDUs: types, an incremental reader that refuses oversize PDUs from their
// 6-byte header (before buffering the body), and writers for the PDUs an acceptor sends.
import { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;
export type PduType = (typeof PduType)[keyof typeof PduType];

/** A-ABORT source (PS3.8 Table 9-26). */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
/** A-ABORT reason when the source is the service provider (PS3.8 Table 9-26). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

export const PDU_HEADER_LENGTH = 6;

export interface Pdu {
  readonly type: PduType;
  /** The PDU's variable part (after the 6-byte header). */
  readonly body: Buffer;
}

/** Largest PDU body length accepted for a type, or undefined when the type is not accepted now. */
export type PduLengthCap = (type: number) => number | undefined;

/**
 * Reassembles PDUs from socket chunks. Chunks are kept in a list and joined once per complete PDU,
 * so a large PDU arriving in many chunks is copied once, not once per chunk.
 */
export class PduReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #header: { type: PduType; length: number } | undefined;
  #cap: PduLengthCap;

  constructor(cap: PduLengthCap) {
    this.#cap = cap;
  }

  /** Change the caps (after association negotiation). Applies to PDUs whose header is not yet read. */
  setCap(cap: PduLengthCap): void {
    this.#cap = cap;
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Add received bytes; returns the PDUs they complete. Throws EDGE_DICOM_PDU_TOO_LARGE or
   * EDGE_DICOM_PDU_INVALID (unknown or unexpected type) as soon as a header allows it.
   */
  push(chunk: Buffer): Pdu[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Pdu[] = [];
    for (;;) {
      if (this.#header === undefined) {
        if (this.#buffered < PDU_HEADER_LENGTH) break;
        const h = this.#take(PDU_HEADER_LENGTH);
        const type = h.readUInt8(0);
        const length = h.readUInt32BE(2);
        if (type < PduType.AssociateRq || type > PduType.Abort) {
          throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'unknown PDU type', { detail: { pduType: type } });
        }
        const cap = this.#cap(type);
        if (cap === undefined) {
          throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'unexpected PDU type', { detail: { pduType: type } });
        }
        if (length > cap) {
          throw new EdgeError('EDGE_DICOM_PDU_TOO_LARGE', undefined, { detail: { pduType: type, length, cap } });
        }
        this.#header = { type: type as PduType, length };
      }
      if (this.#buffered < this.#header.length) break;
      out.push({ type: this.#header.type, body: this.#take(this.#header.length) });
      this.#header = undefined;
    }
    return out;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let result: Buffer;
    if (n === 0) {
      result = Buffer.alloc(0);
    } else if (first !== undefined && first.length >= n) {
      result = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      result = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.#chunks[0] as Buffer;
        const want = n - filled;
        if (c.length <= want) {
          c.copy(result, filled);
          filled += c.length;
          this.#chunks.shift();
        } else {
          c.copy(result, filled, 0, want);
          this.#chunks[0] = c.subarray(want);
          filled += want;
        }
      }
    }
    this.#buffered -= n;
    return result;
  }
}

/** Frame a PDU body with its header. */
export function encodePdu(type: PduType, body: Buffer): Buffer {
  const header = Buffer.alloc(PDU_HEADER_LENGTH);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** A-ASSOCIATE-RJ result / source / reason (PS3.8 Table 9-21). */
export function encodeAssociateRj(result: 1 | 2, source: 1 | 2 | 3, reason: number): Buffer {
  return encodePdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));
}

export function encodeReleaseRq(): Buffer {
  return encodePdu(PduType.ReleaseRq, Buffer.alloc(4));
}

export function encodeReleaseRp(): Buffer {
  return encodePdu(PduType.ReleaseRp, Buffer.alloc(4));
}

export function encodeAbort(source: number, reason: number): Buffer {
  return encodePdu(PduType.Abort, Buffer.from([0, 0, source, reason]));
}

/** One presentation data value: a fragment of a command or data set (PS3.8 9.3.5.1, E.2). */
export interface Pdv {
  readonly presentationContextId: number;
  readonly isCommand: boolean;
  readonly isLast: boolean;
  readonly data: Buffer;
}

/** Split a P-DATA-TF body into its PDVs. */
export function parsePDataTf(body: Buffer): Pdv[] {
  const pdvs: Pdv[] = [];
  let pos = 0;
  while (pos < body.length) {
    if (body.length - pos < 6) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'truncated PDV item');
    const itemLength = body.readUInt32BE(pos);
    if (itemLength < 2 || itemLength > body.length - pos - 4) {
      throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'PDV item length out of bounds');
    }
    const presentationContextId = body.readUInt8(pos + 4);
    const header = body.readUInt8(pos + 5);
    pdvs.push({
      presentationContextId,
      isCommand: (header & 0x01) !== 0,
      isLast: (header & 0x02) !== 0,
      data: body.subarray(pos + 6, pos + 4 + itemLength),
    });
    pos += 4 + itemLength;
  }
  if (pdvs.length === 0) throw new EdgeError('EDGE_DICOM_PDU_INVALID', 'P-DATA-TF without PDV');
  return pdvs;
}

/**
 * Encode one message part (command or data set) as P-DATA-TF PDUs, fragments sized so that each PDU
 * body stays within `maxPduLength` (the peer's announced limit; 0 means no limit).
 */
export function encodePData(presentationContextId: number, isCommand: boolean, data: Buffer, maxPduLength: number): Buffer[] {
  // PDU body = 4 (item length) + 1 (context id) + 1 (control header) + fragment.
  const limit = maxPduLength === 0 ? 1 << 20 : maxPduLength;
  const maxFragment = Math.max(1, limit - 6);
  const pdus: Buffer[] = [];
  let offset = 0;
  do {
    const fragment = data.subarray(offset, offset + maxFragment);
    offset += fragment.length;
    const last = offset >= data.length;
    const head = Buffer.alloc(PDU_HEADER_LENGTH + 6);
    head.writeUInt8(PduType.PDataTf, 0);
    head.writeUInt32BE(6 + fragment.length, 2);
    head.writeUInt32BE(2 + fragment.length, 6);
    head.writeUInt8(presentationContextId, 10);
    head.writeUInt8((isCommand ? 0x01 : 0) | (last ? 0x02 : 0), 11);
    pdus.push(Buffer.concat([head, fragment]));
  } while (offset < data.length);
  return pdus;
}
