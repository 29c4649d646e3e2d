// A small seeded PRNG (mulberry32) for fuzz tests, so a failing input can be replayed: the seed is
// logged with the test (ava shows it beside a failure) and EDGE_TEST_SEED=<seed> runs that input again.
// Not for anything secret.
import type { ExecutionContext } from 'ava';
import { randomInt } from 'node:crypto';

export const SEED_VARIABLE = 'EDGE_TEST_SEED';

export interface SeededRandom {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  bytes(length: number): Buffer;
}

export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The seed from EDGE_TEST_SEED, else `fixedSeed`, else a fresh one per run. */
function chooseSeed(fixedSeed: number | undefined): number {
  const fromEnv = process.env[SEED_VARIABLE];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new TypeError(`${SEED_VARIABLE} must be an integer in 0..4294967295, got "${fromEnv}"`);
    return n;
  }
  return fixedSeed ?? randomInt(0, 0xffffffff);
}

export function seededRandom(t: ExecutionContext, fixedSeed?: number): SeededRandom {
  const seed = chooseSeed(fixedSeed);
  t.log(`random seed ${seed} (replay with ${SEED_VARIABLE}=${seed})`);
  const next = mulberry32(seed);
  const int = (maxExclusive: number): number => Math.floor(next() * maxExclusive);
  return {
    seed,
    next,
    int,
    bytes: (length) => {
      const b = Buffer.alloc(length);
      for (let i = 0; i < length; i++) b[i] = int(256);
      return b;
    },
  };
}
