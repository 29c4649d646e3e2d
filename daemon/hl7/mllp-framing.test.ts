import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { isEdgeError } from '../core/errors.ts';
import { encodeMllpFrame, MllpDecoder } from './mllp-framing.ts';
import { HL7_FIXTURES } from '../../test/support/paths.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

const FIXTURES = `${HL7_FIXTURES}/`;
const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.hl7'))
  .map((f) => readFileSync(FIXTURES + f));

function decodeAll(chunks: Buffer[], maxFrameBytes = 1 << 20): Buffer[] {
  const d = new MllpDecoder({ maxFrameBytes });
  return chunks.flatMap((c) => d.push(c));
}

test('every fixture split at every byte position decodes to exactly the payload', (t) => {
  for (const payload of fixtures) {
    const wire = encodeMllpFrame(payload);
    for (let i = 0; i <= wire.length; i++) {
      const frames = decodeAll([wire.subarray(0, i), wire.subarray(i)]);
      t.is(frames.length, 1);
      t.true(frames[0]!.equals(payload), `split at ${i}`);
    }
  }
});

test('split between end block and carriage return', (t) => {
  const wire = encodeMllpFrame(Buffer.from('MSH|^~\\&|A'));
  const d = new MllpDecoder({ maxFrameBytes: 100 });
  t.deepEqual(d.push(wire.subarray(0, wire.length - 1)), []);
  t.true(d.inFrame);
  const frames = d.push(wire.subarray(wire.length - 1));
  t.is(frames[0]!.toString(), 'MSH|^~\\&|A');
  t.false(d.inFrame);
});

test('random chunkings of many frames merged in one stream', (t) => {
  const all = Buffer.concat(fixtures.map((f) => encodeMllpFrame(f)));
  const { next } = seededRandom(t, 42);
  for (let round = 0; round < 300; round++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < all.length;) {
      const n = 1 + Math.floor(next() * 64);
      chunks.push(all.subarray(i, i + n));
      i += n;
    }
    const frames = decodeAll(chunks);
    t.is(frames.length, fixtures.length);
    frames.forEach((f, i) => t.true(f.equals(fixtures[i]!)));
  }
});

test('several frames in one chunk, with stray CR/LF between them', (t) => {
  const parts = fixtures.flatMap((f) => [encodeMllpFrame(f), Buffer.from('\r\n')]);
  const frames = decodeAll([Buffer.concat(parts)]);
  t.is(frames.length, fixtures.length);
});

test('an empty frame is a frame (the parser rejects it later)', (t) => {
  t.deepEqual(
    decodeAll([encodeMllpFrame(Buffer.alloc(0))]).map((f) => f.length),
    [0],
  );
});

test('garbage outside a frame fails and stays failed', (t) => {
  const d = new MllpDecoder({ maxFrameBytes: 100 });
  const err = t.throws(() => d.push(Buffer.from('GET / HTTP/1.1\r\n')));
  t.true(isEdgeError(err, 'EDGE_HL7_FRAME_INVALID'));
  t.throws(() => d.push(encodeMllpFrame(Buffer.from('MSH|^~\\&|'))), { message: /already failed/ });
});

test('end block followed by anything but CR is invalid', (t) => {
  const d = new MllpDecoder({ maxFrameBytes: 100 });
  const err = t.throws(() => d.push(Buffer.from('\x0bMSH\x1cX')));
  t.true(isEdgeError(err, 'EDGE_HL7_FRAME_INVALID'));
});

test('random garbage never throws anything but an EdgeError and never returns oversize frames', (t) => {
  const { next } = seededRandom(t, 7);
  for (let round = 0; round < 500; round++) {
    const bytes = Buffer.alloc(1 + Math.floor(next() * 200));
    for (let i = 0; i < bytes.length; i++) bytes[i] = [0x0b, 0x1c, 0x0d, 0x41, Math.floor(next() * 256)][Math.floor(next() * 5)]!;
    const d = new MllpDecoder({ maxFrameBytes: 16 });
    try {
      for (const f of d.push(bytes)) t.true(f.length <= 16);
    } catch (err) {
      t.true(isEdgeError(err, 'EDGE_HL7_FRAME_INVALID') || isEdgeError(err, 'EDGE_HL7_FRAME_TOO_LARGE'));
    }
  }
});

test('a 10 MB frame against a 1 MiB cap fails as soon as the cap is passed', (t) => {
  const cap = 1 << 20;
  const d = new MllpDecoder({ maxFrameBytes: cap });
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let fed = 0;
  d.push(Buffer.from([0x0b]));
  let error: unknown;
  try {
    while (fed < 10 * 1024 * 1024) {
      d.push(chunk);
      fed += chunk.length;
    }
  } catch (err) {
    error = err;
  }
  t.true(isEdgeError(error, 'EDGE_HL7_FRAME_TOO_LARGE'));
  // The failing chunk is the one that crosses the cap: nothing beyond it was buffered.
  t.is(fed, cap);
});

test('a frame of exactly the cap is accepted', (t) => {
  const payload = Buffer.alloc(1000, 0x41);
  t.is(decodeAll([encodeMllpFrame(payload)], 1000).length, 1);
  t.throws(() => decodeAll([encodeMllpFrame(payload)], 999), { code: 'EDGE_HL7_FRAME_TOO_LARGE' });
});

test('decoding one large frame in small chunks is linear (no rescans)', (t) => {
  const payload = Buffer.alloc(4 * 1024 * 1024, 0x41);
  const wire = encodeMllpFrame(payload);
  const d = new MllpDecoder({ maxFrameBytes: 8 * 1024 * 1024 });
  const started = process.hrtime.bigint();
  let frames: Buffer[] = [];
  for (let i = 0; i < wire.length; i += 1024) frames = frames.concat(d.push(wire.subarray(i, i + 1024)));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.is(frames.length, 1);
  t.true(frames[0]!.equals(payload));
  t.true(ms < 2000, `took ${ms} ms`);
});
