/**
 * @module memory — resuming a forward pass part-way along the sequence, for the intervention sweep: a patched row
 * repeats its example's corrupted run, bit for bit, at every position before the patch. A run with a recording
 * `Memory` has each resumable mixer keep what a later pass needs to start at a position (its short conv's inputs,
 * its recurrent state after the step before); a pass with a resuming `Memory` covers positions [start, start + T)
 * of recorded rows `rows[b]`, and each mixer continues from what was kept there. Position-wise parts of a block need
 * nothing. The outputs are those of the full pass at those positions, bit for bit (tested in
 * tests/models/memory.test.ts), and positions before `start` cost nothing.
 *
 * States are kept only at the starts the recording was told about (`starts`): a state is B·T·(H·Dh² or E·S)
 * float64 values for every step, too much to keep whole for large models.
 *
 * Mixers that support this say so (Mixer.resumable); a block refuses a resuming pass through any other.
 */

/** What one layer's mixer sees of the memory. */
export type LayerMemory =
  | {
      readonly mode: 'record';
      /** Keep float32 values (B, T, width), e.g. the conv's inputs. */
      keep(name: string, data: Float32Array, width: number): void;
      /** Where to put the state (width values) after step t of row b, the same buffer on every call; null when no pass will start at t + 1. */
      keepStates(name: string, width: number): (b: number, t: number) => Float64Array | null;
    }
  | {
      readonly mode: 'resume';
      readonly start: number;
      /** Kept float32 values at positions start − n … start − 1 of each row, (B, n, width); zeros before position 0. */
      before(name: string, n: number): Float32Array;
      /** The kept state after step start − 1 of each row, (B, width), or null when start = 0 (the initial state). */
      stateBefore(name: string): Float64Array | null;
    };

interface KeptValues { data: Float32Array; width: number }
interface KeptStates { width: number; at: Map<number, Float64Array> } // by row · T + step

/** Everything the mixers kept in one recorded run of B rows and T positions. */
export class Memory {
  private readonly values = new Map<string, KeptValues>();
  private readonly states = new Map<string, KeptStates>();
  private B = 0;
  private T = 0;

  /**
   * A recording view for a run of B rows and T positions. `starts(b)`: the positions at which later passes may
   * resume row b (default: every position); states are kept for the steps just before them.
   */
  recording(B: number, T: number, starts?: (b: number) => Iterable<number>): { forLayer(layer: number): LayerMemory } {
    this.B = B;
    this.T = T;
    const wanted = new Uint8Array(B * T);
    for (let b = 0; b < B; b++) {
      if (!starts) { wanted.fill(1, b * T, (b + 1) * T); continue; }
      for (const s of starts(b)) if (s >= 1 && s <= T) wanted[b * T + s - 1] = 1;
    }
    return {
      forLayer: (layer) => ({
        mode: 'record',
        keep: (name, data, width) => {
          if (data.length !== B * T * width) throw new Error(`memory: ${name}@${layer} holds ${data.length} values, not ${B}·${T}·${width}`);
          this.values.set(`${layer}:${name}`, { data, width });
        },
        keepStates: (name, width) => {
          const kept: KeptStates = { width, at: new Map() };
          this.states.set(`${layer}:${name}`, kept);
          return (b, t) => { // one buffer per (row, step), which a kernel may fill in parts (DeltaNet: head by head)
            if (!wanted[b * T + t]) return null;
            let s = kept.at.get(b * T + t);
            if (!s) kept.at.set(b * T + t, (s = new Float64Array(width)));
            return s;
          };
        },
      }),
    };
  }

  /** A resuming view: row b of the pass is recorded row rows[b], from position `start` on. */
  resuming(start: number, rows: Int32Array): { forLayer(layer: number): LayerMemory } {
    for (const r of rows) if (!(r >= 0 && r < this.B)) throw new Error(`memory: row ${r} is outside the ${this.B} recorded rows`);
    if (!(start >= 0 && start <= this.T)) throw new Error(`memory: start ${start} is outside [0, ${this.T}]`);
    const T = this.T;
    return {
      forLayer: (layer) => ({
        mode: 'resume',
        start,
        before: (name, n) => {
          const k = this.values.get(`${layer}:${name}`);
          if (!k) throw new Error(`memory: nothing kept for ${name} of layer ${layer}`);
          const w = k.width, out = new Float32Array(rows.length * n * w);
          rows.forEach((r, b) => {
            for (let j = 0; j < n; j++) {
              const t = start - n + j;
              if (t >= 0) out.set(k.data.subarray((r * T + t) * w, (r * T + t + 1) * w), (b * n + j) * w);
            }
          });
          return out;
        },
        stateBefore: (name) => {
          if (start === 0) return null;
          const k = this.states.get(`${layer}:${name}`);
          if (!k) throw new Error(`memory: nothing kept for ${name} of layer ${layer}`);
          const out = new Float64Array(rows.length * k.width);
          rows.forEach((r, b) => {
            const s = k.at.get(r * T + start - 1);
            if (!s) throw new Error(`memory: the state of ${name}@${layer} before position ${start} of row ${r} was not kept`);
            out.set(s, b * k.width);
          });
          return out;
        },
      }),
    };
  }
}
