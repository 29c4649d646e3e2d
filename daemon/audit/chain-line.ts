// The head of a chain line, read without parsing the whole record. recordLine() always writes
// `{"seq":N,"prevHash":"<64 hex>",...`, so export and verify can follow the chain from that prefix alone
// (a full JSON.parse per record was a large share of both). Anything else is not canonical: callers
// fall back to JSON.parse, so an odd line gets the same verdict and message as before.

const SEQ = '{"seq":';
const PREV = ',"prevHash":"';
const MAX_SEQ_DIGITS = 16;

/** Lower-case hex, as digest('hex') writes it. */
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102);

export interface ChainLink {
  readonly seq: number;
  readonly prevHash: string;
}

/** seq and prevHash from a canonical line, or undefined when the line does not start canonically. */
export function chainLinkOf(line: string): ChainLink | undefined {
  if (!line.startsWith(SEQ)) return undefined;
  let i = SEQ.length;
  const digitsFrom = i;
  while (i < line.length && i - digitsFrom <= MAX_SEQ_DIGITS) {
    const c = line.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === digitsFrom || i - digitsFrom > MAX_SEQ_DIGITS || (line.charCodeAt(digitsFrom) === 48 && i - digitsFrom > 1)) return undefined;
  if (!line.startsWith(PREV, i)) return undefined;
  const h = i + PREV.length;
  if (line.charCodeAt(h + 64) !== 34) return undefined;
  for (let k = h; k < h + 64; k++) if (!isHex(line.charCodeAt(k))) return undefined;
  return { seq: Number(line.slice(digitsFrom, i)), prevHash: line.slice(h, h + 64) };
}

const SEQ_BYTES = Buffer.from(SEQ, 'latin1');
const PREV_BYTES = Buffer.from(PREV, 'latin1');

/**
 * The same for a line still in bytes (verify reads records.jsonl as bytes): `prevHashAt` is where the
 * 64 prevHash characters start, for a byte comparison without making a string.
 */
export function chainLinkOfBytes(buf: Buffer, start: number, end: number): { seq: number; prevHashAt: number } | undefined {
  if (end - start < SEQ_BYTES.length + 1 + PREV_BYTES.length + 65) return undefined;
  if (buf.compare(SEQ_BYTES, 0, SEQ_BYTES.length, start, start + SEQ_BYTES.length) !== 0) return undefined;
  let i = start + SEQ_BYTES.length;
  const digitsFrom = i;
  let seq = 0;
  while (i < end && i - digitsFrom <= MAX_SEQ_DIGITS) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    i++;
  }
  if (i === digitsFrom || i - digitsFrom > MAX_SEQ_DIGITS || (buf[digitsFrom] === 48 && i - digitsFrom > 1) || !Number.isSafeInteger(seq))
    return undefined;
  if (i + PREV_BYTES.length + 65 > end) return undefined;
  if (buf.compare(PREV_BYTES, 0, PREV_BYTES.length, i, i + PREV_BYTES.length) !== 0) return undefined;
  const h = i + PREV_BYTES.length;
  if (buf[h + 64] !== 34) return undefined;
  for (let k = h; k < h + 64; k++) if (!isHex(buf[k]!)) return undefined;
  return { seq, prevHashAt: h };
}
