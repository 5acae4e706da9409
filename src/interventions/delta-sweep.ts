/**
 * @module delta-sweep — the blocks of a DeltaNet language model specialised for the intervention sweep (passes.ts).
 * A patched row differs from the corrupted run only from its first changed position on, and only the query cell of
 * the last block reaches the readout, so of a block a patched pass needs:
 *  - the position-wise front (norm1, the q/k/v/β projection, the short conv, SiLU, the L2 norm) only where its result
 *    can differ from the corrupted run's: at changed block inputs / mixer inputs and the K − 1 positions after each
 *    (the conv), at a patched q/k/v_conv cell itself (the row's "region"). Elsewhere q, k, v, β are the corrupted
 *    run's, computed once per chunk;
 *  - the delta rule over the region only, in low-rank form from the corrupted state before it: S_t = S⁰ + Σ k_τ u_τᵀ,
 *    and S⁰ itself, from S = 0, is Σ_{τ<a} k⁰_τ u⁰_τᵀ over the corrupted steps before the region (prefixRead: no state
 *    is ever formed; at the study's T, a few steps cost less than one Dh × Dh state). After the region every step is the corrupted run's, and since a
 *    step is affine in the state (S_t = (I − β k kᵀ) S_{t−1} + β k vᵀ), o at a later position t is the corrupted o_t
 *    plus the region's change read through vectors precomputed per chunk (corrupted());
 *  - the rest of the block (o norm, o_proj, residual add, norm2, MLP): in the last block at the query only (`readout`),
 *    in an earlier block at the positions from the region on (`outputs`), which become the next block's changes;
 *  - for a position-wise tail site (q_conv, mixer_output, mlp_*, block_output) of an earlier block, the block's
 *    output at the patched cells alone (`tailCells`).
 * All rows of a pass run together whatever position each starts at (no pass per start position). Models whose
 * per-chunk arrays would exceed MEMORY_BUDGET (e.g. d 256 at the paper's T) take the general passes (DeltaBlock.covers).
 *
 * The tfjs ops are those of src/models/delta_net.ts, block.ts, mlp.ts and lm.ts in the same order; the delta rule is
 * summed in another order (float64), so the numbers equal the general path's up to rounding (tested against it on
 * random DeltaNets of several shapes, tests/interventions/delta-sweep.test.ts, and against the plain protocol,
 * sweep-reference.test.ts). This file only reads the model's parameters by their state-dict names; nothing in
 * src/models depends on it (training's cache keys do not see it).
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../models/tf.ts';
import { causalConv1d, layerNorm, rmsNorm, silu } from '../models/ops.ts';
import type { SiteName } from '../models/sites.ts';
import type { TrainableLM } from '../train/loop.ts';
import { readout, type Acts, type Chunk, type Readout } from './passes.ts';

/** delta_net.ts's fla l2norm epsilon (inside the square root) and its o_norm epsilon. */
const L2_EPS = 1e-6;
const NORM_EPS = 1e-5;

/** Sites in a block's front, patched by `readout` / `outputs`; the position-wise tail sites go through `tailCells`. */
const SITES: ReadonlySet<SiteName> = new Set<SiteName>(['block_input', 'mixer_input', 'q_conv', 'k_conv', 'v_conv']);

/** A changed value at (row of the pass, position t): C floats of `src` from `off`. */
export interface Change { row: number; t: number; src: Float32Array; off: number }

interface DeltaModel extends TrainableLM {
  readonly cfg: { mixer: string; d_model: number; n_layers: number; delta_heads: number; d_conv: number | null };
}

const isDeltaModel = (m: TrainableLM): m is DeltaModel => {
  const cfg = (m as Partial<DeltaModel>).cfg;
  return cfg !== undefined && cfg.mixer === 'delta_net' && m.params?.vars instanceof Map;
};

/** Bytes the specialised blocks of one chunk may hold (all layers): corrupted states, read vectors, o and u. */
export const MEMORY_BUDGET = 768 * 2 ** 20;

/** Position-wise tail sites of a block (Block.positionwiseFrom) whose patched block outputs `tailCells` computes. */
const TAIL_SITES: ReadonlySet<SiteName> = new Set<SiteName>(['q_conv', 'mixer_output', 'mlp_input', 'mlp_output', 'block_output']);

/** One block of a DeltaNet LM with the corrupted run of one chunk, ready for patched rows. */
export class DeltaBlock {
  readonly layer: number;
  private readonly isLast: boolean;
  /** The corrupted run's mixer output at this block, (m, T, D). */
  private readonly mo: Float32Array;
  private readonly D: number;
  private readonly H: number;
  private readonly Dh: number;
  private readonly K: number;
  private readonly w: Record<'wcatT' | 'convW' | 'woT' | 'g' | 'n1w' | 'n1b' | 'n2w' | 'n2b' | 'w1T' | 'b1' | 'w2T' | 'b2' | 'lnfW' | 'lnfB' | 'gain' | 'off', Tensor>;
  /** The conv's taps as causalConv1d slices them, K tensors (1, 1, 3D). */
  private readonly taps: Tensor[];
  /** The corrupted run at this block, (m, T, ·) row-major: its input, its conv input, q/k/v after the L2 norm, β. */
  private readonly bi: Float32Array;
  private readonly pre: Float32Array;
  private readonly qkv: Float32Array;
  private readonly beta: Float32Array;
  /** Its o_t, (m, T, H, Dh), and the read vectors w_{z,τ} (corrupted()); in the last block at the query only. */
  private readonly oAll: Float64Array;
  private readonly reads: Float64Array;
  /** The corrupted run's u_t = β_t r_t, (m, T, H, Dh). */
  private readonly uCorr: Float64Array;
  private readonly acc: Float64Array;
  private readonly vec: Float64Array;

  /** Block `layer` specialised when `model` is a DeltaNet LM whose block the sweep recorded; null otherwise. */
  static create(model: TrainableLM, c: Chunk, corr: Acts, layer: number): DeltaBlock | null {
    if (!DeltaBlock.covers(model, c.m, c.T) || !(layer >= 0 && layer < model.cfg.n_layers)) return null;
    if (!['block_input', 'mixer_input', 'mixer_output'].every((x) => corr.has(`${layer}:${x}`))) return null;
    return new DeltaBlock(model, c, corr, layer);
  }

  /**
   * Whether every patched pass of `model` over chunks of m rows and T positions can run here (then the sweep's general
   * passes, and their memory, go unused): a DeltaNet whose blocks' read vectors (m·T²·H·Dh) and what earlier versions
   * kept, the corrupted state at every position (m·(T + 1)·H·Dh²), fit MEMORY_BUDGET. The states are no longer kept
   * (prefixRead), but their term stays in the bound: it keeps the specialised passes to the sizes they were measured
   * on, and prefixRead's 2·a·Dh per read outgrows a state's Dh² only past a = Dh/2 steps. Larger models take the
   * general passes, which keep states at the patched positions only.
   */
  static covers(model: TrainableLM, m: number, T: number): model is DeltaModel {
    if (!isDeltaModel(model)) return false;
    const { d_model: D, delta_heads: H, n_layers: L } = model.cfg, Dh = D / H;
    const bytes = 8 * m * H * Dh * ((T + 1) * Dh + T * T + 2 * T) * L;
    return bytes <= MEMORY_BUDGET;
  }

  /** Whether a patch at `site` of the last block goes through `readout` here. */
  static handles(site: SiteName): boolean {
    return SITES.has(site);
  }

  /** Whether `tailCells` takes a patch at `site`. */
  static handlesTail(site: SiteName): boolean {
    return TAIL_SITES.has(site);
  }

  private constructor(private readonly model: DeltaModel, private readonly c: Chunk, corr: Acts, layer: number) {
    this.layer = layer;
    this.isLast = layer === model.cfg.n_layers - 1;
    const { d_model: D, delta_heads: H } = model.cfg;
    this.D = D; this.H = H; this.Dh = D / H;
    this.K = model.cfg.d_conv ?? 4;
    this.acc = new Float64Array(this.Dh); this.vec = new Float64Array(this.Dh);
    const p = (name: string) => model.params.get(name);
    const mix = `backbone.layers.${layer}.sequence_mixer.`, blk = `backbone.layers.${layer}.`;
    const gainV = new Float32Array(3 * H), offV = new Float32Array(3 * H);
    for (let h = 0; h < H; h++) { gainV[h] = 1 / Math.sqrt(this.Dh); gainV[H + h] = 1; offV[2 * H + h] = 1; }
    this.w = tf.tidy(() => ({
      wcatT: tf.transpose(tf.concat(['q_proj', 'k_proj', 'v_proj', 'b_proj'].map((n) => p(`${mix}${n}.weight`)), 0)),
      convW: this.K > 0 ? tf.concat(['q', 'k', 'v'].map((n) => p(`${mix}${n}_conv1d.weight`)), 0) : tf.zeros([1]),
      woT: tf.transpose(p(`${mix}o_proj.weight`)),
      g: tf.clone(p(`${mix}o_norm.weight`)),
      n1w: tf.clone(p(`${blk}norm1.weight`)), n1b: tf.clone(p(`${blk}norm1.bias`)),
      n2w: tf.clone(p(`${blk}norm2.weight`)), n2b: tf.clone(p(`${blk}norm2.bias`)),
      w1T: tf.transpose(p(`${blk}state_mixer.fc1.weight`)), b1: tf.clone(p(`${blk}state_mixer.fc1.bias`)),
      w2T: tf.mul(tf.transpose(p(`${blk}state_mixer.fc2.weight`)), 0.5), b2: tf.clone(p(`${blk}state_mixer.fc2.bias`)),
      lnfW: tf.clone(p('backbone.ln_f.weight')), lnfB: tf.clone(p('backbone.ln_f.bias')),
      gain: tf.tensor4d(gainV, [1, 1, 3 * H, 1]), off: tf.tensor4d(offV, [1, 1, 3 * H, 1]),
    }));
    this.taps = this.K === 0 ? [] : tf.tidy(() => {
      const t = tf.transpose(this.w.convW.reshape([3 * D, this.K])); // (K, 3D)
      return Array.from({ length: this.K }, (_, k) => tf.slice(t, [k, 0], [1, 3 * D]).reshape([1, 1, 3 * D]));
    });
    // The corrupted run's front, from its recorded mixer input, with the mixer's own ops on the whole chunk.
    const { m, T } = c;
    this.bi = corr.get(`${layer}:block_input`)!.data;
    this.mo = corr.get(`${layer}:mixer_output`)!.data;
    const mi = corr.get(`${layer}:mixer_input`)!.data;
    const [pre, qkv, beta] = tf.tidy(() => {
      const { pre, qkv, beta } = this.front(tf.tensor3d(mi, [m, T, D]));
      return [pre, qkv, beta];
    });
    this.pre = pre!.dataSync() as Float32Array;
    this.qkv = qkv!.dataSync() as Float32Array;
    this.beta = beta!.dataSync() as Float32Array;
    pre!.dispose(); qkv!.dispose(); beta!.dispose();
    ({ oAll: this.oAll, reads: this.reads, uCorr: this.uCorr } = this.corrupted());
  }

  dispose(): void {
    for (const t of Object.values(this.w)) t.dispose();
    for (const t of this.taps) t.dispose();
  }

  /**
   * mlp.ts's fc1, GELU, fc2 on x (N, 1, d), as linear runs them (the same products, transposed once per chunk). GELU's
   * ½ is in fc2's weight: (½z)·y·w = (z·y)·(½w) bit for bit (a power of two scales exactly), one pass over (N, 4d) less.
   */
  private mlp(x: Tensor3D): Tensor3D {
    const [N, , d] = x.shape;
    const z = tf.add(tf.matMul(x.reshape([N, d]) as Tensor2D, this.w.w1T as Tensor2D), this.w.b1);
    const h = tf.mul(z, tf.add(1, tf.erf(tf.mul(z, Math.SQRT1_2)))); // 2·gelu(z), as ops.ts's gelu forms it
    return tf.add(tf.matMul(h as Tensor2D, this.w.w2T as Tensor2D), this.w.b2).reshape([N, 1, d]);
  }

  /**
   * causalConv1d's outputs at positions K − 1 … of x (R, W + K − 1, 3D), whose first K − 1 positions are the lead
   * inputs: the same products summed in the same order (tap 0 first), without the padding and the dropped outputs.
   */
  private conv(x: Tensor3D, W: number): Tensor3D {
    const [R, , C] = x.shape;
    let y: Tensor | null = null;
    for (let k = 0; k < this.K; k++) {
      const term = tf.mul(tf.slice(x, [0, k, 0], [R, W, C]), this.taps[k]!);
      y = y ? tf.add(y, term) : term;
    }
    return y as Tensor3D;
  }

  /**
   * The mixer's front on the whole chunk, x = its input (m, T, D), as the mixer runs it: the conv input `pre` (m, T, 3D),
   * q/k/v after the L2 norm (m, T, 3H, Dh, q scaled by Dh^−½) and β (m, T, H).
   */
  private front(x: Tensor3D) {
    const [R, W] = x.shape;
    const { D, H, Dh, K } = this;
    const proj = tf.matMul(x.reshape([R * W, D]) as Tensor2D, this.w.wcatT as Tensor2D).reshape([R, W, 3 * D + H]);
    const pre = tf.slice(proj, [0, 0, 0], [R, W, 3 * D]) as Tensor3D;
    const betaLogit = tf.slice(proj, [0, 0, 3 * D], [R, W, H]) as Tensor3D;
    const a = silu(K > 0 ? causalConv1d(pre, this.w.convW) : pre);
    const heads = a.reshape([R, W, 3 * H, Dh]);
    const inv = tf.rsqrt(tf.add(tf.sum(tf.square(heads), 3, true), L2_EPS));
    const factor = tf.add(tf.mul(inv, this.w.gain), this.w.off);
    return { pre, qkv: tf.mul(heads, factor), beta: tf.sigmoid(betaLogit) };
  }

  /**
   * The delta rule over the corrupted chunk, in low-rank form up to each row's query (prefixRead): each position's o (`oAll`, (m, T, H, Dh)), u_t = β_t r_t (`uCorr`), and how o_τ reads the state after each step z < τ
   * (`reads`): S_t = A_t S_{t−1} + β_t k_t v_tᵀ with A_t = I − β_t k_t k_tᵀ (symmetric), so for any state S_z after
   * step z, whatever came before, o_τ = o⁰_τ + (S_z − S⁰_z)ᵀ w_{z,τ} when every step in (z, τ] is the corrupted run's,
   * with w_{τ,τ} = q_τ, w_{z,τ} = A_{z+1} w_{z+1,τ}; `reads` holds w_{z,τ} at ((b·T + τ)·T + z)·H + h.
   */
  private corrupted(): { oAll: Float64Array; reads: Float64Array; uCorr: Float64Array } {
    const { m, T } = this.c, { H, Dh } = this;
    const uCorr = new Float64Array(m * T * H * Dh), oAll = new Float64Array(m * T * H * Dh);
    const reads = new Float64Array(m * T * T * H * Dh);
    const vec = this.vec, acc = this.acc;
    for (let b = 0; b < m; b++) for (let h = 0; h < H; h++) {
      // Nothing after the query reaches the readout: u, o and the read vectors up to it.
      const q = this.c.query[b]!;
      for (let t = 0; t <= q; t++) { // u_t = β_t (v_t − S_{t−1}ᵀ k_t), S_{t−1} = Σ_{τ<t} k_τ u_τᵀ
        const kAt = ((b * T + t) * 3 * H + H + h) * Dh, beta = this.beta[(b * T + t) * H + h]!;
        load(vec, this.qkv, kAt, Dh);
        this.prefixRead(uCorr, b, h, t, vec, acc);
        const uo = ((b * T + t) * H + h) * Dh;
        for (let c = 0; c < Dh; c++) uCorr[uo + c] = beta * (this.qkv[kAt + H * Dh + c]! - acc[c]!);
      }
      // o and its read vectors where a pass reads them: up to the query; in the last block, at the query only.
      for (let tau = this.isLast ? q : 0; tau <= q; tau++) {
        const qAt = ((b * T + tau) * 3 * H + h) * Dh;
        load(vec, this.qkv, qAt, Dh);
        this.prefixRead(uCorr, b, h, tau + 1, vec, acc);
        oAll.set(acc, ((b * T + tau) * H + h) * Dh);
        const w0 = ((b * T + tau) * T * H + h) * Dh, wz = H * Dh; // w_{z,τ} at w0 + z·wz
        reads.set(vec, w0 + tau * wz);
        for (let z = tau - 1; z >= 0; z--) { // w_z = w_{z+1} − β k (k·w_{z+1}), k and β of step z + 1
          const kAt = ((b * T + z + 1) * 3 * H + H + h) * Dh, beta = this.beta[(b * T + z + 1) * H + h]!;
          const prev = w0 + (z + 1) * wz, cur = w0 + z * wz;
          const f = beta * dot3264(this.qkv, kAt, reads, prev, Dh);
          for (let i = 0; i < Dh; i++) reads[cur + i] = reads[prev + i]! - this.qkv[kAt + i]! * f;
        }
      }
    }
    return { oAll, reads, uCorr };
  }

  /**
   * acc = S⁰ᵀx for the corrupted state of example i, head h, before step `a` (after step a − 1): from S = 0, the
   * state is Σ_{τ<a} k⁰_τ u⁰_τᵀ (rank ≤ a), so S⁰ᵀx = Σ_{τ<a} u⁰_τ (k⁰_τ·x): 2·a·Dh products instead of Dh².
   */
  private prefixRead(u: Float64Array, i: number, h: number, a: number, x: Float64Array, acc: Float64Array): void {
    const { T } = this.c, { H, Dh } = this, k = this.qkv;
    acc.fill(0);
    for (let tau = 0; tau < a; tau++) {
      const f = dot3264(k, ((i * T + tau) * 3 * H + H + h) * Dh, x, 0, Dh);
      axpy(acc, u, ((i * T + tau) * H + h) * Dh, f, Dh);
    }
  }

  /**
   * The block's output (n, D) at each cell (row = example of the chunk, position t) when `site`, a position-wise tail
   * site (q_conv, mixer_output, mlp_input, mlp_output, block_output), is patched there alone: the rest of the block
   * acts on that position only (Block.positionwiseFrom), so only the cells are computed. q_conv: o_t = S_tᵀ q̂_t with
   * the corrupted state after step t (no state depends on q). The model's ops, on the cells only.
   */
  tailCells(site: SiteName, cells: readonly Change[]): Float32Array {
    if (!TAIL_SITES.has(site)) throw new Error(`delta sweep: ${site} is not a tail site`);
    const { T } = this.c, { D, H, Dh } = this, n = cells.length, d = D;
    const gather = (src: (x: Change) => [Float32Array, number]) => {
      const out = new Float32Array(n * d);
      cells.forEach((x, k) => { const [a, off] = src(x); out.set(a.subarray(off, off + d), k * d); });
      return out;
    };
    const at = (x: Change) => (x.row * T + x.t) * d;
    const value = gather((x) => [x.src, x.off]);
    if (site === 'block_output') return value;
    const res = gather((x) => [this.bi, at(x)]);
    let o: Float32Array | null = null;
    if (site === 'q_conv') { // the new q at t, L2-normalised and scaled as the mixer does, read from S_t
      const qn = tf.tidy(() => {
        const heads = tf.tensor4d(value, [n, 1, H, Dh]);
        const inv = tf.rsqrt(tf.add(tf.sum(tf.square(heads), 3, true), L2_EPS));
        const gain = tf.slice(this.w.gain, [0, 0, 0, 0], [1, 1, H, 1]), off = tf.slice(this.w.off, [0, 0, 0, 0], [1, 1, H, 1]);
        return tf.mul(heads, tf.add(tf.mul(inv, gain), off));
      });
      const q = qn.dataSync() as Float32Array;
      qn.dispose();
      const ob = (o = new Float32Array(n * H * Dh)), vec = this.vec, acc = this.acc;
      cells.forEach((x, k) => {
        for (let h = 0; h < H; h++) {
          const qo = (k * H + h) * Dh;
          load(vec, q, qo, Dh);
          this.prefixRead(this.uCorr, x.row, h, x.t + 1, vec, acc); // the corrupted state after step t
          ob.set(acc, qo);
        }
      });
    }
    const out = tf.tidy(() => {
      const r = tf.tensor3d(res, [n, 1, d]);
      const v = tf.tensor3d(value, [n, 1, d]);
      const mixer = () => {
        if (site === 'mixer_output') return v;
        if (o !== null) return tf.matMul(rmsNorm(tf.tensor4d(o as Float32Array, [n, 1, H, Dh]), this.w.g, NORM_EPS).reshape([n, D]) as Tensor2D, this.w.woT as Tensor2D).reshape([n, 1, D]);
        return tf.tensor3d(gather((x) => [this.mo, at(x)]), [n, 1, d]);
      };
      const r1 = tf.add(r, mixer()) as Tensor3D;
      const f = site === 'mlp_output' ? v
        : this.mlp(site === 'mlp_input' ? v : layerNorm(r1, this.w.n2w, this.w.n2b));
      return tf.add(r1, f);
    });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return data;
  }

  /** For the last block: p(answer) and its logit for each cell of `tailCells` (its row: the example), read at the cell. */
  tailReadout(site: SiteName, cells: readonly Change[]): Readout {
    const out = this.tailCells(site, cells), n = cells.length, d = this.D;
    const answers = Int32Array.from(cells, (x) => this.c.answers[x.row]!);
    return readout(this.model, () => layerNorm(tf.tensor3d(out, [n, 1, d]), this.w.lnfW, this.w.lnfB), new Int32Array(n), answers);
  }

  /**
   * p(answer) and its logit at the query of copies of the corrupted examples `rows` (row j = example rows[j]) whose
   * last block has the inputs `changes` (block-input values at (row, position)) and, if given, `site` patched at
   * `cells` (block_input, mixer_input, q_conv, k_conv or v_conv of the last block).
   */
  readout(rows: Int32Array, changes: readonly Change[], site?: { name: SiteName; cells: readonly Change[] }): Readout {
    if (this.layer !== this.model.cfg.n_layers - 1) throw new Error(`delta sweep: block ${this.layer} is not the last`);
    const { D, H, Dh } = this, R = rows.length, d = D;
    const g = this.region(rows, changes, site);
    const o = new Float32Array(R * H * Dh), rq = new Float32Array(R * d);
    for (let j = 0; j < R; j++) {
      this.readO(g, j, g.q[j]!, o, j * H * Dh);
      rq.set(this.input(g, j, g.q[j]!), j * d);
    }
    // The rest of the block and ln_f at the query: (R, 1, d).
    const answers = Int32Array.from(rows, (i) => this.c.answers[i]!);
    return readout(this.model, () => {
      const normed = rmsNorm(tf.tensor4d(o, [R, 1, H, Dh]), this.w.g, NORM_EPS);
      const mixed = tf.matMul(normed.reshape([R, D]) as Tensor2D, this.w.woT as Tensor2D).reshape([R, 1, D]);
      const res = tf.add(tf.tensor3d(rq, [R, 1, d]), mixed) as Tensor3D;
      const u = layerNorm(res, this.w.n2w, this.w.n2b);
      const out = tf.add(res, this.mlp(u)) as Tensor3D;
      return layerNorm(out, this.w.lnfW, this.w.lnfB);
    }, new Int32Array(R), answers);
  }

  /**
   * The block's outputs where they can differ from the corrupted run's, as changes of the next block's input: row j
   * at positions first … its query (nothing after the query reaches the readout). Inputs as for `readout`.
   */
  outputs(rows: Int32Array, changes: readonly Change[], site?: { name: SiteName; cells: readonly Change[] }): Change[] {
    const { D, H, Dh } = this, R = rows.length, d = D;
    const g = this.region(rows, changes, site);
    // Rows' positions first … query laid end to end.
    const at = new Int32Array(R + 1);
    for (let j = 0; j < R; j++) at[j + 1] = at[j]! + (g.any[j] ? g.q[j]! - g.first[j]! + 1 : 0);
    const N = at[R]!;
    if (N === 0) return [];
    const o = new Float32Array(N * H * Dh), res = new Float32Array(N * d);
    for (let j = 0; j < R; j++) {
      for (let t = g.first[j]!, n = at[j]!; n < at[j + 1]!; t++, n++) {
        this.readO(g, j, t, o, n * H * Dh);
        res.set(this.input(g, j, t), n * d);
      }
    }
    const out = tf.tidy(() => {
      const normed = rmsNorm(tf.tensor4d(o, [N, 1, H, Dh]), this.w.g, NORM_EPS);
      const mixed = tf.matMul(normed.reshape([N, D]) as Tensor2D, this.w.woT as Tensor2D).reshape([N, 1, D]);
      const r1 = tf.add(tf.tensor3d(res, [N, 1, d]), mixed) as Tensor3D;
      const u = layerNorm(r1, this.w.n2w, this.w.n2b);
      return tf.add(r1, this.mlp(u));
    });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    const next: Change[] = [];
    for (let j = 0; j < R; j++) {
      for (let t = g.first[j]!, n = at[j]!; n < at[j + 1]!; t++, n++) next.push({ row: j, t, src: data, off: n * d });
    }
    return next;
  }

  /** Row j's block input at position t: the corrupted run's, or its change. */
  private input(g: Region, j: number, t: number): Float32Array {
    const c = g.inputAt.get(j * this.c.T + t);
    if (c) return c.src.subarray(c.off, c.off + this.D);
    const i = g.rows[j]!;
    return this.bi.subarray((i * this.c.T + t) * this.D, (i * this.c.T + t + 1) * this.D);
  }

  /**
   * The changed front of each row, then the delta rule over its region in low-rank form from the corrupted state S⁰
   * before it (read, never copied): S_t = S⁰ + Σ_{a≤τ≤t} k_τ u_τᵀ, u_t = β_t (v_t − S⁰ᵀk_t − Σ_{τ<t} u_τ (k_τ·k_t)).
   * Norm1 and the projection run at the cells whose mixer input changed only; the conv (with its K − 1 lead inputs,
   * as the mixer runs it when resuming), SiLU and the L2 norm over the regions, padded to the widest.
   */
  private region(rows: Int32Array, changes: readonly Change[], site?: { name: SiteName; cells: readonly Change[] }): Region {
    const { T, query } = this.c, { D, H, Dh, K } = this;
    const R = rows.length, spread = Math.max(K, 1), d = D, C3 = 3 * D, P = 3 * D + H;
    if (site && !SITES.has(site.name)) throw new Error(`delta sweep: site ${site.name} is not patched here`);
    const inputs = [...changes, ...(site?.name === 'block_input' ? site.cells : [])];
    const front = site?.name === 'mixer_input' ? site.cells : [];
    const qkvCells = site && site.name.endsWith('_conv') ? site.cells : [];
    // Each row's region [first, last]: where k, v, β or q can differ from the corrupted run, up to its query.
    const first = new Int32Array(R).fill(T), last = new Int32Array(R).fill(-1);
    const q = Int32Array.from(rows, (i) => query[i]!);
    const mark = (x: Change, reach: number) => {
      if (x.t > q[x.row]!) return;
      first[x.row] = Math.min(first[x.row]!, x.t);
      last[x.row] = Math.max(last[x.row]!, Math.min(q[x.row]!, x.t + reach - 1));
    };
    for (const x of inputs) mark(x, spread);
    for (const x of front) mark(x, spread);
    for (const x of qkvCells) mark(x, 1);
    const any = new Uint8Array(R);
    let W = 1;
    for (let j = 0; j < R; j++) {
      any[j] = first[j]! <= last[j]! ? 1 : 0;
      if (!any[j]) { first[j] = q[j]!; last[j] = q[j]!; } // nothing reaches the query: the corrupted numbers
      W = Math.max(W, last[j]! - first[j]! + 1);
    }
    // Regions padded to the widest (positions past a row's region are computed and never read).
    const base = Int32Array.from({ length: R + 1 }, (_, j) => j * W), N = R * W;
    const inputAt = new Map<number, Change>();
    for (const c of inputs) if (c.t <= q[c.row]!) inputAt.set(c.row * T + c.t, c);
    const g0 = { rows, inputAt } as Region;

    // Norm1 and the projection at the cells whose mixer input changed; a mixer_input patch replaces norm1's output.
    const mixAt = new Map<number, Change>();
    for (const c of front) if (c.t <= q[c.row]!) mixAt.set(c.row * T + c.t, c);
    const cells = [...new Set([...inputAt.keys(), ...mixAt.keys()])];
    const slot = new Map(cells.map((key, k) => [key, k]));
    let proj: Float32Array = new Float32Array(0), beta1: Float32Array = new Float32Array(0);
    if (cells.length) {
      const x = new Float32Array(cells.length * d);
      cells.forEach((key, k) => x.set(this.input(g0, Math.floor(key / T), key % T), k * d));
      const [pT, bT] = tf.tidy(() => {
        let h = layerNorm(tf.tensor3d(x, [cells.length, 1, d]), this.w.n1w, this.w.n1b);
        if (mixAt.size) {
          const data = (h.dataSync() as Float32Array).slice();
          for (const [key, c] of mixAt) data.set(c.src.subarray(c.off, c.off + d), slot.get(key)! * d);
          h = tf.tensor3d(data, [cells.length, 1, d]);
        }
        const pr = tf.matMul(h.reshape([cells.length, d]) as Tensor2D, this.w.wcatT as Tensor2D);
        return [pr, tf.sigmoid(tf.slice(pr, [0, C3], [cells.length, H]))];
      });
      proj = pT!.dataSync() as Float32Array; beta1 = bT!.dataSync() as Float32Array;
      pT!.dispose(); bT!.dispose();
    }
    // The conv input from K − 1 positions before each region on: changed, the corrupted run's, or 0 before position
    // 0; the conv as the mixer runs it when resuming (its lead positions dropped).
    const n = K > 1 ? K - 1 : 0, Wc = W + n;
    const convIn = new Float32Array(R * Wc * C3), rbeta = new Float32Array(N * H);
    const slotAt = new Int32Array(R * T).fill(-1); // the projected cell at row · T + position, or −1
    for (const [key, k] of slot) slotAt[key] = k;
    for (let j = 0; j < R; j++) {
      const i = rows[j]!;
      for (let u = 0; u < Wc; u++) {
        const p = first[j]! - n + u;
        if (p < 0 || p > last[j]!) continue;
        const k = slotAt[j * T + p]!;
        if (k < 0) copy(convIn, (j * Wc + u) * C3, this.pre, (i * T + p) * C3, C3);
        else copy(convIn, (j * Wc + u) * C3, proj, k * P, C3);
        if (u < n) continue;
        const at = (j * W + u - n) * H;
        if (k < 0) copy(rbeta, at, this.beta, (i * T + p) * H, H);
        else copy(rbeta, at, beta1, k * H, H);
      }
    }
    // SiLU, a q/k/v_conv patch, the L2 norm: over the regions.
    const chan = site?.name === 'q_conv' ? 0 : site?.name === 'k_conv' ? D : 2 * D;
    const qkvT = tf.tidy(() => {
      const x = tf.tensor3d(convIn, [R, Wc, C3]);
      let a = silu(K > 0 ? this.conv(x, W) : x);
      if (qkvCells.length) {
        const data = (a.dataSync() as Float32Array).slice();
        for (const c of qkvCells) if (c.t >= first[c.row]! && c.t <= last[c.row]!) data.set(c.src.subarray(c.off, c.off + D), (base[c.row]! + c.t - first[c.row]!) * C3 + chan);
        a = tf.tensor3d(data, [R, W, C3]);
      }
      const heads = a.reshape([N, 1, 3 * H, Dh]);
      const inv = tf.rsqrt(tf.add(tf.sum(tf.square(heads), 3, true), L2_EPS));
      return tf.mul(heads, tf.add(tf.mul(inv, this.w.gain), this.w.off));
    });
    const rqkv = qkvT.dataSync() as Float32Array;
    qkvT.dispose();

    const U = new Float64Array(R * H * W * Dh), acc = new Float64Array(Dh), vec = new Float64Array(Dh);
    // Rows by example: the corrupted states they read lie together (cache), whatever order the pass has them in.
    const order = Int32Array.from({ length: R }, (_, j) => j).sort((x, y) => rows[x]! - rows[y]! || first[x]! - first[y]!);
    for (const j of order) {
      const i = rows[j]!, a = first[j]!, nSteps = last[j]! - a + 1;
      for (let hh = 0; hh < H; hh++) {
        const Uj = (j * H + hh) * W * Dh;
        const k0 = (base[j]! * 3 * H + H + hh) * Dh, ks = 3 * H * Dh; // region step u's k at k0 + u·ks; v is H·Dh further
        for (let u = 0; u < nSteps; u++) {
          const k = k0 + u * ks;
          load(vec, rqkv, k, Dh);
          this.prefixRead(this.uCorr, i, hh, a, vec, acc);
          subFrom(acc, rqkv, k + H * Dh, Dh); // v − S⁰ᵀk
          for (let p = 0; p < u; p++) axpy(acc, U, Uj + p * Dh, -dot3264(rqkv, k0 + p * ks, vec, 0, Dh), Dh);
          scaleInto(U, Uj + u * Dh, acc, rbeta[(base[j]! + u) * H + hh]!, Dh);
        }
      }
    }
    return { rows, first, last, q, any, W, base, rqkv, U, inputAt };
  }

  /**
   * Row j's o at position t ≥ first (H·Dh floats into out[at…]): within the region, S_tᵀq_t = S⁰ᵀq_t + Σ u_τ (k_τ·q_t);
   * after it, through the corrupted steps in between (corrupted()): o⁰_t + Σ_τ [u_τ (k_τ·w_{z,t}) − u⁰_τ (k⁰_τ·w_{z,t})].
   */
  private readO(g: Region, j: number, t: number, out: Float32Array, at: number): void {
    const { T } = this.c, { H, Dh } = this, W = g.W, b = g.base[j]!;
    const i = g.rows[j]!, a = g.first[j]!, z = g.last[j]!, n = Math.min(t, z) - a + 1;
    const acc = this.acc, vec = this.vec;
    for (let hh = 0; hh < H; hh++) {
      const Uj = (j * H + hh) * W * Dh, oo = at + hh * Dh;
      const k0 = (b * 3 * H + H + hh) * Dh, ks = 3 * H * Dh; // region step u's k at k0 + u·ks
      if (t <= z) {
        const qo = ((b + t - a) * 3 * H + hh) * Dh;
        load(vec, g.rqkv, qo, Dh);
        this.prefixRead(this.uCorr, i, hh, a, vec, acc);
        for (let p = 0; p < n; p++) axpy(acc, g.U, Uj + p * Dh, dot3264(g.rqkv, k0 + p * ks, vec, 0, Dh), Dh);
        out.set(acc, oo);
      } else {
        const w = (((i * T + t) * T + z) * H + hh) * Dh, oc = ((i * T + t) * H + hh) * Dh;
        for (let c = 0; c < Dh; c++) acc[c] = this.oAll[oc + c]!;
        for (let p = 0; p < n; p++) {
          const kc = ((i * T + a + p) * 3 * H + H + hh) * Dh, u0 = ((i * T + a + p) * H + hh) * Dh;
          axpy(acc, g.U, Uj + p * Dh, dot3264(g.rqkv, k0 + p * ks, this.reads, w, Dh), Dh);
          axpy(acc, this.uCorr, u0, -dot3264(this.qkv, kc, this.reads, w, Dh), Dh);
        }
        out.set(acc, oo);
      }
    }
  }
}

/** What `region` found for the rows of one pass. */
interface Region {
  rows: Int32Array;
  /** Row j's region [first, last] (a row with no change reaching its query: [q, q], any = 0) and its query. */
  first: Int32Array;
  last: Int32Array;
  q: Int32Array;
  any: Uint8Array;
  /** Region width (the widest row's); where row j's region starts in the padded regions (j·W). */
  W: number;
  base: Int32Array;
  /** The regions' q/k/v (R, W, 3H, Dh), and the low-rank updates u (R, H, W, Dh). */
  rqkv: Float32Array;
  U: Float64Array;
  /** Block-input changes by row · T + position. */
  inputAt: Map<number, Change>;
}

/** dst = x[at … at + n) (float32 to float64). */
function load(dst: Float64Array, x: Float32Array, at: number, n: number): void {
  for (let c = 0; c < n; c++) dst[c] = x[at + c]!;
}

/** dst[at … at + n) = src[from … from + n). */
function copy(dst: Float32Array, at: number, src: Float32Array, from: number, n: number): void {
  for (let c = 0; c < n; c++) dst[at + c] = src[from + c]!;
}

/** Σ_c a[ao + c]·b[bo + c]. */
function dot3264(a: Float32Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s = 0;
  for (let c = 0; c < n; c++) s += a[ao + c]! * b[bo + c]!;
  return s;
}

/** acc += f·x[at …]. */
function axpy(acc: Float64Array, x: Float64Array, at: number, f: number, n: number): void {
  for (let c = 0; c < n; c++) acc[c]! += x[at + c]! * f;
}

/** acc = x[at …] − acc. */
function subFrom(acc: Float64Array, x: Float32Array, at: number, n: number): void {
  for (let c = 0; c < n; c++) acc[c] = x[at + c]! - acc[c]!;
}

/** dst[at …] = f·x. */
function scaleInto(dst: Float64Array, at: number, x: Float64Array, f: number, n: number): void {
  for (let c = 0; c < n; c++) dst[at + c] = f * x[c]!;
}
