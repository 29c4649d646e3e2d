// Demographic reconciliation on forward: when the RIS corrected a patient (ADT A08, merged by A40) after
// the images were taken, the object leaves for the PACS with the order's current Patient's Name, ID,
// Issuer, Birth Date and Sex. Objects can be hundreds of MB, so only the top-level head of the data set
// (everything before the first element after Study Instance UID) is held and re-encoded; the rest, pixel
// data included, streams through untouched. The SOP Instance UID and transfer syntax never change.
import { Buffer } from 'node:buffer';
import type { AuditValueChange } from '../core/audit.ts';
import { DataDictionary, Tag } from '../core/data-dictionary.ts';
import { personNameGroups, trimPadding } from '../core/dicom-text.ts';
import type { Vr } from '../core/dataset.ts';
import type { SpooledInstance } from '../core/instance-spool.ts';
import type { Logger } from '../core/log.ts';
import type { Order } from '../core/order.ts';
import type { OrderLookup } from '../core/ports.ts';
import type { InstanceTransform } from './pacs-forwarder.ts';
import { TransferSyntax } from './transfer-syntax.ts';
import { ItemDelimitationTag, ItemTag, SequenceDelimitationTag, UndefinedLength, longExplicitVrs } from './element-encoding.ts';

/** The attributes reconciliation may change: the Patient Module's (PS3.3 C.7.1.1) and the Accession Number, in tag order; maxChars per VR (PS3.5 6.2). */
export const ReconciledAttribute = {
  // Only a linked downtime order changes it (demographicsOf): images taken under the box's accession.
  AccessionNumber: { ...DataDictionary.AccessionNumber, maxChars: 16 },
  PatientName: { ...DataDictionary.PatientName, maxChars: 64 * 3 + 2 },
  PatientID: { ...DataDictionary.PatientID, maxChars: 64 },
  IssuerOfPatientID: { ...DataDictionary.IssuerOfPatientID, maxChars: 64 },
  PatientBirthDate: { ...DataDictionary.PatientBirthDate, maxChars: 8 },
  PatientSex: { ...DataDictionary.PatientSex, maxChars: 16 },
} as const satisfies Record<string, { tag: number; vr: Vr; maxChars: number }>;
export type ReconciledKeyword = keyof typeof ReconciledAttribute;
const KEYWORDS = Object.keys(ReconciledAttribute) as ReconciledKeyword[];

const { SpecificCharacterSet, AccessionNumber, StudyInstanceUID } = Tag;
const PatientGroupLength = 0x00100000;

/** What the head of a data set says (values decoded per its Specific Character Set, padding removed). */
export interface DatasetHead {
  readonly specificCharacterSet: string;
  readonly accessionNumber: string;
  readonly studyInstanceUid: string;
  /** Present attributes only. */
  readonly patient: Partial<Record<ReconciledKeyword, string>>;
}

/** Values to write (others stay as they are); undefined = leave the object unchanged. */
export type Replacement = Partial<Record<ReconciledKeyword, string>>;

export type RewriteOutcome =
  | { readonly kind: 'unchanged'; readonly why: string }
  | { readonly kind: 'skipped'; readonly why: string }
  | { readonly kind: 'rewritten'; readonly changes: readonly AuditValueChange[] };

export interface RewriteOptions {
  /** Bytes of head held at most; a larger head (huge private sequences) is forwarded unchanged. */
  readonly maxHeadBytes?: number;
  /** Called once, before any rewritten byte is yielded (or when the object passes unchanged). */
  readonly onOutcome?: (outcome: RewriteOutcome) => void;
}

const DEFAULT_MAX_HEAD_BYTES = 4 * 1024 * 1024;

/**
 * Streams `data` (a data set in `transferSyntaxUid`), asking `decide` what the patient attributes
 * should be once the head is read. Only Implicit/Explicit VR Little Endian and the encapsulated syntaxes
 * (whose data set is Explicit VR LE) are rewritten; deflated and big-endian data pass through unchanged.
 */
export async function* rewriteDemographics(
  data: AsyncIterable<Uint8Array>,
  transferSyntaxUid: string,
  decide: (head: DatasetHead) => Promise<Replacement | { readonly skip: string } | undefined>,
  options: RewriteOptions = {},
): AsyncGenerator<Uint8Array> {
  const report = options.onOutcome ?? ((): void => {});
  if (transferSyntaxUid === '1.2.840.10008.1.2.1.99' || transferSyntaxUid === '1.2.840.10008.1.2.2') {
    report({ kind: 'skipped', why: 'transfer syntax is deflated or big endian' });
    yield* data;
    return;
  }
  const explicit = transferSyntaxUid !== TransferSyntax.ImplicitVRLittleEndian;
  const maxHead = options.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const iterator = data[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let scan: HeadScan = { elements: [], end: 0, complete: false };
  let exhausted = false;
  let unparsable = false;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      const chunk = toBuffer(next.value);
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      try {
        scan = scanHead(head, explicit, scan);
      } catch {
        // Malformed structure: the spool checked the data set on receipt, so forward it as it is.
        unparsable = true;
        break;
      }
      if (scan.complete) break;
      if (head.length > maxHead) {
        report({ kind: 'skipped', why: 'data set head larger than the reconciliation limit' });
        yield head;
        yield* rest(iterator);
        return;
      }
    }
    if (unparsable || (exhausted && !scan.complete && scan.end !== head.length)) {
      report({ kind: 'skipped', why: 'data set head cannot be parsed' });
      if (head.length > 0) yield head;
      if (!exhausted) yield* rest(iterator);
      return;
    }
    const headEnd = scan.complete ? scan.end : head.length;
    const info = readHead(head, scan.elements);
    const replacement = await decide(info);
    const plan = replacement === undefined ? undefined : 'skip' in replacement ? { why: replacement.skip } : planChanges(info, replacement);
    if (plan === undefined) {
      report({ kind: 'unchanged', why: 'no linked order' });
      if (head.length > 0) yield head;
    } else if ('why' in plan) {
      report({ kind: 'skipped', why: plan.why });
      if (head.length > 0) yield head;
    } else if (plan.changes.length === 0) {
      report({ kind: 'unchanged', why: 'object already matches the order' });
      if (head.length > 0) yield head;
    } else {
      const rewritten = encodeHead(head.subarray(0, headEnd), scan.elements, plan.values, explicit);
      report({ kind: 'rewritten', changes: plan.changes });
      yield rewritten;
      if (headEnd < head.length) yield head.subarray(headEnd);
    }
    if (!exhausted) yield* rest(iterator);
  } finally {
    // A consumer that stops early (association aborted) must release the spool reader too.
    await iterator.return?.();
  }
}

async function* rest(iterator: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return;
    yield next.value;
  }
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

interface HeadElement {
  readonly tag: number;
  /** Offset of the element's first byte and of its value, end of its value. */
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

interface HeadScan {
  readonly elements: readonly HeadElement[];
  /** Where parsing stopped: the first unparsed byte (start of the first element after the head when complete). */
  readonly end: number;
  readonly complete: boolean;
}

/** Continues parsing top-level elements from `previous.end`; stops at the first tag after Study Instance UID. */
function scanHead(buf: Buffer, explicit: boolean, previous: HeadScan): HeadScan {
  const elements = [...previous.elements];
  let pos = previous.end;
  for (;;) {
    if (buf.length - pos < 8) return { elements, end: pos, complete: false };
    const tag = readTag(buf, pos);
    if (tag > StudyInstanceUID) return { elements, end: pos, complete: true };
    const header = elementHeader(buf, pos, explicit);
    if (header === undefined) return { elements, end: pos, complete: false };
    let end: number;
    if (header.length === UndefinedLength) {
      const skipped = skipUndefined(buf, header.valueStart, explicit && header.vr !== 'UN', 1);
      if (skipped === undefined) return { elements, end: pos, complete: false };
      end = skipped;
    } else {
      end = header.valueStart + header.length;
      if (end > buf.length) return { elements, end: pos, complete: false };
    }
    elements.push({ tag, start: pos, valueStart: header.valueStart, end });
    pos = end;
  }
}

function readTag(buf: Buffer, pos: number): number {
  return ((buf.readUInt16LE(pos) << 16) | buf.readUInt16LE(pos + 2)) >>> 0;
}

function elementHeader(buf: Buffer, pos: number, explicit: boolean): { vr: string; length: number; valueStart: number } | undefined {
  const tag = readTag(buf, pos);
  if (!explicit || tag >>> 16 === 0xfffe) return { vr: '', length: buf.readUInt32LE(pos + 4), valueStart: pos + 8 };
  const vr = buf.toString('latin1', pos + 4, pos + 6);
  if (!/^[A-Z]{2}$/.test(vr)) throw new RangeError('invalid VR in data set head');
  if (longExplicitVrs.has(vr)) {
    if (buf.length - pos < 12) return undefined;
    return { vr, length: buf.readUInt32LE(pos + 8), valueStart: pos + 12 };
  }
  return { vr, length: buf.readUInt16LE(pos + 6), valueStart: pos + 8 };
}

/**
 * End offset of an undefined-length value starting at `pos` (items up to the sequence delimiter), or
 * undefined when more bytes are needed. Undefined-length UN is encoded Implicit VR LE (PS3.5 6.2.2).
 */
function skipUndefined(buf: Buffer, pos: number, explicit: boolean, depth: number): number | undefined {
  if (depth > 32) throw new RangeError('nesting too deep in data set head');
  let p = pos;
  for (;;) {
    if (buf.length - p < 8) return undefined;
    const tag = readTag(buf, p);
    const length = buf.readUInt32LE(p + 4);
    p += 8;
    if (tag === SequenceDelimitationTag) return p;
    if (tag !== ItemTag) throw new RangeError('unexpected element inside a sequence');
    if (length !== UndefinedLength) {
      p += length;
      continue;
    }
    // An undefined-length item: elements until the item delimiter.
    for (;;) {
      if (buf.length - p < 8) return undefined;
      const t = readTag(buf, p);
      if (t === ItemDelimitationTag) {
        p += 8;
        break;
      }
      const h = elementHeader(buf, p, explicit);
      if (h === undefined) return undefined;
      if (h.length === UndefinedLength) {
        const e = skipUndefined(buf, h.valueStart, explicit && h.vr !== 'UN', depth + 1);
        if (e === undefined) return undefined;
        p = e;
      } else {
        p = h.valueStart + h.length;
      }
    }
  }
}

/** Character sets whose bytes the box can decode and encode for the reconciled attributes. */
function codecFor(specificCharacterSet: string): { decode(b: Buffer): string; encode(s: string): Buffer | undefined } | undefined {
  const terms = specificCharacterSet.split('\\').map((t) => t.trim());
  const first = terms[0] ?? '';
  if (terms.length > 1) return undefined; // ISO 2022 code extensions: values may switch sets mid-string
  if (first === '' || first === 'ISO_IR 6') {
    return { decode: (b) => b.toString('latin1'), encode: (s) => (/^[\x20-\x7e]*$/u.test(s) ? Buffer.from(s, 'latin1') : undefined) };
  }
  if (first === 'ISO_IR 100') {
    return {
      decode: (b) => b.toString('latin1'),
      encode: (s) => (/^[\x20-\x7e\xa0-\xff]*$/u.test(s) ? Buffer.from(s, 'latin1') : undefined),
    };
  }
  if (first === 'ISO_IR 192') {
    return { decode: (b) => b.toString('utf8'), encode: (s) => Buffer.from(s, 'utf8') };
  }
  return undefined;
}

function readHead(head: Buffer, elements: readonly HeadElement[]): DatasetHead {
  const raw = (tag: number): Buffer | undefined => {
    const e = elements.find((x) => x.tag === tag);
    return e === undefined ? undefined : head.subarray(e.valueStart, e.end);
  };
  const charset = trimPadding(DataDictionary.SpecificCharacterSet.vr, raw(SpecificCharacterSet)?.toString('latin1') ?? '');
  const codec = codecFor(charset);
  const patient: Partial<Record<ReconciledKeyword, string>> = {};
  for (const k of KEYWORDS) {
    const v = raw(ReconciledAttribute[k].tag);
    // Undecodable old values still count: they are compared byte-wise as latin1 and always replaced.
    if (v !== undefined) patient[k] = trimPadding(ReconciledAttribute[k].vr, (codec ?? codecFor('')!).decode(v));
  }
  return {
    specificCharacterSet: charset,
    accessionNumber: trimPadding(DataDictionary.AccessionNumber.vr, raw(AccessionNumber)?.toString('latin1') ?? ''),
    studyInstanceUid: trimPadding(DataDictionary.StudyInstanceUID.vr, raw(StudyInstanceUID)?.toString('latin1') ?? ''),
    patient,
  };
}

function same(keyword: ReconciledKeyword, a: string, b: string): boolean {
  if (keyword === 'PatientName')
    return personNameGroups(a).join('=').replace(/=+$/u, '') === personNameGroups(b).join('=').replace(/=+$/u, '');
  return a === b;
}

function planChanges(head: DatasetHead, want: Replacement): { values: Map<number, Buffer>; changes: AuditValueChange[] } | { why: string } {
  const codec = codecFor(head.specificCharacterSet);
  if (codec === undefined) return { why: `character set ${head.specificCharacterSet} is not rewritten` };
  const values = new Map<number, Buffer>();
  const changes: AuditValueChange[] = [];
  for (const k of KEYWORDS) {
    const next = want[k];
    if (next === undefined) continue;
    const old = head.patient[k] ?? '';
    if (same(k, old, next)) continue;
    const a = ReconciledAttribute[k];
    if (next.length > a.maxChars) return { why: `the order's ${k} is longer than its VR allows` };
    const bytes = codec.encode(next);
    if (bytes === undefined) return { why: `the order's ${k} cannot be written in the object's character set` };
    values.set(a.tag, bytes);
    changes.push({ attribute: k, old, new: next });
  }
  return { values, changes };
}

function encodeElement(tag: number, vr: Vr, value: Buffer, explicit: boolean): Buffer {
  // PN, LO, DA and CS pad to even length with a space (PS3.5 6.2).
  const padded = value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from(' ', 'latin1')]);
  const h = Buffer.alloc(8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  if (explicit) {
    h.write(vr, 4, 'latin1');
    h.writeUInt16LE(padded.length, 6);
  } else {
    h.writeUInt32LE(padded.length, 4);
  }
  return Buffer.concat([h, padded]);
}

/** The head with the given values replaced or inserted in tag order and group 0010's length fixed. */
function encodeHead(head: Buffer, elements: readonly HeadElement[], values: ReadonlyMap<number, Buffer>, explicit: boolean): Buffer {
  const vrOf = new Map<number, Vr>(KEYWORDS.map((k) => [ReconciledAttribute[k].tag, ReconciledAttribute[k].vr]));
  const pending = [...values.keys()].sort((a, b) => a - b);
  const parts: Array<{ tag: number; bytes: Buffer }> = [];
  const flushBefore = (tag: number): void => {
    while (pending.length > 0 && pending[0]! < tag) {
      const t = pending.shift()!;
      parts.push({ tag: t, bytes: encodeElement(t, vrOf.get(t)!, values.get(t)!, explicit) });
    }
  };
  let cursor = 0;
  for (const e of elements) {
    // Bytes between elements cannot exist in a well-formed head; keep them if they do.
    if (e.start > cursor) parts.push({ tag: -1, bytes: head.subarray(cursor, e.start) });
    flushBefore(e.tag);
    const replacement = values.get(e.tag);
    if (replacement !== undefined) {
      pending.splice(pending.indexOf(e.tag), 1);
      parts.push({ tag: e.tag, bytes: encodeElement(e.tag, vrOf.get(e.tag)!, replacement, explicit) });
    } else {
      parts.push({ tag: e.tag, bytes: head.subarray(e.start, e.end) });
    }
    cursor = e.end;
  }
  flushBefore(0xffffffff);
  if (cursor < head.length) parts.push({ tag: -1, bytes: head.subarray(cursor) });
  const groupLength = parts.find((p) => p.tag === PatientGroupLength);
  if (groupLength !== undefined) {
    const total = parts.filter((p) => p.tag > PatientGroupLength && p.tag >>> 16 === 0x0010).reduce((n, p) => n + p.bytes.length, 0);
    const copy = Buffer.from(groupLength.bytes);
    copy.writeUInt32LE(total, copy.length - 4);
    groupLength.bytes = copy;
  }
  return Buffer.concat(parts.map((p) => p.bytes));
}

/** The values an order says the object should carry (empty order values never erase what the object has). */
export function demographicsOf(order: Order): Replacement {
  const p = order.patient;
  const out: Replacement = {};
  if (order.downtime?.linked !== undefined && order.accessionNumber !== '') out.AccessionNumber = order.accessionNumber;
  if (p.name !== '') out.PatientName = p.name;
  if (p.id !== '') out.PatientID = p.id;
  if (p.issuer !== '') out.IssuerOfPatientID = p.issuer;
  if (p.birthDate !== '') out.PatientBirthDate = p.birthDate;
  if (p.sex !== '') out.PatientSex = p.sex;
  return out;
}

/** What happened to one instance, for the audit trail (values only in `changes`, for the encrypted chain). */
export interface ReconciliationRecord {
  readonly instance: SpooledInstance;
  readonly outcome: RewriteOutcome;
  readonly order?: Order;
}

export interface DemographicsReconcilerOptions {
  readonly orders: OrderLookup;
  readonly logger: Logger;
  readonly maxHeadBytes?: number;
}

/**
 * The forwarder's InstanceTransform for a route with `reconcileDemographics`. What was changed is kept
 * per spool record until the PACS confirmed that very copy (`forwarded`), so a change is recorded once,
 * for the object the PACS holds, not once per retry.
 */
export class DemographicsReconciler {
  readonly #o: DemographicsReconcilerOptions;
  readonly #pending = new Map<string, ReconciliationRecord>();
  static readonly MAX_PENDING = 10_000;

  constructor(options: DemographicsReconcilerOptions) {
    this.#o = options;
  }

  readonly transform: InstanceTransform = (instance, data) =>
    rewriteDemographics(data, instance.transferSyntaxUid, async (head) => this.#decide(instance, head), {
      ...(this.#o.maxHeadBytes === undefined ? {} : { maxHeadBytes: this.#o.maxHeadBytes }),
      onOutcome: (outcome) => this.#remember(instance, outcome),
    });

  readonly #orderOf = new Map<string, Order>();

  async #decide(instance: SpooledInstance, head: DatasetHead): Promise<Replacement | { readonly skip: string } | undefined> {
    const byAccession =
      head.accessionNumber === '' ? [] : await this.#o.orders.ordersByReference({ accessionNumber: head.accessionNumber });
    const orders =
      byAccession.length > 0 || head.studyInstanceUid === ''
        ? byAccession
        : await this.#o.orders.ordersByReference({ studyInstanceUid: head.studyInstanceUid });
    if (orders.length === 0) return undefined;
    const wanted = orders.map(demographicsOf);
    const first = JSON.stringify(wanted[0]);
    if (wanted.some((w) => JSON.stringify(w) !== first)) {
      // Two orders for one object that disagree about the patient: a person must decide.
      return { skip: `${orders.length} linked orders disagree about the patient` };
    }
    this.#orderOf.set(instance.key, orders[0]!);
    return wanted[0];
  }

  #remember(instance: SpooledInstance, outcome: RewriteOutcome): void {
    const order = this.#orderOf.get(instance.key);
    this.#orderOf.delete(instance.key);
    if (outcome.kind === 'unchanged') {
      this.#pending.delete(instance.key);
      return;
    }
    this.#o.logger.info('reconcile.outcome', {
      spoolKey: instance.key,
      outcome: outcome.kind,
      ...(outcome.kind === 'rewritten' ? { attributes: outcome.changes.map((c) => c.attribute).join(',') } : { why: outcome.why }),
    });
    if (this.#pending.size >= DemographicsReconciler.MAX_PENDING) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
    this.#pending.delete(instance.key);
    this.#pending.set(instance.key, { instance, outcome, ...(order === undefined ? {} : { order }) });
  }

  /** The PACS confirmed `instance`: what reconciliation did to that copy, once; undefined when it changed nothing. */
  forwarded(instance: SpooledInstance): ReconciliationRecord | undefined {
    const r = this.#pending.get(instance.key);
    if (r === undefined || r.instance.fileId !== instance.fileId) return undefined;
    this.#pending.delete(instance.key);
    return r;
  }
}
