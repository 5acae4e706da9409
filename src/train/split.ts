/**
 * @module split — one dataset split as the train/evaluate/intervene code reads it: the int32 tensors the dataset
 * stage writes into `<split>.safetensors` (src/data/README.md), held as flat typed arrays.
 */
import { readSafetensors } from '../io/safetensors.ts';
import { join } from 'node:path';

export const POSITION_NAMES = ['key', 'value', 'next_key', 'divider', 'query', 'answer'] as const;
export type PositionName = (typeof POSITION_NAMES)[number];

export interface Split {
  name: string;
  n: number;
  lmax: number;
  tokens: Int32Array;                 // (n, lmax), PAD = 0
  tokensKeyCorrupted: Int32Array;     // (n, lmax)
  tokensValueCorrupted: Int32Array;   // (n, lmax)
  lengths: Int32Array;                // (n)
  answers: Int32Array;                // (n)
  pos: Record<PositionName, Int32Array>;
}

export function loadSplit(dir: string, name: string): Split {
  const path = join(dir, `${name}.safetensors`);
  const { tensors } = readSafetensors(path);
  const get = (k: string): Int32Array => {
    const t = tensors[k];
    if (!t) throw new Error(`${path}: missing tensor '${k}'`);
    if (t.dtype !== 'I32') throw new Error(`${path}: tensor '${k}' is ${t.dtype}, expected I32`);
    return t.data as Int32Array;
  };
  const tok = tensors.tokens;
  if (!tok || tok.shape.length !== 2) throw new Error(`${path}: 'tokens' must be an [N, Lmax] tensor`);
  const [n, lmax] = tok.shape as [number, number];
  const pos = Object.fromEntries(POSITION_NAMES.map((p) => [p, get(`pos_${p}`)])) as Record<PositionName, Int32Array>;
  return {
    name, n, lmax,
    tokens: get('tokens'),
    tokensKeyCorrupted: get('tokens_key_corrupted'),
    tokensValueCorrupted: get('tokens_value_corrupted'),
    lengths: get('lengths'),
    answers: get('answers'),
    pos,
  };
}

/** Rows [start, start+count) of an (n, lmax) token matrix, trimmed to the longest sequence among them. */
export function batchTokens(s: Split, tokens: Int32Array, rows: ArrayLike<number>): { ids: Int32Array; batch: number; time: number } {
  let time = 1;
  for (let i = 0; i < rows.length; i++) time = Math.max(time, s.lengths[rows[i]!]!);
  const ids = new Int32Array(rows.length * time);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    ids.set(tokens.subarray(r * s.lmax, r * s.lmax + time), i * time);
  }
  return { ids, batch: rows.length, time };
}

export function gatherInt(src: Int32Array, rows: ArrayLike<number>): Int32Array {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]!]!;
  return out;
}
