/**
 * @module ops — the primitive operations every mixer builds on, written to run (and differentiate) on every backend.
 *
 * Why these exist (tfjs-backends.md §2–3):
 *  - wasm runs a matmul on XNNPACK only when neither operand is transposed and the batch is 1; tf.matMul's own
 *    gradient uses transposed products that run 10–70× slower. `matmul` computes the gradient with explicit
 *    transposes instead, and `linear` folds any leading axes into a 2-D product.
 *  - wasm has no gradient kernel for gather (UnsortedSegmentSum) or for (depthwise) convolutions. `gatherRows`
 *    scatters its gradient in JS, and `causalConv1d` is a sum of shifted slices (architectures.md §1.8 P1).
 *  - tf.einsum is unreliable; nothing here uses it.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/** a @ b for 2-D tensors; the backward pass uses explicit transposes so it stays on the fast path. */
// tf.customGrad's callback type mixes tensors and the save function in one rest parameter, hence the casts.
export const matmul: (a: Tensor2D, b: Tensor2D) => Tensor2D = tf.customGrad(
  ((a: Tensor, b: Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a as Tensor2D, b as Tensor2D),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sa, sb] = saved as [Tensor2D, Tensor2D];
        return [tf.matMul(dy as Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as Tensor2D)];
      },
    };
  }) as unknown as CustomGradFn,
) as unknown as (a: Tensor2D, b: Tensor2D) => Tensor2D;

/**
 * PyTorch nn.Linear: y = x Wᵀ + b with W in PyTorch's [out, in] layout (state-dict.md §3).
 * x may have any number of leading axes; they are folded into rows of one 2-D product.
 */
export function linear<T extends Tensor>(x: T, weight: Tensor, bias?: Tensor | null): T {
  const inF = x.shape[x.shape.length - 1]!;
  const [outF, wIn] = weight.shape as [number, number];
  if (wIn !== inF) throw new Error(`linear: input has ${inF} features but the weight is [${weight.shape}] ([out, in])`);
  const lead = x.shape.slice(0, -1);
  let y: Tensor = matmul(x.reshape([-1, inF]) as Tensor2D, tf.transpose(weight) as Tensor2D); // (rows, out)
  if (bias) y = tf.add(y, bias);
  return y.reshape([...lead, outF]) as T;
}

/**
 * Rows of a 2-D table: out[i] = table[idx[i]]. The gradient scatters rows back in JS (no UnsortedSegmentSum needed),
 * which is what makes a V = 8196 embedding affordable: a one-hot product would cost N·V·D.
 * `idx` is a JS array because the scatter needs the indices on the host anyway.
 */
export function gatherRows(table: Tensor2D, idx: Int32Array): Tensor2D {
  const [rows, width] = table.shape;
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    if (r < 0 || r >= rows) throw new Error(`gatherRows: index ${r} at ${i} is outside [0, ${rows})`);
  }
  const f = tf.customGrad(((t: Tensor) => {
    const value = tf.gather(t, tf.tensor1d(idx, 'int32'));
    const gradFunc = (dy: Tensor) => {
      const d = dy.dataSync() as Float32Array;
      const g = new Float32Array(rows * width);
      for (let i = 0; i < idx.length; i++) {
        const src = i * width, dst = idx[i]! * width;
        for (let c = 0; c < width; c++) g[dst + c]! += d[src + c]!;
      }
      return tf.tensor2d(g, [rows, width]);
    };
    return { value, gradFunc };
  }) as unknown as CustomGradFn);
  return f(table) as Tensor2D;
}

/** Token embedding: ids (B, T) as a flat Int32Array → (B, T, D). */
export function embed(table: Tensor2D, ids: Int32Array, batch: number, time: number): Tensor3D {
  if (ids.length !== batch * time) throw new Error(`embed: ${ids.length} ids for batch ${batch} × time ${time}`);
  return gatherRows(table, ids).reshape([batch, time, table.shape[1]]);
}

/**
 * Causal depthwise short convolution with PyTorch's Conv1d(groups=C, padding=K−1)[..., :T] semantics:
 *   y[b,t,c] = bias[c] + Σ_{k=0}^{K−1} w[c,0,k] · x[b, t−(K−1)+k, c]      (x before t = 0 is zero)
 * so the last tap multiplies the current token. x: (B, T, C); weight: [C, 1, K] (PyTorch layout); bias: [C].
 * Form A of architectures.md §1.8: left-pad, K shifted slices, per-channel multiply, sum — differentiable on wasm.
 */
export function causalConv1d(x: Tensor3D, weight: Tensor, bias?: Tensor | null): Tensor3D {
  const [B, T, C] = x.shape;
  const [wc, one, K] = weight.shape as [number, number, number];
  if (wc !== C || one !== 1) throw new Error(`causalConv1d: weight [${weight.shape}] does not fit ${C} channels ([C, 1, K])`);
  const taps = tf.transpose(weight.reshape([C, K])); // (K, C)
  const xp = K > 1 ? tf.pad(x, [[0, 0], [K - 1, 0], [0, 0]]) : x; // (B, T+K−1, C)
  let y: Tensor | null = null;
  for (let k = 0; k < K; k++) {
    const term = tf.mul(tf.slice(xp, [0, k, 0], [B, T, C]), tf.slice(taps, [k, 0], [1, C]).reshape([1, 1, C]));
    y = y ? tf.add(y, term) : term;
  }
  if (bias) y = tf.add(y!, bias.reshape([1, 1, C]));
  return y as Tensor3D;
}

/** PyTorch LayerNorm over the last axis (biased variance, eps 1e-5 — tfjs-layers defaults to 1e-3). */
export function layerNorm<T extends Tensor>(x: T, weight: Tensor, bias: Tensor, eps = 1e-5): T {
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), axis, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), weight), bias) as T;
}

/** RMSNorm (Mamba block, DeltaNet output norm): x / sqrt(mean(x²) + eps) · g. */
export function rmsNorm<T extends Tensor>(x: T, weight: Tensor, eps = 1e-5): T {
  const ms = tf.mean(tf.square(x), x.rank - 1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as T;
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)) — PyTorch's default, not the tanh approximation. */
export function gelu<T extends Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T;
}

export function silu<T extends Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

/**
 * Additive causal mask (T, T): 0 on and below the diagonal, −10000 above (zoology MHA). Built in JS as a constant,
 * so no gradient flows through a comparison (tfjs-backends.md §3).
 */
export function causalMask(T: number, fill = -10000): Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = fill;
  return tf.tensor2d(m, [T, T]);
}

/**
 * Causal (linear, not circular) long convolution with a per-channel filter h: (C, L), L ≥ T:
 *   y[b,t,c] = Σ_{s ≤ t} h[c, t−s] · x[b,s,c]
 * Written as the short conv above with the filter's first T taps reversed (tap T−1 multiplies the current token), so
 * it is differentiable everywhere. This is what zoology's FFT of size 2L computes (architectures.md §1.8 P2).
 */
export function causalLongConv(x: Tensor3D, h: Tensor2D): Tensor3D {
  const [, T, C] = x.shape;
  const [hc, L] = h.shape;
  if (hc !== C || L < T) throw new Error(`causalLongConv: filter [${h.shape}] does not cover ${C} channels × ${T} steps`);
  const taps = tf.reverse(tf.slice(h, [0, 0], [C, T]), 1).reshape([C, 1, T]); // [C, 1, K=T], last tap = lag 0
  return causalConv1d(x, taps);
}
