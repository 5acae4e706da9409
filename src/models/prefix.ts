/**
 * @module prefix — prefix reuse for the forward-only recurrent kernels (Mamba's selective scan, DeltaNet's delta
 * rule), for the intervention sweep: there, every patched row repeats its example's corrupted run up to the patched
 * position, bit for bit, at every layer from the patched one on. Inside `withPrefixCache(cache, 'record', …)` a
 * kernel call keeps, for each batch row, its inputs, its state after every step and its outputs; inside
 * `withPrefixCache(cache, 'reuse', …)` a call looks each row up and, if a kept row had the same inputs for its
 * first p steps, copies those p outputs and starts at step p from the kept state. The kernels are deterministic
 * and a step depends only on the state and that step's inputs, so the outputs are the same bit for bit (tested in
 * tests/models/prefix.test.ts); only the work on the shared prefix is skipped.
 *
 * A row's inputs are compared with every kept row whose first step hashes alike, so two kernels, layers or
 * parameter sets never mix: the caller puts anything else the step depends on (weights, sizes) in the tag.
 */

/** One kept row: inputs (T × width float32), the state after each step (T × stateSize float64), outputs (T × outWidth). */
export interface KeptRow { T: number; inputs: Float32Array; states: Float64Array; outputs: Float32Array }

export class PrefixCache {
  /** Per tag: a kept row for each (number of steps s, hash of its first s steps). Rows sharing s steps share the state after them, so any one will do. */
  private readonly rows = new Map<string, Map<string, KeptRow>>();
  mode: 'record' | 'reuse' | 'off' = 'off';
  private kept = 0;

  /** Keep `row` (its arrays are not copied), found later by any number of its leading steps. */
  add(tag: string, width: number, row: KeptRow): void {
    let byPrefix = this.rows.get(tag);
    if (!byPrefix) this.rows.set(tag, (byPrefix = new Map()));
    const h = prefixHashes(row.inputs, 0, width, row.T);
    for (let s = 1; s <= row.T; s++) if (!byPrefix.has(`${s}:${h[s - 1]}`)) byPrefix.set(`${s}:${h[s - 1]}`, row);
    this.kept++;
  }

  /** A kept row that shares the most leading steps with `inputs` (T × width, from `off`), and how many; null if none. */
  longest(tag: string, width: number, T: number, inputs: Float32Array, off: number): { row: KeptRow; steps: number } | null {
    const byPrefix = this.rows.get(tag);
    if (!byPrefix) return null;
    const h = prefixHashes(inputs, off, width, T);
    // Longest first; a hash match is confirmed bit for bit, so a collision only costs the shorter prefix.
    for (let s = T; s >= 1; s--) {
      const row = byPrefix.get(`${s}:${h[s - 1]}`);
      if (row && row.T >= s && sameWords(inputs, off, row.inputs, 0, s * width)) return { row, steps: s };
    }
    return null;
  }

  /** Rows kept so far. */
  get size(): number {
    return this.kept;
  }

  private readonly ids = new Map<number, { parts: Float32Array[]; id: number }[]>();
  /** A number for these arrays' contents, the same for bit-equal contents only: for a tag that names weights exactly. */
  idOf(...parts: Float32Array[]): number {
    let h = 0;
    for (const x of parts) h = Math.imul(h ^ hashBits(x, 0, x.length), 0x01000193);
    const list = this.ids.get(h) ?? [];
    const same = list.find((e) => e.parts.length === parts.length && e.parts.every((x, k) => x.length === parts[k]!.length && sameWords(x, 0, parts[k]!, 0, x.length)));
    if (same) return same.id;
    const id = [...this.ids.values()].reduce((a, l) => a + l.length, 0);
    list.push({ parts: parts.map((x) => x.slice()), id });
    this.ids.set(h, list);
    return id;
  }
}

/** FNV-1a of the first s steps of a row, for s = 1…T (running over its bit patterns). */
function prefixHashes(x: Float32Array, off: number, width: number, T: number): Uint32Array {
  const u = new Uint32Array(x.buffer, x.byteOffset + 4 * off, T * width), out = new Uint32Array(T);
  let h = 0x811c9dc5;
  for (let t = 0, j = 0; t < T; t++) {
    for (const end = j + width; j < end; j++) h = Math.imul(h ^ u[j]!, 0x01000193);
    out[t] = h >>> 0;
  }
  return out;
}

function sameWords(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset + 4 * aOff, n), y = new Uint32Array(b.buffer, b.byteOffset + 4 * bOff, n);
  for (let j = 0; j < n; j++) if (x[j] !== y[j]) return false;
  return true;
}

let active: PrefixCache | null = null;

/** Run `fn` with `cache` in `mode` for the recurrent kernels it calls (restored afterwards, also on a throw). */
export function withPrefixCache<R>(cache: PrefixCache, mode: 'record' | 'reuse', fn: () => R): R {
  const before = active, beforeMode = cache.mode;
  active = cache;
  cache.mode = mode;
  try {
    return fn();
  } finally {
    active = before;
    cache.mode = beforeMode;
  }
}

/** The cache the forward-only kernels should use now, or null. */
export function activePrefixCache(): PrefixCache | null {
  return active && active.mode !== 'off' ? active : null;
}

/** FNV-1a over the bit patterns of x[off…off+n). */
export function hashBits(x: Float32Array, off: number, n: number): number {
  const u = new Uint32Array(x.buffer, x.byteOffset + 4 * off, n);
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * Per-row start of a kernel call under the active cache. `inputs` (B × T × width) are the rows' step inputs as the
 * kernel reads them. Reuse: `start[b]` steps of row b are known, their outputs already copied into `outputs`
 * (B × T × outWidth) and the state after them is `init[b]` (stateSize; read only). Record: `save`
 * (B × T × stateSize) is to be filled with the state after every step, and `keep()` called once the outputs are final.
 */
export interface RowStarts {
  start: Int32Array;
  init: (Float64Array | null)[];
  save: Float64Array | null;
  keep(): void;
}

export function rowStarts(tag: string, B: number, T: number, width: number, stateSize: number, outWidth: number,
  inputs: Float32Array, outputs: Float32Array): RowStarts | null {
  const cache = activePrefixCache();
  if (!cache) return null;
  const start = new Int32Array(B);
  if (cache.mode === 'record') {
    const save = new Float64Array(B * T * stateSize);
    return {
      start, init: [], save,
      keep() {
        for (let b = 0; b < B; b++) {
          cache.add(tag, width, {
            T,
            inputs: inputs.slice(b * T * width, (b + 1) * T * width),
            states: save.subarray(b * T * stateSize, (b + 1) * T * stateSize),
            outputs: outputs.slice(b * T * outWidth, (b + 1) * T * outWidth),
          });
        }
      },
    };
  }
  const init: (Float64Array | null)[] = new Array<Float64Array | null>(B).fill(null);
  for (let b = 0; b < B; b++) {
    const hit = cache.longest(tag, width, T, inputs, b * T * width);
    if (!hit) continue;
    start[b] = hit.steps;
    init[b] = hit.row.states.subarray((hit.steps - 1) * stateSize, hit.steps * stateSize);
    outputs.set(hit.row.outputs.subarray(0, hit.steps * outWidth), b * T * outWidth);
  }
  return { start, init, save: null, keep() {} };
}

/** Per-step slices of several (N × w) arrays side by side, (N × Σw): what each of the N (row, step)s reads. */
export function stepInputs(N: number, parts: readonly (readonly [Float32Array, number])[]): Float32Array {
  const width = parts.reduce((a, [, w]) => a + w, 0);
  const out = new Float32Array(N * width);
  for (let n = 0; n < N; n++) {
    let at = n * width;
    for (const [x, w] of parts) { out.set(x.subarray(n * w, (n + 1) * w), at); at += w; }
  }
  return out;
}
