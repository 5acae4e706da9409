/**
 * @module sweep — interchange interventions in the restoring direction (paper-setup.md §5.1, architectures.md §9.2):
 * base = the corrupted input, source = the clean input; at one (layer, site, position) the base run's activation is
 * overwritten with the source run's, the pass runs to the end, and p(answer) is read at the query position.
 *
 * Every (example, position) of one (layer, site) is a "cell". Cells are batched: one forward pass runs one row per
 * cell, each row a copy of its example's corrupted input patched at that cell only. Rows never interact, so this
 * gives the numbers of separate passes (tested against a plain one-cell-per-pass sweep in
 * tests/interventions/sweep-reference.test.ts). What makes the sweep cheap is the work it provably need not do
 * (this file picks the cells that need a pass, passes.ts runs them):
 *  - time: the models are causal and the readout is at the query, so every pass stops at the last query position,
 *    and the last block runs its position-wise part (norm2, MLP) at the query only (LanguageModel.forwardFrom's
 *    cells). Where every mixer can resume (Mamba, DeltaNet: memory.ts), a pass also starts at the patched position:
 *    the corrupted run keeps each mixer's conv inputs and recurrent states, and positions before it cost nothing;
 *  - cells that cannot change the readout take the corrupted run's numbers without a pass: a position after the
 *    query, and a cell whose clean activation equals the corrupted one bit for bit (patching it changes nothing);
 *  - layers: a patched pass resumes from the corrupted residual stream entering the patched block
 *    (LanguageModel.forwardFrom), since the layers before it compute the same thing in every copy;
 *  - position-wise tails: where the rest of the block acts on each position alone (Block.positionwiseFrom: the
 *    mixer's output, the MLP, Mamba's ssm_output and gate, DeltaNet's q), all positions of an example are patched
 *    in one row of one pass through that block only, and each patched position then enters the next block as a
 *    patch of its input; in the last layer only the query position can change the readout. Block inputs equal bit
 *    for bit (a block's output and the next block's input, an MLP input and its output) share one pass.
 */
import type { Tensor3D } from '../models/tf.ts';
import type { SiteName } from '../models/sites.ts';
import type { TrainableLM } from '../train/loop.ts';
import { batchTokens, gatherInt, POSITION_NAMES, type PositionName, type Split } from '../train/split.ts';
import { Memory } from '../models/memory.ts';
import { Executor, readout, sameBits, type Acts, type Cell, type Chunk } from './passes.ts';
import { DeltaBlock } from './delta-sweep.ts';

export type Corruption = 'key' | 'value';
export type { ResumableLM } from './passes.ts';

export interface SweepOptions {
  corruption?: Corruption;
  /** Examples from the start of the split (the paper: 320 test examples). */
  limit?: number;
  /** Examples per chunk; a pass runs up to (positions × chunk) rows. */
  chunk?: number;
  positions?: readonly PositionName[];
  /** Restrict to these (layer, site) pairs; default: every site the model passes through. */
  sites?: readonly { layer: number; site: SiteName }[];
  progress?: (done: number, total: number) => void;
  /** Model-specific fast paths (DeltaNet's last block: delta-sweep.ts); false runs every pass the general way (tests). */
  specialise?: boolean;
}

/** Per-example results of one (layer, site, position) patch. */
export interface PatchResult {
  layer: number;
  site: SiteName;
  position: PositionName;
  pRestored: Float32Array;     // (n)
  logitRestored: Float32Array; // (n)
}

export interface SweepResult {
  corruption: Corruption;
  n: number;
  pOrig: Float32Array;
  pCorr: Float32Array;
  logitOrig: Float32Array;
  logitCorr: Float32Array;
  patches: PatchResult[];
}

export function sweep(model: TrainableLM, s: Split, opts: SweepOptions = {}): SweepResult {
  const corruption = opts.corruption ?? 'key';
  const n = Math.min(s.n, opts.limit ?? 320);
  const chunk = opts.chunk ?? 64;
  const positions = opts.positions ?? POSITION_NAMES;
  const P = positions.length;
  const corrupted = corruption === 'key' ? s.tokensKeyCorrupted : s.tokensValueCorrupted;
  const res: SweepResult = {
    corruption, n,
    pOrig: new Float32Array(n), pCorr: new Float32Array(n), logitOrig: new Float32Array(n), logitCorr: new Float32Array(n),
    patches: [],
  };
  const wanted = opts.sites ? new Set(opts.sites.map((x) => `${x.layer}:${x.site}`)) : null;
  const byKey = new Map<string, PatchResult[]>();
  let done = 0;
  for (let start = 0; start < n; start += chunk) {
    const rows = Int32Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
    const m = rows.length;
    const query = gatherInt(s.pos.query, rows);
    const answers = gatherInt(s.answers, rows);
    const pos = positions.map((name) => gatherInt(s.pos[name], rows));
    // Causal models, readout at the query: nothing after the last query position of the chunk can matter.
    const full = batchTokens(s, s.tokens, rows).time;
    const T = Math.min(full, Math.max(...query) + 1);
    const truncate = (ids: Int32Array) => {
      const out = new Int32Array(m * T);
      for (let i = 0; i < m; i++) out.set(ids.subarray(i * full, i * full + T), i * T);
      return out;
    };
    const c: Chunk = { m, T, query, answers, clean: truncate(batchTokens(s, s.tokens, rows).ids), base: truncate(batchTokens(s, corrupted, rows).ids) };

    // The clean and corrupted runs record every site: (m, T, C) each. The corrupted run's mixers also keep what a
    // pass needs to start part-way along it (memory.ts): every patched row repeats it up to the patch.
    // (Not for DeltaNet's specialised passes, which start from states of their own: delta-sweep.ts.)
    const memory = (opts.specialise ?? true) && DeltaBlock.covers(model, m, T) ? null : new Memory();
    const run = (ids: Int32Array, keep?: Memory | null) => {
      const acts: Acts = new Map();
      const record = (layer: number, site: SiteName, x: Tensor3D) => {
        const key = `${layer}:${site}`;
        if (acts.has(key)) throw new Error(`site ${site} of layer ${layer} is visited twice in one forward pass`);
        acts.set(key, { layer, site, data: x.dataSync() as Float32Array, C: x.shape[2] });
      };
      // Patched passes start at a patched position: the states just before the named positions are all they need.
      const memory = keep?.recording(m, T, (i) => pos.map((p) => p[i]!));
      const out = readout(model, () => model.forward({ ids, batch: m, time: T, hooks: { record, memory } }), query, answers);
      return { out, acts };
    };
    const orig = run(c.clean), corr = run(c.base, memory);
    res.pOrig.set(orig.out.p, start); res.logitOrig.set(orig.out.logit, start);
    res.pCorr.set(corr.out.p, start); res.logitCorr.set(corr.out.logit, start);
    const exec = new Executor(model, c, corr.acts, orig.acts, memory, opts.specialise ?? true);

    // Patched passes: every (layer, site) in forward order, each cell starting from the corrupted run's numbers.
    const sites = [...orig.acts].filter(([key]) => !wanted || wanted.has(key));
    for (const [key, rec] of sites) {
      let list = byKey.get(key);
      if (!list) {
        list = positions.map((position) => ({ layer: rec.layer, site: rec.site, position, pRestored: new Float32Array(n), logitRestored: new Float32Array(n) }));
        byKey.set(key, list);
      }
      for (const r of list) { r.pRestored.set(corr.out.p, start); r.logitRestored.set(corr.out.logit, start); }
      // Only cells that can change the readout get a pass.
      const base = corr.acts.get(key)!;
      const cells: Cell[] = [];
      for (let k = 0; k < P; k++) for (let i = 0; i < m; i++) {
        const t = pos[k]![i]!;
        if (t > query[i]!) continue; // after the query: cannot reach the readout (causal)
        if (sameBits(rec.data, (i * T + t) * rec.C, base.data, (i * T + t) * rec.C, rec.C)) continue; // patching changes nothing
        cells.push({ k, i, t });
      }
      const out = list;
      exec.site(rec.layer, rec.site, cells, (cell, p, logit) => {
        out[cell.k]!.pRestored[start + cell.i] = p;
        out[cell.k]!.logitRestored[start + cell.i] = logit;
      });
    }
    exec.dispose();
    done += m;
    opts.progress?.(done, n);
  }
  for (const list of byKey.values()) res.patches.push(...list);
  return res;
}
