/**
 * @module base_conv — zoology's BaseConv (`zoology/mixers/base_conv.py`, `convolution.py`; architectures.md §3.1,
 * paper-setup.md §3.3, state-dict.md §5.2). Also layer 0 (and 2) of Based (based.ts).
 *
 *   y = conv(u) ⊙ projection(u) + u            projection: Linear(d, d) with bias; use_act = False (no SiLU)
 *
 * The "+ u" is inside the mixer, on top of the block's residual. `conv` is, per layer, kernel_size[layer] of
 * zoology/tinylang's list [3, −1, 3, −1] (state-dict.md §2 rule 6; `cfg.d_conv`, when set, replaces the list):
 *   k ≥ 1   ShortConvolution: causal depthwise Conv1d of width k with bias (ops.causalConv1d).
 *   k = −1  ImplicitLongConvolution: h = MLP(z) with MLP = Linear(3, 16) → ReLU → Linear(16, d) over fixed positional
 *           features z (1, l_max, 3), then conv(u) = (h ∗ u) + u. zoology's fft_conv adds that second "+ u" itself.
 *
 * Patch site `conv_output` = the output of `conv` (what a hook on zoology's `self.conv` sees): ShortConv(u), or
 * (h ∗ u) + u for the long conv.
 *
 * Init (architectures.md §1.6, non-Mamba rule): every nn.Linear N(0, 0.02) with zero bias (projection and the filter
 * MLP: `projection` is not caught by the out_proj/fc2 rescaling); the Conv1d keeps PyTorch's U(±1/√k) for weight and
 * bias; z is deterministic.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { causalConv1d, linear, matmul } from './ops.ts';
import { torchDefault, type Init, type ParamScope } from './params.ts';
import type { ResolvedModelConfig } from './config.ts';
import type { Mixer, MixerFactory } from './mixer.ts';
import type { SiteContext } from './sites.ts';

/** tinylang/zoology fig2 `base_conv`: kernel_size per layer; −1 = implicit long convolution. */
export const BASE_CONV_KERNELS: readonly number[] = [3, -1, 3, -1];
export const LONG_CONV = -1;
/** ImplicitLongConvolution defaults: d_emb = 3 (t, cos, sin; one band), d_hidden = 16. */
const D_EMB = 3, D_HIDDEN = 16;

const LINEAR_W: Init = { kind: 'normal', std: 0.02 };
const ZERO: Init = { kind: 'constant', value: 0 };

/** Layer `layer`'s kernel size: `cfg.d_conv` for every layer when set, else BASE_CONV_KERNELS[layer]. */
export function baseConvKernel(cfg: ResolvedModelConfig, layer: number): number {
  if (cfg.d_conv !== null) return cfg.d_conv;
  const k = BASE_CONV_KERNELS[layer];
  // zoology raises the same way: "kernel_size must be an int or a list of ints with length equal to the number of layers"
  if (k === undefined) throw new Error(`base_conv: no kernel size for layer ${layer} (the list [${BASE_CONV_KERNELS}] has ${BASE_CONV_KERNELS.length}); set d_conv`);
  return k;
}

/**
 * zoology's PositionalEmbedding(emb_dim = 3, seq_len = l_max), `z` [1, l_max, 3], row l:
 *   [ l/(l_max−1),  cos(1e-4·ω_l),  −sin(1e-4·ω_l) ],   ω_l = 2π·l/l_max
 * (one band f = linspace(1e-4, bands−1, bands) = [1e-4]; the complex exp(−i·f·ω) split into real and imaginary parts;
 * state-dict.md §7). Computed in float64, stored as float32.
 */
export function positionalFeatures(lMax: number): Float32Array {
  const z = new Float32Array(lMax * D_EMB);
  for (let l = 0; l < lMax; l++) {
    const w = (2 * Math.PI * l) / lMax;
    z[l * D_EMB] = lMax > 1 ? l / (lMax - 1) : 0; // torch.linspace(0, 1, 1) = [0]
    z[l * D_EMB + 1] = Math.cos(1e-4 * w);
    z[l * D_EMB + 2] = -Math.sin(1e-4 * w);
  }
  return z;
}

/**
 * Above this T the selection matrix (T³ floats, and C·T³ multiply-adds to use) costs more than the strided build.
 * Measured forward + backward of the whole conv on wasm at B=32, C=64: T=37 12 vs 47 ms, T=100 90 vs 317 ms,
 * T=128 151 vs 750 ms (selection vs strided).
 */
const SELECTION_MAX_T = 128;
/** Selection matrices are cached per T up to this many floats in all (64 MB; all T ≤ 90), then built per call. */
const SELECTION_CACHE_FLOATS = 1 << 24;
const selections = new Map<number, Tensor2D>();
let cachedFloats = 0;

/**
 * E (T, T·T): E[τ, t·T + s] = 1 where t − s = τ, so h (C, T)·E = the lower-triangular Toeplitz matrices (C, T·T).
 * Cached ones are kept out of every tidy scope; one built past the cache budget belongs to the caller's scope.
 */
function selection(T: number): Tensor2D {
  const hit = selections.get(T);
  if (hit) return hit;
  const v = new Float32Array(T * T * T);
  for (let t = 0; t < T; t++) for (let s = 0; s <= t; s++) v[(t - s) * T * T + t * T + s] = 1;
  const e = tf.tensor2d(v, [T, T * T]);
  if (cachedFloats + v.length > SELECTION_CACHE_FLOATS) return e;
  cachedFloats += v.length;
  selections.set(T, tf.keep(e));
  return e;
}

/**
 * H[c, t, s] = h[c, t−s] for t ≥ s, else 0: (C, T) → (C, T, T), without a gather (no gather gradient on wasm).
 * Small T: one 2-D product with the constant selection E. Large T: the strided trick, a = [h_0 … h_{T−1}, 0 ×(T−1)]
 * repeated T times and read in rows of 2T−2 gives row s = a shifted right by s (= column s of H); slower on wasm.
 */
function toeplitz(h: Tensor2D, selectionMaxT: number): Tensor3D {
  const [C, T] = h.shape;
  if (T <= selectionMaxT || T === 1) return matmul(h, selection(T)).reshape([C, T, T]) as Tensor3D;
  const W = 2 * T - 1;
  const a = tf.concat([h, tf.zeros([C, T - 1])], 1); // (C, 2T−1)
  const rep = tf.broadcastTo(a.reshape([C, 1, W]), [C, T, W]).reshape([C, T * W]);
  const N = tf.slice(tf.slice(rep, [0, 0], [C, T * (W - 1)]).reshape([C, T, W - 1]), [0, 0, 0], [C, T, T]); // [c, s, t]
  return tf.transpose(N, [0, 2, 1]) as Tensor3D;
}

/**
 * Causal long convolution y[b,t,c] = Σ_{s≤t} h[c, t−s]·x[b,s,c] (the linear, not circular, convolution that zoology's
 * FFT of size 2T computes; architectures.md §1.8 P2) as a Toeplitz product with the channels as the batch:
 *   y[c] = H[c]·x[c]      (C, T, B) = (C, T, T)·(C, T, B),   H from toeplitz()
 * Exactly causal: the zeros of H make outputs before t independent of x[t] bit for bit, unlike an FFT or a DFT (a DFT
 * as 2-D XNNPACK products was ~2× faster on wasm but leaks ~1e-6 into earlier positions). Measured forward + backward
 * on wasm at B=32, T=37, C=64 (2 busy cores, best of 30): this ≈ 11–18 ms, ops.causalLongConv (T shifted slices)
 * 27–97 ms.
 */
export function causalLongConvToeplitz(x: Tensor3D, h: Tensor2D, selectionMaxT = SELECTION_MAX_T): Tensor3D {
  const [, T, C] = x.shape;
  const [hc, L] = h.shape;
  if (hc !== C || L < T) throw new Error(`causalLongConvToeplitz: filter [${h.shape}] does not cover ${C} channels × ${T} steps`);
  const H = toeplitz((L === T ? h : tf.slice(h, [0, 0], [C, T])) as Tensor2D, selectionMaxT); // (C, T, T)
  const y = tf.matMul(H, tf.transpose(x, [2, 1, 0]) as Tensor3D); // (C, T, B)
  return tf.transpose(y, [2, 1, 0]) as Tensor3D; // (B, T, C)
}

/** ShortConvolution: `conv.conv` = nn.Conv1d(d, d, k, groups=d, padding=k−1), first T outputs. */
function shortConvolution(d: number, k: number, p: ParamScope): (u: Tensor3D) => Tensor3D {
  if (!Number.isInteger(k) || k < 1) throw new Error(`base_conv: kernel size ${k} is not a short conv width ≥ 1 or ${LONG_CONV} (long)`);
  const weight = p.param('conv.conv.weight', [d, 1, k], torchDefault(k)); // fan_in = (in/groups)·k = k
  const bias = p.param('conv.conv.bias', [d], torchDefault(k));
  return (u) => causalConv1d(u, weight, bias); // (B, T, d) → (B, T, d)
}

/**
 * ImplicitLongConvolution(d, l_max): filter h[τ, :] = mlp(z[τ]) for τ < T, then (h ∗ u) + u.
 *
 * `conv.pos_emb.z` is a PyTorch Parameter with requires_grad=False: in the state dict, never trained. It is read into
 * a constant on each forward, so no gradient flows to it and the optimiser skips it (no weight decay either), while
 * a loaded checkpoint's z is still the one used.
 */
function implicitLongConvolution(d: number, lMax: number, p: ParamScope): (u: Tensor3D) => Tensor3D {
  const z = p.param('conv.pos_emb.z', [1, lMax, D_EMB], { kind: 'values', values: positionalFeatures(lMax) });
  const w0 = p.param('conv.mlp.0.weight', [D_HIDDEN, D_EMB], LINEAR_W);
  const b0 = p.param('conv.mlp.0.bias', [D_HIDDEN], ZERO);
  const w2 = p.param('conv.mlp.2.weight', [d, D_HIDDEN], LINEAR_W);
  const b2 = p.param('conv.mlp.2.bias', [d], ZERO);
  return (u) => {
    const T = u.shape[1];
    if (T > lMax) throw new Error(`base_conv: sequence length ${T} exceeds l_max = n_positions = ${lMax}`);
    const zT = tf.tensor2d((z.dataSync() as Float32Array).subarray(0, T * D_EMB), [T, D_EMB]); // constant: off the tape
    const h = linear(tf.relu(linear(zT, w0, b0)), w2, b2); // (T, 3) → (T, 16) → (T, d): h[τ, c]
    return tf.add(causalLongConvToeplitz(u, tf.transpose(h) as Tensor2D), u) as Tensor3D; // fft_conv's "out = y + u"
  };
}

/** One BaseConv layer with kernel size `k` (≥ 1 short, −1 long), parameters under `p` (its `sequence_mixer.`). */
export function baseConvLayer(cfg: ResolvedModelConfig, k: number, p: ParamScope): Mixer {
  const d = cfg.d_model;
  // Registration order = state-dict order: projection, then conv (state-dict.md §5.2).
  const W = p.param('projection.weight', [d, d], LINEAR_W);
  const b = p.param('projection.bias', [d], ZERO);
  const conv = k === LONG_CONV ? implicitLongConvolution(d, cfg.n_positions, p) : shortConvolution(d, k, p);
  return {
    positionwiseFrom: ['conv_output'], // then c ⊙ (W u + b) + u, position by position
    forward(u: Tensor3D, ctx: SiteContext): Tensor3D {
      const c = ctx.site('conv_output', conv(u)); // (B, T, d)
      const g: Tensor = linear(u, W, b); // (B, T, d)
      return tf.add(tf.mul(c, g), u) as Tensor3D;
    },
  };
}

/** `base_conv`: layer i is a BaseConv with kernel size baseConvKernel(cfg, i). */
export const baseConv: MixerFactory = (cfg, layer, p) => baseConvLayer(cfg, baseConvKernel(cfg, layer), p);
