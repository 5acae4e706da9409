/**
 * @module long_filter — the long convolutions of H3 and Hyena (architectures.md §1.8 P2, §6, §7), on the one
 * convolution kernel TF.js has on every backend: the forward depthwise convolution.
 *
 * Both mixers materialise a per-channel filter h (C, T) each step (H3 from its SSM parameters, Hyena from its filter
 * MLP) and apply it as the linear, exactly causal convolution that zoology computes with an FFT of size 2T:
 *
 *   y[b,t,c] = Σ_{s≤t} h[c, t−s]·x[b,s,c]
 *
 * Why depthwiseConv2d with a hand-written gradient (tfjs-backends.md §2–3): wasm has no depthwise-conv gradient
 * kernels, but its forward kernel (XNNPACK) is there, and every gradient of a correlation is again a correlation,
 * so the backward pass reuses the forward kernel. Exactly causal: x[t] never enters an output before t, bit for bit
 * (an FFT or DFT product leaks ~1e-7 into earlier positions). Measured on wasm, one thread, B=32, T=37, C=64, forward +
 * backward (busy 2-core machine, CPU time): this ≈ 9 ms (13 ms before cutting the kernel into fast widths, below), a
 * Toeplitz batchMatMul ≈ 15 ms, a float32 JS double loop ≈ 17 ms, ops.causalLongConv (T shifted slices) ≈ 30–110 ms.
 * H3's shift kernel (a cross-correlation of two length-N = 1024 sequences at T lags) takes ≈ 12 ms this way against
 * ≈ 35 ms as an explicit Hankel product.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * Kernel widths with a fast XNNPACK depthwise micro-kernel on wasm (its up4/up9/up25 variants). Measured at 32×37
 * outputs × 64 channels: K = 4, 9, 25 run at 2–3 GMAC/s, every other K ≥ 5 at 0.4–0.8 (a generic multipass path),
 * so wider kernels are cut into pieces of these widths, the last one zero-padded.
 */
const FAST_WIDTHS = [25, 9, 4];

/**
 * Chunk widths covering K taps: 25s, then the smallest fast width that holds the rest. K ≤ 3 and K > 100 stay one
 * call: tiny kernels gain nothing, and H3's shift kernel (K = N = 1024 taps, T outputs) would become 41 calls whose
 * fixed cost outweighs the faster arithmetic (measured ≈ 2× slower).
 */
function chunkWidths(K: number): number[] {
  if (K <= 3 || K > 4 * FAST_WIDTHS[0]!) return [K];
  const out: number[] = [];
  let rest = K;
  while (rest > FAST_WIDTHS[0]!) { out.push(FAST_WIDTHS[0]!); rest -= FAST_WIDTHS[0]!; }
  out.push([...FAST_WIDTHS].reverse().find((w) => w >= rest)!);
  return out;
}

/**
 * out[g, j, c] = Σ_k input[g, j+k, c]·kernel[k, c], j < Lin − K + 1: a valid cross-correlation along time with one
 * kernel per channel, shared by every g, as a sum of depthwise convolutions over fast-width pieces of the kernel.
 * Used only inside the custom gradients below (it has no gradient of its own on wasm).
 */
function correlate(input: Tensor3D, kernel: Tensor2D): Tensor3D {
  const [G, Lin, C] = input.shape;
  const K = kernel.shape[0];
  const Lout = Lin - K + 1;
  const widths = chunkWidths(K);
  const padded = widths.reduce((a, w) => a + w, 0);
  const x = padded > K ? tf.pad(input, [[0, 0], [0, padded - K], [0, 0]]) : input; // room for the zero taps
  const f = padded > K ? tf.pad(kernel, [[0, padded - K], [0, 0]]) : kernel;
  let out: Tensor | null = null;
  let off = 0;
  for (const w of widths) {
    const xs = tf.slice(x, [0, off, 0], [G, Lout + w - 1, C]).reshape([G, 1, Lout + w - 1, C]) as tf.Tensor4D; // NHWC, W = time
    const fs = tf.slice(f, [off, 0], [w, C]).reshape([1, w, C, 1]) as tf.Tensor4D; // [fh, fw, C, multiplier 1]
    const part = tf.depthwiseConv2d(xs, fs, 1, 'valid');
    out = out ? tf.add(out, part) : part;
    off += w;
  }
  return out!.reshape([G, Lout, C]);
}

/**
 * Σ_{g,j} a[g, j+k, c]·b[g, j, c] for k < La − Lb + 1: the correlation of a (G, La, C) with b (G, Lb, C), summed over
 * g (a kernel's gradient). The g axis becomes the image height and b the filter, so one depthwise call does it
 * (measured no slower than a chunked correlate() over G·C channels, which needs two transposes and a sum).
 */
function correlateOverBatch(a: Tensor3D, b: Tensor3D): Tensor2D {
  const [G, La, C] = a.shape;
  const Lb = b.shape[1];
  const a4 = a.reshape([1, G, La, C]) as tf.Tensor4D;
  const b4 = b.reshape([G, Lb, C, 1]) as tf.Tensor4D;
  return tf.depthwiseConv2d(a4, b4, 1, 'valid').reshape([La - Lb + 1, C]) as Tensor2D; // (K, C)
}

/**
 * Causal depthwise convolution y[b,t,c] = Σ_{τ<K} h[c, τ]·x[b,t−τ,c] with a per-channel filter h (C, K), K ≤ T or
 * any K (taps past T never meet an input). x: (B, T, C) → (B, T, C). With K = T this is the long convolution of
 * zoology's FFT conv; with K = 3 it is a short Conv1d (PyTorch's weight [C, 1, K] is h reversed along τ). Gradients:
 *   dx[b,s,c] = Σ_τ h[c, τ]·dy[b,s+τ,c]          (the anti-causal correlation of dy with h)
 *   dh[c,τ]   = Σ_{b,t} dy[b,t,c]·x[b,t−τ,c]
 */
export const causalLongConv: (x: Tensor3D, h: Tensor2D) => Tensor3D = tf.customGrad(
  ((x: Tensor, h: Tensor, save: tf.GradSaveFunc) => {
    const [B, T, C] = x.shape as [number, number, number];
    const K = h.shape[1]!;
    if (h.shape[0] !== C) throw new Error(`causalLongConv: filter [${h.shape}] does not have ${C} channels`);
    const hT = tf.transpose(h) as Tensor2D; // (K, C): hT[τ] = h[:, τ]
    const taps = tf.reverse(hT, 0) as Tensor2D; // taps[k] = h[:, K−1−k]: the last tap multiplies the current step
    const xp = tf.pad(x, [[0, 0], [K - 1, 0], [0, 0]]) as Tensor3D; // (B, T+K−1, C)
    save([xp, hT]);
    return {
      value: correlate(xp, taps), // (B, T, C)
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sxp, shT] = saved as [Tensor3D, Tensor2D];
        const dyp = tf.pad(dy, [[0, 0], [0, K - 1], [0, 0]]) as Tensor3D; // (B, T+K−1, C)
        const dx = correlate(dyp, shT); // dx[s] = Σ_τ dy[s+τ]·h[τ]
        const dTaps = correlateOverBatch(sxp, dy as Tensor3D); // (K, C): dTaps[k] = Σ dy[t]·x[t−(K−1)+k]
        return [dx, tf.transpose(tf.reverse(dTaps, 0))]; // taps[k] = h[K−1−k]
      },
    };
  }) as unknown as CustomGradFn,
) as unknown as (x: Tensor3D, h: Tensor2D) => Tensor3D;

/**
 * PyTorch's causal depthwise Conv1d(groups=C, padding=K−1)[..., :T] — ops.causalConv1d's semantics, weight [C, 1, K]
 * with the last tap on the current step, bias [C] — on the kernel above: at B=32, T=37, C=192, K=3 forward + backward
 * ≈ 7 ms on wasm against ≈ 16 ms for the K shifted slices of ops.causalConv1d, whose tap gradients each reduce over
 * (B, T). The result is the same up to float rounding (bit for bit on wasm, where both sum the taps in order).
 */
export function depthwiseConv1d(x: Tensor3D, weight: Tensor, bias?: Tensor | null): Tensor3D {
  const [C, one, K] = weight.shape as [number, number, number];
  if (one !== 1 || C !== x.shape[2]) throw new Error(`depthwiseConv1d: weight [${weight.shape}] does not fit ${x.shape[2]} channels ([C, 1, K])`);
  const y = causalLongConv(x, tf.reverse(weight.reshape([C, K]), 1) as Tensor2D); // h[c, τ] = weight[c, 0, K−1−τ]
  return bias ? (tf.add(y, bias) as Tensor3D) : y;
}

/**
 * k[c, j] = Σ_n a[c, n]·b[c, n+j] for j < T (b is zero past its end): the cross-correlation of two per-channel
 * sequences (C, N) at the first T lags. H3's shift kernel (architectures.md §6: K_shift = corr(B_s, C_s), what
 * zoology's irfft(conj(rfft B)·rfft C) computes). When T > N the lags ≥ N come out 0, as zoology's zero padding.
 */
export function crossCorrelation(a: Tensor2D, b: Tensor2D, T: number): Tensor2D {
  const [C, N] = a.shape;
  if (b.shape[0] !== C || b.shape[1] !== N) throw new Error(`crossCorrelation: [${a.shape}] and [${b.shape}] differ`);
  const f = tf.customGrad(((a: Tensor, b: Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    // time-major (1, N+T−1, C) with b zero-padded on the right, so lag j reads b[n+j] for every n < N
    const bp = tf.transpose(tf.pad(b, [[0, 0], [0, T - 1]])).reshape([1, N + T - 1, C]) as Tensor3D;
    const k = correlate(bp, tf.transpose(a) as Tensor2D); // (1, T, C)
    return {
      value: tf.transpose(k.reshape([T, C])),
      gradFunc: (dk: Tensor, saved: Tensor[]) => {
        const [sa, sb] = saved as [Tensor2D, Tensor2D];
        const dkT = tf.transpose(dk) as Tensor2D; // (T, C)
        // da[n] = Σ_j dk[j]·b[n+j]: b (right-padded) correlated with dk
        const bp2 = tf.transpose(tf.pad(sb, [[0, 0], [0, T - 1]])).reshape([1, N + T - 1, C]) as Tensor3D;
        const da = correlate(bp2, dkT).reshape([N, C]);
        // db[m] = Σ_j dk[j]·a[m−j]: a (left-padded) correlated with dk reversed
        const ap = tf.transpose(tf.pad(sa, [[0, 0], [T - 1, 0]])).reshape([1, N + T - 1, C]) as Tensor3D;
        const db = correlate(ap, tf.reverse(dkT, 0) as Tensor2D).reshape([N, C]);
        return [tf.transpose(da), tf.transpose(db)];
      },
    };
  }) as unknown as CustomGradFn);
  return f(a, b) as Tensor2D;
}

/**
 * h + D·e₀: a skip term D ⊙ x (zoology's `y + u·D`) is the lag-0 tap of the filter, so it rides along in the same
 * convolution instead of costing a (B, T, C) multiply and add. h: (C, T), D: (C) → (C, T).
 */
export function withSkip(h: Tensor2D, D: Tensor): Tensor2D {
  const [C, T] = h.shape;
  const e0 = tf.tensor2d(Float32Array.from({ length: T }, (_, i) => (i === 0 ? 1 : 0)), [1, T]);
  return tf.add(h, tf.mul(D.reshape([C, 1]), e0)) as Tensor2D;
}
