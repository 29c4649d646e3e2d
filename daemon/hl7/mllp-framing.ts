// MLLP (HL7 v2 Minimal Lower Layer Protocol, HL7 v2.5.1 Appendix C): <VT> payload <FS><CR>.
// The decoder is incremental and exact: TCP may split a frame at any byte, or carry several frames
// in one chunk. It never holds more than `maxFrameBytes` of payload, and it scans each byte once.
import { EdgeError } from '../core/errors.ts';

export const Mllp = {
  StartBlock: 0x0b,
  EndBlock: 0x1c,
  CarriageReturn: 0x0d,
  LineFeed: 0x0a,
} as const;

const State = {
  /** Between frames: only a start block (or stray CR/LF some senders add) may come. */
  Idle: 0,
  /** Inside a frame, collecting payload until an end block. */
  InFrame: 1,
  /** Saw the end block; the next byte must be the carriage return. */
  AfterEndBlock: 2,
  /** A framing error happened: the stream cannot be resynchronised safely. */
  Failed: 3,
} as const;
type State = (typeof State)[keyof typeof State];

export interface MllpDecoderOptions {
  /** Largest payload (bytes between start and end block) accepted. */
  readonly maxFrameBytes: number;
}

export class MllpDecoder {
  readonly #maxFrameBytes: number;
  #state: State = State.Idle;
  /** Payload pieces of the frame being collected; joined once when the frame ends. */
  #pieces: Buffer[] = [];
  #length = 0;

  constructor(options: MllpDecoderOptions) {
    if (!Number.isInteger(options.maxFrameBytes) || options.maxFrameBytes < 1) {
      throw new TypeError('maxFrameBytes must be a positive integer');
    }
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  /** True while part of a frame is buffered (a connection closing now loses it). */
  get inFrame(): boolean {
    return this.#state === State.InFrame || this.#state === State.AfterEndBlock;
  }

  /**
   * Feed received bytes; returns the payloads of the frames completed by them, in order.
   * Throws EDGE_HL7_FRAME_INVALID or EDGE_HL7_FRAME_TOO_LARGE; after that the decoder stays failed,
   * because the byte stream's frame boundaries can no longer be trusted.
   */
  push(chunk: Uint8Array): Buffer[] {
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames: Buffer[] = [];
    let i = 0;
    while (i < data.length) {
      switch (this.#state) {
        case State.Failed:
          throw new EdgeError('EDGE_HL7_FRAME_INVALID', 'the MLLP stream already failed');
        case State.Idle: {
          const byte = data[i];
          if (byte === Mllp.StartBlock) {
            this.#state = State.InFrame;
          } else if (byte !== Mllp.CarriageReturn && byte !== Mllp.LineFeed) {
            this.#fail();
            throw new EdgeError('EDGE_HL7_FRAME_INVALID', undefined, { detail: { offset: i } });
          }
          i += 1;
          break;
        }
        case State.InFrame: {
          const end = data.indexOf(Mllp.EndBlock, i);
          const stop = end === -1 ? data.length : end;
          const take = stop - i;
          if (this.#length + take > this.#maxFrameBytes) {
            this.#fail();
            throw new EdgeError('EDGE_HL7_FRAME_TOO_LARGE', undefined, { detail: { maxFrameBytes: this.#maxFrameBytes } });
          }
          if (take > 0) {
            // A view, not a copy: the caller's chunk is not reused by node's socket.
            this.#pieces.push(data.subarray(i, stop));
            this.#length += take;
          }
          i = stop;
          if (end !== -1) {
            this.#state = State.AfterEndBlock;
            i += 1;
          }
          break;
        }
        case State.AfterEndBlock: {
          if (data[i] !== Mllp.CarriageReturn) {
            this.#fail();
            throw new EdgeError('EDGE_HL7_FRAME_INVALID', 'end block not followed by carriage return');
          }
          i += 1;
          frames.push(this.#pieces.length === 1 ? Buffer.from(this.#pieces[0]!) : Buffer.concat(this.#pieces, this.#length));
          this.#pieces = [];
          this.#length = 0;
          this.#state = State.Idle;
          break;
        }
      }
    }
    return frames;
  }

  #fail(): void {
    this.#state = State.Failed;
    this.#pieces = [];
    this.#length = 0;
  }
}

/** Wrap a payload in an MLLP frame. */
export function encodeMllpFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 3);
  out[0] = Mllp.StartBlock;
  out.set(payload, 1);
  out[payload.length + 1] = Mllp.EndBlock;
  out[payload.length + 2] = Mllp.CarriageReturn;
  return out;
}
