/**
 * @module examples — one split's documents in memory, and how they become the tensors of `<split>.safetensors`.
 *
 * Documents are kept ragged (all tokens back to back plus offsets), never as per-token objects: 100k ATR documents
 * of up to ~1000 tokens would otherwise need gigabytes. Padding to [N, Lmax] happens once, when the tensors are made.
 * A counterfactual differs from its original in one token, so only the replacement id is stored per example.
 */
import { type Tensor, i32 } from '../io/safetensors.ts';
import type { Rng } from './rng.ts';

/** Position names, in the order of the pos_* tensors. See README.md for their meaning in AR and ATR. */
export const POSITIONS = ['key', 'value', 'next_key', 'divider', 'query', 'answer'] as const;
export type Position = (typeof POSITIONS)[number];

/** What a task generator needs to produce one split. */
export interface SplitSpec {
  n: number;                                  // documents to generate
  rng: Rng;                                   // this split's stream
  heldOut: 'exclude' | 'only';                // query non-held-out pairs (train/dev/test) or only held-out (gen)
  maskSeed: number;                           // seed of the held-out mask
  excludeContext: boolean;                    // corruptions avoid ids already in the document
  progress?: (done: number) => void;          // called every 1024 documents
}

export class SplitBuffer {
  tokens: Int32Array;
  readonly offsets: Int32Array;     // [N + 1]: document i is tokens[offsets[i] .. offsets[i + 1])
  readonly answers: Int32Array;     // [N] the token to predict at pos_query
  readonly pos: Record<Position, Int32Array>;
  readonly keyCorrupted: Int32Array;   // [N] the token that replaces tokens[pos_key] in the key counterfactual
  readonly valueCorrupted: Int32Array; // [N] the token that replaces tokens[pos_value] in the value counterfactual
  n = 0;

  constructor(readonly size: number, tokensHint: number) {
    this.tokens = new Int32Array(Math.max(16, tokensHint));
    this.offsets = new Int32Array(size + 1);
    this.answers = new Int32Array(size);
    this.pos = Object.fromEntries(POSITIONS.map((p) => [p, new Int32Array(size)])) as Record<Position, Int32Array>;
    this.keyCorrupted = new Int32Array(size);
    this.valueCorrupted = new Int32Array(size);
  }

  /** Room for a document of up to `len` tokens at tokens[start()…]; grows by doubling. */
  reserve(len: number): number {
    const start = this.offsets[this.n]!;
    if (start + len > this.tokens.length) {
      const grown = new Int32Array(Math.max(start + len, this.tokens.length * 2));
      grown.set(this.tokens.subarray(0, start));
      this.tokens = grown;
    }
    return start;
  }

  /** Closes document n after the generator wrote `len` tokens at reserve()'s offset and filled the per-example fields. */
  commit(len: number): void {
    this.offsets[this.n + 1] = this.offsets[this.n]! + len;
    this.n++;
  }

  length(i: number): number {
    return this.offsets[i + 1]! - this.offsets[i]!;
  }

  /** Tokens of document i (a view, not a copy). */
  doc(i: number): Int32Array {
    return this.tokens.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }

  maxLength(): number {
    let m = 0;
    for (let i = 0; i < this.n; i++) m = Math.max(m, this.length(i));
    return m;
  }
}

/** The tensors of `<split>.safetensors`, every one int32, documents padded with PAD = 0 to `width`. */
export function splitTensors(s: SplitBuffer, width: number): Record<string, Tensor> {
  const N = s.n;
  const tokens = new Int32Array(N * width); // [N, width]; a fresh Int32Array is all zeros, and PAD = 0
  const lengths = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const len = s.length(i);
    if (len > width) throw new Error(`splitTensors: document ${i} has ${len} tokens, width is ${width}`);
    tokens.set(s.doc(i), i * width);
    lengths[i] = len;
  }
  const keyC = tokens.slice();
  const valueC = tokens.slice();
  for (let i = 0; i < N; i++) {
    keyC[i * width + s.pos.key[i]!] = s.keyCorrupted[i]!;
    valueC[i * width + s.pos.value[i]!] = s.valueCorrupted[i]!;
  }
  const t: Record<string, Tensor> = {
    tokens: i32([N, width], tokens),
    lengths: i32([N], lengths),
    answers: i32([N], s.answers.slice(0, N)),
    tokens_key_corrupted: i32([N, width], keyC),
    tokens_value_corrupted: i32([N, width], valueC),
  };
  for (const p of POSITIONS) t[`pos_${p}`] = i32([N], s.pos[p].slice(0, N));
  return t;
}

export interface Summary { mean: number; median: number; p90: number; max: number }

/** mean / median / p90 / max with numpy's default linear interpolation, rounded to 4 decimals for stable JSON. */
export function summarize(values: Int32Array): Summary {
  if (values.length === 0) return { mean: 0, median: 0, p90: 0, max: 0 };
  const s = values.slice().sort();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!;
  const q = (f: number): number => {
    const x = f * (s.length - 1);
    const lo = Math.floor(x);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo]! + (s[hi]! - s[lo]!) * (x - lo);
  };
  return { mean: round4(sum / s.length), median: round4(q(0.5)), p90: round4(q(0.9)), max: s[s.length - 1]! };
}

export function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** Length and key→value distance statistics, plus how often a corruption collided with a token already in context. */
export function splitStats(s: SplitBuffer): Record<string, unknown> {
  const lengths = new Int32Array(s.n);
  const dist = new Int32Array(s.n);
  let keyCollisions = 0;
  let valueCollisions = 0;
  for (let i = 0; i < s.n; i++) {
    lengths[i] = s.length(i);
    dist[i] = s.pos.value[i]! - s.pos.key[i]!;
    const doc = s.doc(i);
    const ctxEnd = s.pos.divider[i]!; // the context is tokens[1 .. divider)
    if (occurs(doc, 1, ctxEnd, s.keyCorrupted[i]!)) keyCollisions++;
    if (occurs(doc, 1, ctxEnd, s.valueCorrupted[i]!)) valueCollisions++;
  }
  return {
    n: s.n,
    length: summarize(lengths),
    keyValueDistance: summarize(dist),
    keyCorruptionCollisionRate: round4(s.n ? keyCollisions / s.n : 0),
    valueCorruptionCollisionRate: round4(s.n ? valueCollisions / s.n : 0),
  };
}

function occurs(doc: Int32Array, from: number, to: number, tok: number): boolean {
  for (let j = from; j < to; j++) if (doc[j] === tok) return true;
  return false;
}
