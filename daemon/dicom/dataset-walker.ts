// Walks a data set's element structure as it streams past, without holding it: element headers are read,
// values are skipped (a few small top-level values are captured). At the end it says whether the data
// set was complete: a data set cut inside an element, an item or a sequence is refused rather than
// spooled and forwarded. Works for Implicit and Explicit VR Little Endian and for the encapsulated
// (compressed) syntaxes, whose data set encoding is Explicit VR Little Endian (PS3.5 A.4).
import { Buffer } from 'node:buffer';
import { TransferSyntax } from './transfer-syntax.ts';
import { ItemDelimitationTag, ItemTag, SequenceDelimitationTag, UndefinedLength, longExplicitVrs } from './element-encoding.ts';

const MAX_DEPTH = 32;
const MAX_CAPTURE = 256;

/** Deflated data sets cannot be walked without inflating them; the box does not accept them for storage. */
export function isWalkableTransferSyntax(uid: string): boolean {
  return uid !== '1.2.840.10008.1.2.1.99' && uid !== '1.2.840.10008.1.2.2';
}

type Frame = 'elements' | 'items';

export class DataSetWalker {
  readonly #explicit: boolean;
  readonly #captureTags: ReadonlySet<number>;
  readonly #stack: Frame[] = ['elements'];
  readonly #head = Buffer.alloc(12);
  #headFill = 0;
  #headNeed = 8;
  #skip = 0;
  #capture: { tag: number; parts: Buffer[] } | undefined;
  #error: string | undefined;
  #bytes = 0;
  /** Captured top-level values (text, trailing NUL/space padding removed). */
  readonly values = new Map<number, string>();

  constructor(transferSyntaxUid: string, captureTags: Iterable<number>) {
    this.#explicit = transferSyntaxUid !== TransferSyntax.ImplicitVRLittleEndian;
    this.#captureTags = new Set(captureTags);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get error(): string | undefined {
    return this.#error;
  }

  push(chunk: Uint8Array): void {
    if (this.#error !== undefined) return;
    this.#bytes += chunk.length;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    while (pos < buf.length) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, buf.length - pos);
        if (this.#capture !== undefined) this.#capture.parts.push(Buffer.from(buf.subarray(pos, pos + take)));
        this.#skip -= take;
        pos += take;
        if (this.#skip === 0) this.#endCapture();
        continue;
      }
      const take = Math.min(this.#headNeed - this.#headFill, buf.length - pos);
      buf.copy(this.#head, this.#headFill, pos, pos + take);
      this.#headFill += take;
      pos += take;
      if (this.#headFill < this.#headNeed) continue;
      this.#onHeader();
      if (this.#error !== undefined) return;
    }
  }

  #endCapture(): void {
    if (this.#capture === undefined) return;
    this.values.set(
      this.#capture.tag,
      Buffer.concat(this.#capture.parts)
        .toString('latin1')
        .replace(/[\0 ]+$/, ''),
    );
    this.#capture = undefined;
  }

  #onHeader(): void {
    const h = this.#head;
    const tag = ((h.readUInt16LE(0) << 16) | h.readUInt16LE(2)) >>> 0;
    const frame = this.#stack[this.#stack.length - 1];
    if (frame === 'items') {
      const length = h.readUInt32LE(4);
      this.#resetHead();
      if (tag === ItemTag) {
        if (length === UndefinedLength) this.#push('elements');
        else this.#skip = length;
      } else if (tag === SequenceDelimitationTag) {
        this.#stack.pop();
      } else {
        this.#error = 'unexpected element inside a sequence';
      }
      return;
    }
    if (tag === ItemDelimitationTag) {
      this.#resetHead();
      if (this.#stack.length === 1) this.#error = 'item delimiter outside an item';
      else this.#stack.pop();
      return;
    }
    let length: number;
    if (this.#explicit && tag >>> 16 !== 0xfffe) {
      const vr = h.toString('latin1', 4, 6);
      if (!/^[A-Z]{2}$/.test(vr)) {
        this.#error = 'invalid VR';
        return;
      }
      if (longExplicitVrs.has(vr)) {
        if (this.#headNeed === 8) {
          this.#headNeed = 12; // reserved 2 bytes + 4-byte length follow
          return;
        }
        length = h.readUInt32LE(8);
      } else {
        length = h.readUInt16LE(6);
      }
    } else {
      length = h.readUInt32LE(4);
    }
    this.#resetHead();
    if (length === UndefinedLength) {
      this.#push('items');
      return;
    }
    if (this.#stack.length === 1 && this.#captureTags.has(tag) && length <= MAX_CAPTURE) {
      this.#capture = { tag, parts: [] };
      if (length === 0) this.#endCapture();
    }
    this.#skip = length;
  }

  #push(frame: Frame): void {
    if (this.#stack.length >= MAX_DEPTH) this.#error = 'nesting too deep';
    else this.#stack.push(frame);
  }

  #resetHead(): void {
    this.#headFill = 0;
    this.#headNeed = 8;
  }

  /** Whether the bytes seen form a complete data set; `why` says what is wrong otherwise. */
  finish(): { readonly complete: true } | { readonly complete: false; readonly why: string } {
    if (this.#error !== undefined) return { complete: false, why: this.#error };
    if (this.#bytes === 0) return { complete: false, why: 'empty data set' };
    if (this.#headFill > 0 || this.#skip > 0) return { complete: false, why: 'data set ends inside an element' };
    if (this.#stack.length > 1) return { complete: false, why: 'data set ends inside a sequence or item' };
    return { complete: true };
  }
}
