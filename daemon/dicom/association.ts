// A-ASSOCIATE-RQ parsing and A-ASSOCIATE-AC building (PS3.8 9.3.2, 9.3.3, Annex D).
import { Buffer } from 'node:buffer';
import { EdgeError } from '../core/errors.ts';
import { encodePdu, PduType } from './pdu.ts';

export const DICOM_APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
/** The box's Implementation Class UID: a UUID-derived 2.25 UID (PS3.5 B.2), fixed for this implementation. */
export const IMPLEMENTATION_CLASS_UID = '2.25.229584672451397204116312795463985830402';
export const IMPLEMENTATION_VERSION_NAME = 'IMAGING_EDGE';

const ItemType = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaximumLength: 0x51,
  ImplementationClassUid: 0x52,
  AsynchronousOperationsWindow: 0x53,
  ScpScuRoleSelection: 0x54,
  ImplementationVersionName: 0x55,
} as const;

/** Presentation context result (PS3.8 Table 9-18). */
export const PresentationContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;
export type PresentationContextResult = (typeof PresentationContextResult)[keyof typeof PresentationContextResult];

export interface ProposedPresentationContext {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

/**
 * An SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4): in a request the roles the requestor proposes to
 * take for the SOP class; in an answer the roles the acceptor agreed to (false = that role refused).
 */
export interface RoleSelection {
  readonly sopClassUid: string;
  readonly scu: boolean;
  readonly scp: boolean;
}

export interface AssociateRq {
  readonly protocolVersion: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly applicationContextName: string;
  readonly presentationContexts: readonly ProposedPresentationContext[];
  /** The requestor's Maximum Length Received; 0 = unlimited. */
  readonly maxPduLength: number;
  readonly implementationClassUid: string;
  readonly implementationVersionName: string;
  /** Role selection sub-items proposed, by SOP class (absent = default roles: the requestor is SCU). */
  readonly roleSelections: ReadonlyMap<string, RoleSelection>;
}

export interface PresentationContextAnswer {
  readonly id: number;
  readonly result: PresentationContextResult;
  /** The accepted transfer syntax; for rejected contexts any value (not significant to the peer). */
  readonly transferSyntax: string;
}

export interface AssociateAc {
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly presentationContexts: readonly PresentationContextAnswer[];
  /** Our Maximum Length Received. */
  readonly maxPduLength: number;
  /** Answers to the requestor's role selection sub-items (only for SOP classes it proposed one for). */
  readonly roleSelections?: readonly RoleSelection[];
}

function bad(message: string): EdgeError {
  return new EdgeError('EDGE_DICOM_PDU_INVALID', message);
}

/** UIDs are padded with NUL to even length (PS3.8 Annex F); some peers pad with spaces. */
function uidText(b: Buffer): string {
  return b.toString('latin1').replace(/[\0 ]+$/, '');
}

/**
 * Leading and trailing spaces of an AE title are not significant (PS3.5 Table 6.2-1); a few older
 * devices pad the 16-byte field with NUL instead of space, so trailing NULs are padding too.
 */
function aeText(b: Buffer): string {
  return b
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/** Parse an A-ASSOCIATE-RQ body (the part after the 6-byte PDU header). */
export function parseAssociateRq(body: Buffer): AssociateRq {
  if (body.length < 68) throw bad('A-ASSOCIATE-RQ too short');
  const protocolVersion = body.readUInt16BE(0);
  const calledAeTitle = aeText(body.subarray(4, 20));
  const callingAeTitle = aeText(body.subarray(20, 36));
  let applicationContextName = '';
  const presentationContexts: ProposedPresentationContext[] = [];
  let maxPduLength = 0;
  let implementationClassUid = '';
  let implementationVersionName = '';
  let sawUserInfo = false;
  const roleSelections = new Map<string, RoleSelection>();
  for (const item of items(body, 68)) {
    switch (item.type) {
      case ItemType.ApplicationContext:
        applicationContextName = uidText(item.value);
        break;
      case ItemType.PresentationContextRq: {
        if (item.value.length < 4) throw bad('presentation context item too short');
        const id = item.value.readUInt8(0);
        let abstractSyntax = '';
        const transferSyntaxes: string[] = [];
        for (const sub of items(item.value, 4)) {
          if (sub.type === ItemType.AbstractSyntax) abstractSyntax = uidText(sub.value);
          else if (sub.type === ItemType.TransferSyntax) transferSyntaxes.push(uidText(sub.value));
        }
        if (presentationContexts.length >= 128) throw bad('too many presentation contexts');
        if (presentationContexts.some((pc) => pc.id === id)) throw bad('repeated presentation context id');
        presentationContexts.push({ id, abstractSyntax, transferSyntaxes });
        break;
      }
      case ItemType.UserInformation:
        sawUserInfo = true;
        for (const sub of items(item.value, 0)) {
          if (sub.type === ItemType.MaximumLength) {
            if (sub.value.length !== 4) throw bad('maximum length sub-item has wrong length');
            maxPduLength = sub.value.readUInt32BE(0);
          } else if (sub.type === ItemType.ImplementationClassUid) {
            implementationClassUid = uidText(sub.value);
          } else if (sub.type === ItemType.ImplementationVersionName) {
            implementationVersionName = aeText(sub.value);
          } else if (sub.type === ItemType.ScpScuRoleSelection) {
            const role = parseRoleSelection(sub.value);
            if (roleSelections.size < 128) roleSelections.set(role.sopClassUid, role);
          }
          // Asynchronous operations window and extended negotiation are not answered: the acceptor
          // then operates synchronously (PS3.7 D.3.3.3).
        }
        break;
      default:
        break; // unknown items are ignored (PS3.8 9.3.1)
    }
  }
  if (!sawUserInfo) throw bad('A-ASSOCIATE-RQ without user information item');
  return {
    protocolVersion,
    calledAeTitle,
    callingAeTitle,
    applicationContextName,
    presentationContexts,
    maxPduLength,
    implementationClassUid,
    implementationVersionName,
    roleSelections,
  };
}

/** The value of an SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4.1): UID length, UID, SCU role, SCP role. */
export function parseRoleSelection(value: Buffer): RoleSelection {
  if (value.length < 4) throw bad('role selection sub-item too short');
  const uidLength = value.readUInt16BE(0);
  if (uidLength + 4 !== value.length) throw bad('role selection sub-item has wrong length');
  return { sopClassUid: uidText(value.subarray(2, 2 + uidLength)), scu: value[2 + uidLength] === 1, scp: value[3 + uidLength] === 1 };
}

/** A complete SCP/SCU Role Selection sub-item (type 0x54), for requests and answers alike. */
export function encodeRoleSelection(role: RoleSelection): Buffer {
  const uid = uidBytes(role.sopClassUid);
  const value = Buffer.alloc(4 + uid.length);
  value.writeUInt16BE(uid.length, 0);
  uid.copy(value, 2);
  value.writeUInt8(role.scu ? 1 : 0, 2 + uid.length);
  value.writeUInt8(role.scp ? 1 : 0, 3 + uid.length);
  return item(ItemType.ScpScuRoleSelection, value);
}

function* items(buf: Buffer, start: number): Generator<{ type: number; value: Buffer }> {
  let pos = start;
  while (pos < buf.length) {
    if (buf.length - pos < 4) throw bad('truncated item header');
    const type = buf.readUInt8(pos);
    const length = buf.readUInt16BE(pos + 2);
    if (length > buf.length - pos - 4) throw bad('item length out of bounds');
    yield { type, value: buf.subarray(pos + 4, pos + 4 + length) };
    pos += 4 + length;
  }
}

function item(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

function uidBytes(uid: string): Buffer {
  // Item UIDs are not padded (PS3.8 9.3.2.2.1 allows no trailing NUL; DCMTK accepts both).
  return Buffer.from(uid, 'latin1');
}

function aeBytes(ae: string): Buffer {
  const b = Buffer.alloc(16, 0x20);
  b.write(ae.slice(0, 16), 0, 'latin1');
  return b;
}

/** Build a complete A-ASSOCIATE-AC PDU. */
export function encodeAssociateAc(ac: AssociateAc): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(1, 0); // protocol version 1
  aeBytes(ac.calledAeTitle).copy(fixed, 4);
  aeBytes(ac.callingAeTitle).copy(fixed, 20);
  const parts: Buffer[] = [fixed, item(ItemType.ApplicationContext, uidBytes(DICOM_APPLICATION_CONTEXT))];
  for (const pc of ac.presentationContexts) {
    const head = Buffer.from([pc.id, 0, pc.result, 0]);
    parts.push(item(ItemType.PresentationContextAc, Buffer.concat([head, item(ItemType.TransferSyntax, uidBytes(pc.transferSyntax))])));
  }
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(ac.maxPduLength, 0);
  parts.push(
    item(
      ItemType.UserInformation,
      Buffer.concat([
        item(ItemType.MaximumLength, maxLength),
        item(ItemType.ImplementationClassUid, uidBytes(IMPLEMENTATION_CLASS_UID)),
        ...(ac.roleSelections ?? []).map(encodeRoleSelection),
        item(ItemType.ImplementationVersionName, Buffer.from(IMPLEMENTATION_VERSION_NAME, 'latin1')),
      ]),
    ),
  );
  return encodePdu(PduType.AssociateAc, Buffer.concat(parts));
}

/**
 * Answer each proposed context: accepted when its abstract syntax is allowed and one of its transfer
 * syntaxes is in `transferSyntaxes` (our preference order wins, PS3.8 9.3.3.2).
 */
export function negotiatePresentationContexts(
  proposed: readonly ProposedPresentationContext[],
  abstractSyntaxes: ReadonlySet<string>,
  transferSyntaxes: readonly string[],
  transferSyntaxesByAbstractSyntax?: ReadonlyMap<string, readonly string[]>,
): PresentationContextAnswer[] {
  return proposed.map((pc) => {
    const fallback = pc.transferSyntaxes[0] ?? '1.2.840.10008.1.2';
    if (!abstractSyntaxes.has(pc.abstractSyntax)) {
      return { id: pc.id, result: PresentationContextResult.AbstractSyntaxNotSupported, transferSyntax: fallback };
    }
    const ours = transferSyntaxesByAbstractSyntax?.get(pc.abstractSyntax) ?? transferSyntaxes;
    const chosen = ours.find((ts) => pc.transferSyntaxes.includes(ts));
    if (chosen === undefined) {
      return { id: pc.id, result: PresentationContextResult.TransferSyntaxesNotSupported, transferSyntax: fallback };
    }
    return { id: pc.id, result: PresentationContextResult.Acceptance, transferSyntax: chosen };
  });
}
