// The requestor's half of association negotiation (PS3.8 9.3.2, 9.3.3): build an A-ASSOCIATE-RQ and
// read the acceptor's A-ASSOCIATE-AC. Used by the C-STORE SCU that forwards to the PACS and by the
// Storage Commitment report sender (which proposes the SCP role, PS3.4 J.3.3).
import { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';
import {
  DICOM_APPLICATION_CONTEXT,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  PresentationContextResult,
  type RoleSelection,
  encodeRoleSelection,
  parseRoleSelection,
} from './association.ts';
import { encodePdu, PduType } from './pdu.ts';

export interface RequestedContext {
  /** Odd, 1..255 (PS3.8 9.3.2.2). */
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

export interface AcceptedAssociation {
  /** The acceptor's Maximum Length Received; 0 = unlimited. */
  readonly maxPduLength: number;
  /** Accepted contexts: id → transfer syntax. */
  readonly accepted: ReadonlyMap<number, string>;
  /** Every answer: id → result (PresentationContextResult). */
  readonly results: ReadonlyMap<number, number>;
  /** The acceptor's answers to our role selection sub-items, by SOP class (absent = not answered). */
  readonly roleSelections: ReadonlyMap<string, RoleSelection>;
}

function item(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

function aeField(ae: string): Buffer {
  const b = Buffer.alloc(16, 0x20);
  b.write(ae.slice(0, 16), 0, 'latin1');
  return b;
}

export function encodeAssociateRq(options: {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly contexts: readonly RequestedContext[];
  readonly maxPduLength: number;
  readonly roleSelections?: readonly RoleSelection[];
}): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(1, 0);
  aeField(options.calledAeTitle).copy(fixed, 4);
  aeField(options.callingAeTitle).copy(fixed, 20);
  const parts = [fixed, item(0x10, Buffer.from(DICOM_APPLICATION_CONTEXT, 'latin1'))];
  for (const pc of options.contexts) {
    parts.push(
      item(
        0x20,
        Buffer.concat([
          Buffer.from([pc.id, 0, 0, 0]),
          item(0x30, Buffer.from(pc.abstractSyntax, 'latin1')),
          ...pc.transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts, 'latin1'))),
        ]),
      ),
    );
  }
  const max = Buffer.alloc(4);
  max.writeUInt32BE(options.maxPduLength, 0);
  parts.push(
    item(
      0x50,
      Buffer.concat([
        item(0x51, max),
        item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID, 'latin1')),
        ...(options.roleSelections ?? []).map(encodeRoleSelection),
        item(0x55, Buffer.from(IMPLEMENTATION_VERSION_NAME, 'latin1')),
      ]),
    ),
  );
  return encodePdu(PduType.AssociateRq, Buffer.concat(parts));
}

function bad(message: string): EdgeError {
  return new EdgeError('EDGE_DICOM_PDU_INVALID', message);
}

export function parseAssociateAc(body: Buffer): AcceptedAssociation {
  if (body.length < 68) throw bad('A-ASSOCIATE-AC too short');
  const accepted = new Map<number, string>();
  const results = new Map<number, number>();
  const roleSelections = new Map<string, RoleSelection>();
  let maxPduLength = 0;
  let pos = 68;
  while (pos + 4 <= body.length) {
    const type = body.readUInt8(pos);
    const length = body.readUInt16BE(pos + 2);
    if (pos + 4 + length > body.length) throw bad('A-ASSOCIATE-AC item out of bounds');
    const value = body.subarray(pos + 4, pos + 4 + length);
    if (type === 0x21 && value.length >= 4) {
      const id = value.readUInt8(0);
      const result = value.readUInt8(2);
      results.set(id, result);
      let sub = 4;
      while (sub + 4 <= value.length) {
        const st = value.readUInt8(sub);
        const sl = value.readUInt16BE(sub + 2);
        if (st === 0x40 && result === PresentationContextResult.Acceptance) {
          accepted.set(id, value.toString('latin1', sub + 4, sub + 4 + sl).replace(/[\0 ]+$/, ''));
        }
        sub += 4 + sl;
      }
    } else if (type === 0x50) {
      let sub = 0;
      while (sub + 4 <= value.length) {
        const st = value.readUInt8(sub);
        const sl = value.readUInt16BE(sub + 2);
        if (sub + 4 + sl > value.length) throw bad('A-ASSOCIATE-AC sub-item out of bounds');
        if (st === 0x51 && sl === 4) maxPduLength = value.readUInt32BE(sub + 4);
        if (st === 0x54) {
          const role = parseRoleSelection(value.subarray(sub + 4, sub + 4 + sl));
          roleSelections.set(role.sopClassUid, role);
        }
        sub += 4 + sl;
      }
    }
    pos += 4 + length;
  }
  return { maxPduLength, accepted, results, roleSelections };
}
