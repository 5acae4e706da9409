/**
 * @module rng — every random draw the task generators make goes through here.
 *
 * The generator is pure-rand's xoroshiro128+ (the only seedable PRNG the project uses; never Math.random). It is
 * fast, and its `jump()` moves 2^64 draws ahead, which gives each split an independent stream from one seed: the
 * dev set stays the same when the train size changes. Draws use only integer arithmetic and pure-rand's unbiased
 * rejection sampling, except `gamma` (Math.log / Math.sqrt). V8 ships its own fdlibm port for Math.log, so the same
 * seed gives the same bits on every platform for a given Node major.
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

export type Rng = JumpableRandomGenerator;

/** The stream for `seed`, jumped `stream` times (2^64 draws each), so streams never overlap in practice. */
export function rngFor(seed: number, stream = 0): Rng {
  const rng = xoroshiro128plus(seed);
  // xoroshiro's first outputs after a small seed are correlated with it; one jump also decorrelates stream 0.
  for (let i = 0; i <= stream; i++) rng.jump();
  return rng;
}

/** Uniform integer in [lo, hi], both included. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return uniformInt(rng, lo, hi);
}

/** Uniform float in [0, 1) with 53 random bits; takes the high bits of two draws (xoroshiro+'s low bits are its weakest). */
export function randFloat(rng: Rng): number {
  const hi = rng.next() >>> 6; // 26 bits
  const lo = rng.next() >>> 5; // 27 bits
  return (hi * 134217728 + lo) / 9007199254740992; // (hi·2^27 + lo) / 2^53
}

/** Standard normal by the Marsaglia polar method (no trig, so fewer libm calls to trust). */
export function normal(rng: Rng): number {
  for (;;) {
    const u = 2 * randFloat(rng) - 1;
    const v = 2 * randFloat(rng) - 1;
    const s = u * u + v * v;
    if (s > 0 && s < 1) return u * Math.sqrt((-2 * Math.log(s)) / s);
  }
}

/**
 * Gamma(shape, 1) by Marsaglia & Tsang (2000), "A simple method for generating gamma variables".
 * For shape < 1 it uses the boost Gamma(a) = Gamma(a + 1) · U^(1/a).
 */
export function gamma(rng: Rng, shape: number): number {
  if (!(shape > 0)) throw new Error(`gamma: shape must be > 0, got ${shape}`);
  if (shape < 1) {
    const u = randFloat(rng);
    return gamma(rng, shape + 1) * Math.pow(u === 0 ? Number.MIN_VALUE : u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = randFloat(rng);
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Dirichlet(alpha, …, alpha) over k outcomes: normalised Gamma(alpha) draws (numpy's method for alpha ≥ 1). */
export function dirichlet(rng: Rng, alpha: number, k: number): Float64Array {
  const p = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += p[i] = gamma(rng, alpha);
  for (let i = 0; i < k; i++) p[i]! /= sum;
  return p;
}

/** Cumulative sums of a probability vector, with the last entry forced to exactly 1 (no rounding gap at the top). */
export function cumulative(p: Float64Array): Float64Array {
  const c = new Float64Array(p.length);
  let s = 0;
  for (let i = 0; i < p.length; i++) c[i] = s += p[i]!;
  if (c.length > 0) c[c.length - 1] = 1;
  return c;
}

/** Index i with probability p[i], given cdf = cumulative(p); binary search, so 8192 outcomes cost 13 steps. */
export function categorical(rng: Rng, cdf: Float64Array, offset = 0, length = cdf.length - offset): number {
  const u = randFloat(rng);
  let lo = offset;
  let hi = offset + length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo - offset;
}

/**
 * A fixed pseudo-random number in [0, 1) for the pair (a, b) under `seed`, without storing a table: the held-out
 * (key, value) or (parent, child) mask is `pairUniform(seed, a, b) < fraction`. A 4096 × 4096 table would be 16 MiB
 * of draws; the hash gives the same Bernoulli(fraction) mask in O(1) memory. Mixer: murmur3's 32-bit finaliser.
 */
export function pairUniform(seed: number, a: number, b: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = fmix(h ^ a);
  h = fmix(Math.imul(h, 0xc2b2ae35) ^ b);
  return (h >>> 0) / 4294967296;
}

/** Whether the pair (a, b) is held out: (key, value) for AR, (parent label, child label) for ATR. */
export function isHeldOutPair(maskSeed: number, fraction: number, a: number, b: number): boolean {
  return fraction > 0 && pairUniform(maskSeed, a, b) < fraction;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
