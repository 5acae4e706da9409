/**
 * @module based — zoology/tinylang "based": Hybrid[BaseConv(k = 3), Based] (`zoology/mixers/hybrid.py`, `based.py`,
 * `feature_maps/taylor.py`; architectures.md §1.5, §3.2, paper-setup.md §3.4, state-dict.md §5.3).
 *
 * Hybrid builds configs[layer mod 2] and stores it as `self.mixer`, so every key gains `mixer.`:
 *   even layers  BaseConv, short conv of width 3 (or cfg.d_conv: tinylang's ar_32_based_ablation2), base_conv.ts;
 *   odd layers   Based: Taylor-feature causal linear attention, 1 head, feature dim F = cfg.feature_dim (8).
 *
 * Based (all projections bias-free):
 *   q = proj_q(x) (B, T, F),  k = proj_k(x) (B, T, F),  v = proj_v(x) (B, T, d)
 *   φ(x) = [1, x/F^{1/4}, vec(x xᵀ)/(√2·√F)] ∈ ℝ^{1+F+F²}       (TaylorExp.forward: x/rrd, x2/rd with x2 = x⊗x/√2)
 *   y_t = Σ_{s≤t} (φ(q_t)·φ(k_s)) v_s / (Σ_{s≤t} φ(q_t)·φ(k_s) + 1e-12),   out = proj_o(y)
 * and φ(q)·φ(k) = 1 + σ + σ²/2 with σ = q·k/√F, the 2nd-order Taylor expansion of exp(σ) (≥ ½, so the denominator
 * is positive). Two forms of the same function:
 *   forward           the masked quadratic form (zoology's train_view "quadratic"), used for training;
 *   forwardRecurrent  the running state S_t = S_{t−1} + φ(k_t) v_tᵀ, z_t = z_{t−1} + φ(k_t),
 *                     y_t = φ(q_t)ᵀ S_t / (φ(q_t)·z_t + ε) (for state interventions; one step at a time).
 *
 * Init (architectures.md §1.6): all four projections N(0, 0.02); the out_proj/fc2 rescaling does not catch `proj_o`.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { linear } from './ops.ts';
import type { ParamScope } from './params.ts';
import type { ResolvedModelConfig } from './config.ts';
import type { Mixer, MixerFactory } from './mixer.ts';
import { baseConvLayer } from './base_conv.ts';

/** Based's eps in the normaliser (zoology `Based(eps=1e-12)`). */
export const BASED_EPS = 1e-12;
/** The BaseConv kernel width of based's even layers when cfg.d_conv is null. */
export const BASED_CONV_KERNEL = 3;

/**
 * TaylorExp feature map, (…, F) → (…, 1 + F + F²): [1, x/F^{1/4}, vec(x xᵀ)/(√2·√F)], second-order terms in
 * row-major (m, n) order as zoology's `flatten(start_dim=-2)`.
 */
export function taylorFeatures(x: Tensor): Tensor {
  const F = x.shape[x.rank - 1]!;
  const lead = x.shape.slice(0, -1);
  const outer = tf.mul(x.reshape([...lead, F, 1]), x.reshape([...lead, 1, F])).reshape([...lead, F * F]);
  return tf.concat([tf.ones([...lead, 1]), tf.mul(x, 1 / Math.sqrt(Math.sqrt(F))), tf.mul(outer, 1 / (Math.SQRT2 * Math.sqrt(F)))], -1);
}

const halfTrils = new Map<number, Tensor2D>();

/** (T, T): ½ on and below the diagonal, 0 above; a constant kept across calls. */
function halfTril(T: number): Tensor2D {
  let m = halfTrils.get(T);
  if (!m) {
    const v = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) v[i * T + j] = 0.5;
    m = tf.keep(tf.tensor2d(v, [T, T]));
    halfTrils.set(T, m);
  }
  return m;
}

/**
 * The masked quadratic form (zoology train_view "quadratic"), per sequence: q, k (B, T, F), v (B, T, Dv) → (B, T, Dv).
 *   σ = q kᵀ/√F,   A = (1 + σ + σ²/2) ⊙ tril = ((σ + 1)² + 1) ⊙ ½·tril,   y = A v / (rowsum(A) + ε)
 * Batched products (wasm's scalar loop, tfjs-backends.md §2). Measured on wasm, forward + backward of the whole layer
 * at B=32, d=64 (CPU time, median): T=37 15 ms batched vs 16–23 ms for attention.ts-style packing of g sequences into
 * one block-diagonal 2-D product (with σ, or with the explicit features); T=11 3.5 ms vs 4.7 ms. Packing saves
 * multiply-adds but adds per-group ops, and Based has no softmax to amortise them over.
 */
export function taylorAttention(q: Tensor3D, k: Tensor3D, v: Tensor3D): Tensor3D {
  const [, T, F] = q.shape;
  const sigma = tf.matMul(tf.mul(q, 1 / Math.sqrt(F)) as Tensor3D, k, false, true); // (B, T, T)
  const a = tf.mul(tf.add(tf.square(tf.add(sigma, 1)), 1), halfTril(T)) as Tensor3D; // 1 + σ + σ²/2, causal
  return tf.div(tf.matMul(a, v), tf.add(tf.sum(a, 2, true), BASED_EPS)) as Tensor3D; // (B, T, Dv)
}

export interface TaylorLinearAttention extends Mixer {
  /**
   * The recurrent form, step by step (architectures.md §3.2 "recurrent or linear form"): the same function as
   * forward up to rounding. `onState(t, S_t (B, 1+F+F², d), z_t (B, 1+F+F²))` sees each running state.
   */
  forwardRecurrent(x: Tensor3D, onState?: (t: number, S: Tensor3D, z: Tensor2D) => void): Tensor3D;
}

/** zoology `Based` with num_heads = num_key_value_heads = 1 (head_dim = d), parameters under `p`. */
export function taylorLinearAttention(cfg: ResolvedModelConfig, p: ParamScope): TaylorLinearAttention {
  const d = cfg.d_model, F = cfg.feature_dim;
  const init = { kind: 'normal', std: 0.02 } as const;
  const Wq = p.param('proj_q.weight', [F, d], init); // rows (head, feature) = feature for one head
  const Wk = p.param('proj_k.weight', [F, d], init);
  const Wv = p.param('proj_v.weight', [d, d], init);
  const Wo = p.param('proj_o.weight', [d, d], init);
  return {
    forward(x: Tensor3D): Tensor3D {
      return linear(taylorAttention(linear(x, Wq), linear(x, Wk), linear(x, Wv)), Wo); // (B, T, d)
    },
    forwardRecurrent(x, onState) {
      const [B, T] = x.shape;
      const M = 1 + F + F * F;
      const fq = tf.unstack(taylorFeatures(linear(x, Wq)), 1) as Tensor2D[]; // T × (B, M)
      const fk = tf.unstack(taylorFeatures(linear(x, Wk)), 1) as Tensor2D[];
      const vs = tf.unstack(linear(x, Wv), 1) as Tensor2D[]; // T × (B, d)
      let S: Tensor3D = tf.zeros([B, M, d]);
      let z: Tensor2D = tf.zeros([B, M]);
      const ys: Tensor[] = [];
      for (let t = 0; t < T; t++) {
        S = tf.add(S, tf.mul(fk[t]!.reshape([B, M, 1]), vs[t]!.reshape([B, 1, d]))) as Tensor3D; // + φ(k_t) v_tᵀ
        z = tf.add(z, fk[t]!) as Tensor2D;
        onState?.(t, S, z);
        const num = tf.matMul(fq[t]!.reshape([B, 1, M]), S).reshape([B, d]); // φ(q_t)ᵀ S_t
        const den = tf.add(tf.sum(tf.mul(fq[t]!, z), 1, true), BASED_EPS); // φ(q_t)·z_t + ε, (B, 1)
        ys.push(tf.div(num, den));
      }
      return linear(tf.stack(ys, 1) as Tensor3D, Wo); // (B, T, d)
    },
  };
}

/** `based`: Hybrid[BaseConv(k = 3 or d_conv), Based]; layer i builds configs[i mod 2] under `mixer.`. */
export const based: MixerFactory = (cfg, layer, p) => {
  const m = p.scope('mixer.');
  return layer % 2 === 0 ? baseConvLayer(cfg, cfg.d_conv ?? BASED_CONV_KERNEL, m) : taylorLinearAttention(cfg, m);
};

/** Type guard for the odd (linear-attention) layers of `based`. */
export function isTaylorLinearAttention(m: Mixer): m is TaylorLinearAttention {
  return typeof (m as Partial<TaylorLinearAttention>).forwardRecurrent === 'function';
}
