/**
 * @module passes — the patched forward passes of one chunk of the sweep (sweep.ts picks the cells; this runs them):
 * one row per cell, resumed from the corrupted residual stream entering the patched block where the model allows,
 * position-wise tails through one block, and block-input patches shared between the sites that lead to them.
 */
import { tf, type Tensor3D } from '../models/tf.ts';
import type { Hooks, Patch, SiteName } from '../models/sites.ts';
import type { TrainableLM } from '../train/loop.ts';
import { gatherInt } from '../train/split.ts';
import type { Memory } from '../models/memory.ts';
import { DeltaBlock } from './delta-sweep.ts';

/** Activations of one run at every site, (m, T, C) row-major on the host, by `${layer}:${site}`. */
export type Acts = Map<string, { layer: number; site: SiteName; data: Float32Array; C: number }>;

/** One chunk of examples: m rows, token ids (m, T) cut after the last query, and each row's query and answer. */
export interface Chunk { m: number; T: number; query: Int32Array; answers: Int32Array; clean: Int32Array; base: Int32Array }

/** Whether a[aOff…aOff+C) and b[bOff…bOff+C) hold the same float32 bit patterns (so ±0 and NaNs are told apart). */
export function sameBits(a: Float32Array, aOff: number, b: Float32Array, bOff: number, C: number): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset + 4 * aOff, C), y = new Uint32Array(b.buffer, b.byteOffset + 4 * bOff, C);
  for (let j = 0; j < C; j++) if (x[j] !== y[j]) return false;
  return true;
}

/** FNV-1a over the bit patterns of x[off…off+n). */
function hashBits(x: Float32Array, off: number, n: number): number {
  const u = new Uint32Array(x.buffer, x.byteOffset + 4 * off, n);
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return h >>> 0;
}

export interface Readout { p: Float32Array; logit: Float32Array }

/** A model that can resume a forward pass from the residual stream entering a block (src/models/lm.ts). */
export interface ResumableLM extends TrainableLM {
  /** With `at`, hidden states only at row b's position at[b]: (B, 1, d). */
  forwardFrom(layer: number, residual: Tensor3D, hooks?: Hooks, at?: Int32Array): Tensor3D;
  runBlock(layer: number, residual: Tensor3D, hooks?: Hooks): Tensor3D;
  positionwiseFrom(layer: number, site: SiteName): boolean;
  /** Whether blocks layer… can run part of a sequence from a memory (src/models/memory.ts). */
  resumableFrom(layer: number): boolean;
}

const resumable = (m: TrainableLM): m is ResumableLM => {
  const r = m as Partial<ResumableLM>;
  return typeof r.forwardFrom === 'function' && typeof r.runBlock === 'function' && typeof r.positionwiseFrom === 'function' &&
    typeof r.resumableFrom === 'function';
};

/** p(answer) and the answer's logit at row i's position `at[i]` (its query) of the final hidden states (B, T, d). */
export function readout(model: TrainableLM, hidden: () => Tensor3D, at: Int32Array, answers: Int32Array): Readout {
  const [p, l] = tf.tidy(() => {
    const logits = model.logitsAt(hidden(), Int32Array.from(at, (_, i) => i), at);
    const onehot = tf.oneHot(tf.tensor1d(answers, 'int32'), logits.shape[1]).toFloat();
    return [tf.sum(tf.mul(tf.softmax(logits), onehot), 1), tf.sum(tf.mul(logits, onehot), 1)];
  });
  const out = { p: p!.dataSync() as Float32Array, logit: l!.dataSync() as Float32Array };
  p!.dispose(); l!.dispose();
  return out;
}

const siteKey = (layer: number, site: SiteName) => `${layer}:${site}`;

/** One patched cell: position index k, example row i of the chunk, time t = that position in row i. */
export interface Cell { k: number; i: number; t: number }
/** A cell whose patched value is given explicitly (C floats of `src` from `off`). */
export interface ValuedCell extends Cell { src: Float32Array; off: number }

export type Put = (cell: Cell, p: number, logit: number) => void;

/** Runs the patched passes of one chunk. */
export class Executor {
  /** Results of block-input patches by `${layer}:${i}:${t}:${hash of the value}`: shared by every site that leads there. */
  private readonly known = new Map<string, { value: Float32Array; p: number; logit: number }[]>();
  private readonly nLayers: number;
  /** The model, when it can resume from a block's input: otherwise every pass runs from the tokens. */
  private readonly fast: ResumableLM | null;
  /** DeltaNet models: their blocks specialised for patched passes (delta-sweep.ts) by layer, made on first use. */
  private readonly deltas = new Map<number, DeltaBlock | null>();
  private readonly specialise: boolean;

  /** `memory`: what the corrupted run's mixers kept, so that passes can also start part-way along the sequence. */
  constructor(
    private readonly model: TrainableLM,
    private readonly c: Chunk,
    private readonly corr: Acts,
    private readonly clean: Acts,
    private readonly memory: Memory | null = null,
    specialise = true,
  ) {
    this.fast = resumable(model) ? model : null;
    let L = 0;
    for (const a of corr.values()) L = Math.max(L, a.layer + 1);
    this.nLayers = L;
    // Only for models that can resume from a block (LanguageModel): the specialised blocks replace those passes.
    this.specialise = specialise && this.fast !== null;
  }

  /** Releases what the passes keep between calls (the specialised blocks' weights). */
  dispose(): void {
    for (const b of this.deltas.values()) b?.dispose();
    this.deltas.clear();
  }

  /** Block `layer` specialised (DeltaNet), or null; by default the last block. */
  private deltaBlock(layer = this.nLayers - 1): DeltaBlock | null {
    if (!this.specialise) return null;
    if (!this.deltas.has(layer)) this.deltas.set(layer, DeltaBlock.create(this.model, this.c, this.corr, layer));
    return this.deltas.get(layer)!;
  }

  /** Patch `cells` of (layer, site) with their clean values and report each cell's readout. */
  site(layer: number, site: SiteName, cells: Cell[], put: Put): void {
    if (cells.length === 0) return;
    const src = this.clean.get(siteKey(layer, site))!;
    const valued = cells.map((x) => ({ ...x, src: src.data, off: (x.i * this.c.T + x.t) * src.C }));
    if (this.fast && site === 'block_input') return this.blockInput(layer, valued, put);
    if (this.fast && this.fast.positionwiseFrom(layer, site)) return this.tail(layer, site, valued, put);
    const rowsOf = Int32Array.from(cells, (x) => x.i);
    const out = this.pass(layer, rowsOf, { layer, site, cells: valued, C: src.C, row: Int32Array.from(cells, (_, j) => j) });
    cells.forEach((x, j) => put(x, out.p[j]!, out.logit[j]!));
  }

  /**
   * A position-wise tail site: one row per example with all its cells patched at once, through this block only;
   * the block's output at each patched position is what that cell's own patch would give there (and the other
   * positions keep the corrupted values), so each cell continues as a patch of the next block's input.
   */
  private tail(layer: number, site: SiteName, cells: ValuedCell[], put: Put): void {
    const { T, query } = this.c;
    const last = layer === this.nLayers - 1;
    // Last layer: the readout sees the query position only, so a cell elsewhere changes nothing.
    const live = last ? cells.filter((x) => x.t === query[x.i]) : cells;
    if (live.length === 0) return;
    const examples = [...new Set(live.map((x) => x.i))];
    const slot = new Map(examples.map((i, j) => [i, j]));
    // Two position names at the same time (e.g. next key = divider) are one cell with one value.
    const seen = new Set<string>(), unique: ValuedCell[] = [];
    for (const x of live) if (!seen.has(`${x.i}:${x.t}`)) { seen.add(`${x.i}:${x.t}`); unique.push(x); }
    const C = this.clean.get(siteKey(layer, site))!.C;
    const patch: CellPatch = { layer, site, cells: unique, C, row: Int32Array.from(unique, (x) => slot.get(x.i)!) };
    const rows = Int32Array.from(examples);
    const delta = DeltaBlock.handlesTail(site) ? this.deltaBlock(layer) : null;
    if (last && delta) { // the last block's output at the query cells alone
      const out = delta.tailReadout(site, unique.map((x) => ({ row: x.i, t: x.t, src: x.src, off: x.off })));
      const index = new Map(unique.map((x, k) => [x.i, k]));
      for (const x of live) put(x, out.p[index.get(x.i)!]!, out.logit[index.get(x.i)!]!);
      return;
    }
    if (last) {
      const out = this.pass(layer, rows, patch);
      for (const x of live) put(x, out.p[slot.get(x.i)!]!, out.logit[slot.get(x.i)!]!);
      return;
    }
    const d = this.corr.get(siteKey(layer, 'block_output'))!.C;
    if (delta) { // the block's output at the patched cells alone
      const after = delta.tailCells(site, unique.map((x) => ({ row: x.i, t: x.t, src: x.src, off: x.off })));
      const index = new Map(unique.map((x, k) => [`${x.i}:${x.t}`, k]));
      this.blockInput(layer + 1, live.map((x) => ({ k: x.k, i: x.i, t: x.t, src: after, off: index.get(`${x.i}:${x.t}`)! * d })), put);
      return;
    }
    const after = this.runBlock(layer, rows, patch); // (examples, T, d)
    this.blockInput(layer + 1, live.map((x) => ({ k: x.k, i: x.i, t: x.t, src: after, off: (slot.get(x.i)! * T + x.t) * d })), put);
  }

  /**
   * Cells of block `layer`'s input with given values: one resumed pass, one row per distinct (example, position,
   * value). A value equal to the corrupted one changes nothing. The result of every (example, position, value) is
   * kept for the chunk: different sites can lead to the same block input bit for bit (a block's output and the next
   * block's input; a patched MLP input and the MLP output it produces), and then they share one pass.
   */
  private blockInput(layer: number, cells: ValuedCell[], put: Put): void {
    const corr = this.corr.get(siteKey(layer, 'block_input'))!, C = corr.C, T = this.c.T;
    const groups: { key: string; rep: ValuedCell; cells: Cell[] }[] = [], pending = new Map<string, (typeof groups)[number][]>();
    for (const x of cells) {
      if (sameBits(x.src, x.off, corr.data, (x.i * T + x.t) * C, C)) continue;
      const key = `${layer}:${x.i}:${x.t}:${hashBits(x.src, x.off, C)}`;
      const hit = this.known.get(key)?.find((e) => sameBits(e.value, 0, x.src, x.off, C));
      if (hit) { put(x, hit.p, hit.logit); continue; }
      const same = pending.get(key)?.find((g) => sameBits(g.rep.src, g.rep.off, x.src, x.off, C));
      if (same) { same.cells.push(x); continue; }
      const g = { key, rep: x, cells: [x] };
      pending.set(key, [...(pending.get(key) ?? []), g]);
      groups.push(g);
    }
    if (groups.length === 0) return;
    const reps = groups.map((g) => g.rep);
    const out = this.pass(layer, Int32Array.from(reps, (x) => x.i), { layer, site: 'block_input', cells: reps, C, row: Int32Array.from(reps, (_, j) => j) });
    groups.forEach((g, j) => {
      const p = out.p[j]!, logit = out.logit[j]!;
      const entry = { value: g.rep.src.slice(g.rep.off, g.rep.off + C), p, logit };
      this.known.set(g.key, [...(this.known.get(g.key) ?? []), entry]);
      for (const x of g.cells) put(x, p, logit);
    });
  }

  /**
   * Copies of the corrupted examples `rows` (row j = example rows[j]) patched at `patch.cells`, read out at each
   * row's query. With a memory, rows whose patches start at the same position s share a pass over positions
   * [s, T) only: everything before s is the corrupted run's, and the mixers continue from what it kept there.
   */
  private pass(layer: number, rows: Int32Array, patch: CellPatch): Readout {
    const delta = this.deltaBlock();
    // The specialised last block takes every row at once, whatever position each starts at.
    if (delta && DeltaBlock.handles(patch.site) && patch.layer === layer) {
      // Blocks layer … last − 1 hand on only what changed (DeltaBlock.outputs), then the last one reads out.
      const blocks: DeltaBlock[] = [];
      for (let l = layer; l < delta.layer; l++) { const b = this.deltaBlock(l); if (b) blocks.push(b); }
      if (blocks.length === delta.layer - layer) {
        const cells = patch.cells.map((x, k) => ({ row: patch.row[k]!, t: x.t, src: x.src, off: x.off }));
        const site = { name: patch.site, cells };
        if (blocks.length === 0) return delta.readout(rows, [], site);
        let changes = blocks[0]!.outputs(rows, [], site);
        for (const b of blocks.slice(1)) changes = b.outputs(rows, changes);
        return delta.readout(rows, changes);
      }
    }
    if (!this.fast || !this.memory || !this.fast.resumableFrom(layer)) return this.window(layer, rows, patch, 0);
    const start = new Int32Array(rows.length).fill(this.c.T);
    patch.cells.forEach((x, k) => { const j = patch.row[k]!; start[j] = Math.min(start[j]!, x.t); });
    const groups = new Map<number, number[]>();
    start.forEach((s, j) => { const g = groups.get(s); if (g) g.push(j); else groups.set(s, [j]); });
    const out: Readout = { p: new Float32Array(rows.length), logit: new Float32Array(rows.length) };
    for (const [s, js] of groups) {
      const slot = new Int32Array(rows.length).fill(-1);
      js.forEach((j, n) => { slot[j] = n; });
      const keep = patch.cells.map((_, k) => slot[patch.row[k]!]! >= 0);
      const sub: CellPatch = { ...patch, cells: patch.cells.filter((_, k) => keep[k]), row: Int32Array.from(patch.row.filter((_, k) => keep[k]), (j) => slot[j]!) };
      const r = this.window(layer, Int32Array.from(js, (j) => rows[j]!), sub, s);
      js.forEach((j, n) => { out.p[j] = r.p[n]!; out.logit[j] = r.logit[n]!; });
    }
    return out;
  }

  /** One pass over positions [s, T) of copies of the corrupted examples `rows`, patched, read out at each query. */
  private window(layer: number, rows: Int32Array, patch: CellPatch, s: number): Readout {
    const q = Int32Array.from(rows, (i) => this.c.query[i]! - s), a = gatherInt(this.c.answers, rows);
    if (!this.fast) return readout(this.model, () => this.model.forward({ ids: this.ids(rows), batch: rows.length, time: this.c.T, hooks: this.hooks(patch, 0) }), q, a);
    const memory = s > 0 ? this.memory!.resuming(s, rows) : undefined;
    // Query cells only, (rows, 1, d): the last block can skip the other positions.
    return readout(this.model, () => this.fast!.forwardFrom(layer, this.residual(layer, rows, patch, s), { ...this.hooks(patch, s), memory }, q),
      new Int32Array(rows.length), a);
  }

  /** Block `layer` alone on copies of the corrupted examples `rows`, patched: its output (rows, T, d), on the host. */
  private runBlock(layer: number, rows: Int32Array, patch: CellPatch): Float32Array {
    // Read out after the tidy: a typed array returned from tf.tidy is walked element by element for tensors.
    const out = tf.tidy(() => this.fast!.runBlock(layer, this.residual(layer, rows, patch, 0), this.hooks(patch, 0)));
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return data;
  }

  /** The corrupted residual stream entering block `layer` for `rows`, positions [s, T); a block_input patch is written in. */
  private residual(layer: number, rows: Int32Array, patch: CellPatch, s: number): Tensor3D {
    const { data, C } = this.corr.get(siteKey(layer, 'block_input'))!;
    const T = this.c.T, W = T - s;
    const r = new Float32Array(rows.length * W * C);
    rows.forEach((i, j) => r.set(data.subarray((i * T + s) * C, (i + 1) * T * C), j * W * C));
    if (patch.site === 'block_input' && patch.layer === layer) {
      patch.cells.forEach((x, k) => r.set(x.src.subarray(x.off, x.off + C), (patch.row[k]! * W + x.t - s) * C));
    }
    return tf.tensor3d(r, [rows.length, W, C]);
  }

  private ids(rows: Int32Array): Int32Array {
    const T = this.c.T, out = new Int32Array(rows.length * T);
    rows.forEach((i, j) => out.set(this.c.base.subarray(i * T, (i + 1) * T), j * T));
    return out;
  }

  /** The patch as hooks (positions relative to s), unless it is already written into a resumed residual stream. */
  private hooks(patch: CellPatch, s: number): Hooks {
    if (this.fast && patch.site === 'block_input') return {};
    const { cells, C } = patch;
    const values = new Float32Array(cells.length * C);
    cells.forEach((x, j) => values.set(x.src.subarray(x.off, x.off + C), j * C));
    const p: Patch = {
      layer: patch.layer, site: patch.site,
      rows: Int32Array.from(patch.row),
      positions: Int32Array.from(cells, (x) => x.t - s),
      values: tf.tensor2d(values, [cells.length, C]),
    };
    return { patches: [p] };
  }
}

/** Cells to patch at one site, each with its batch row. */
interface CellPatch { layer: number; site: SiteName; cells: ValuedCell[]; C: number; row: Int32Array }
