/**
 * @module h3 — zoology's H3 (`zoology/mixers/h3/h3.py`, `ss_kernel.py`, `ss_kernel_shift.py`, `ss_kernel_diag.py`;
 * architectures.md §6, paper-setup.md §3.5, state-dict.md §5.4), in real arithmetic.
 *
 *   q, k, v = q_proj(u), k_proj(u), v_proj(u)                      Linear(d, d) with bias (tinylang's bias=False is ignored)
 *   k'      = K_shift ∗ k + ssm_k_D ⊙ k                             shift SSM: a learned causal filter per channel
 *   kv[h,i,j] = k'[2h+i]·v[2h+j]                                    head_dim 2: H = d/2 heads, 4 signals per head
 *   y[h,i,j]  = K_diag[h] ∗ kv[h,i,j] + D[h]·kv[h,i,j]              diagonal SSM (S4D-Lin, bilinear), one kernel per head
 *   o[j·H+h]  = Σ_i q[2h+i]·y[h,i,j]                                zoology's 'b d h l -> b (d h) l' channel order
 *   out       = output_linear(o)
 *
 * The SSMs run as their convolution kernels, materialised for the current length T (≤ l_max = n_positions) and
 * applied by long_filter.causalLongConv, with each D skip folded into its kernel's lag-0 tap. tests/models/h3.test.ts
 * checks this against zoology's step-by-step recurrence (`H3.step`).
 *
 * Shift kernel (SSKernelShift): K_shift[c, j] = Σ_n B_s[c,n]·C_s[c,n+j] for j < min(N, T), 0 beyond: the
 * cross-correlation that zoology takes as irfft(conj(rfft B)·rfft C) of size 2N.
 *
 * Diagonal kernel (SSKernelDiag, real_type 'exp', disc 'bilinear'), per head h and mode m < M = N/2:
 *   A = −exp(inv_A_real) + i·A_imag,  Δ = exp(log_dt[h]),  λ = (1 + ΔA/2)/(1 − ΔA/2),  C̃ = C·B·Δ/(1 − ΔA/2)
 *   K_diag[h, l] = 2·Re Σ_m C̃_m·λ_m^l
 * Complex numbers are (re, im) pairs (C and B are stored view_as_real, [..., 2]); s4dKernel says how the (H, M, T)
 * sum is kept cheap.
 *
 * Init (architectures.md §1.6, §6): q/k/v/output_linear N(0, 0.02) with zero bias (output_linear is not caught by
 * the out_proj rescaling); ssm_k_D, D ~ N(0, 1); B_s = e₁ and C_s ~ U(±1/√N) (kaiming-uniform, a = √5, fan_in N);
 * C ~ complex normal (re, im ~ N(0, ½)); log_dt ~ U[log 1e-3, log 1e-1]; B = 1; inv_A_real = log ½; A_imag = −π·m
 * (S4's dplr 'lin' init: A = −½ − iπm, "force negative real and imag"; architectures.md writes +πm — the sign only
 * conjugates the initial modes, which C's symmetric draw makes indistinguishable).
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { linear } from './ops.ts';
import { torchDefault, type Init } from './params.ts';
import type { MixerFactory } from './mixer.ts';
import { causalLongConv, crossCorrelation, withSkip } from './long_filter.ts';

/** zoology's H3 `head_dim` in every config (tinylang, fig2, models_repo). */
export const HEAD_DIM = 2;
const DT_MIN = 1e-3, DT_MAX = 1e-1;

const LINEAR_W: Init = { kind: 'normal', std: 0.02 };
const ZERO: Init = { kind: 'constant', value: 0 };

/** Real and imaginary parts of a complex tensor stored view_as_real, [..., 2] → two [...] tensors. */
function complexParts(z: Tensor, shape: number[]): [Tensor, Tensor] {
  const [re, im] = tf.split(z.reshape([...shape, 2]), 2, shape.length);
  return [re!.reshape(shape), im!.reshape(shape)];
}

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * Batched a·b for (n, i, k)·(n, k, j). tf.matMul's own gradient multiplies with transposeA/B, which on wasm runs
 * far slower still than the batched product itself (tfjs-backends.md §2); explicit transposes keep all three products
 * on the plain batched loop (≈ 4× less backward time here).
 */
const batchMatmul: (a: Tensor3D, b: Tensor3D) => Tensor3D = tf.customGrad(
  ((a: Tensor, b: Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a as Tensor3D, b as Tensor3D),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sa, sb] = saved as [Tensor3D, Tensor3D];
        return [tf.matMul(dy as Tensor3D, tf.transpose(sb, [0, 2, 1])), tf.matMul(tf.transpose(sa, [0, 2, 1]), dy as Tensor3D)];
      },
    };
  }) as unknown as CustomGradFn,
) as unknown as (a: Tensor3D, b: Tensor3D) => Tensor3D;

/** Complex powers z^0 … z^{n−1} of z = (zr, zi), shape S, stacked on a new axis 0 by doubling (z^{len+j} = z^j·z^len). */
function powers(zr: Tensor, zi: Tensor, n: number): [Tensor, Tensor] {
  const S = zr.shape;
  let re: Tensor = tf.ones([1, ...S]), im: Tensor = tf.zeros([1, ...S]);
  let pr: Tensor = zr.reshape([1, ...S]), pi: Tensor = zi.reshape([1, ...S]); // z^len
  for (let len = 1; len < n;) {
    const k = Math.min(len, n - len);
    const ar = k < len ? tf.slice(re, 0, k) : re;
    const ai = k < len ? tf.slice(im, 0, k) : im;
    re = tf.concat([re, tf.sub(tf.mul(ar, pr), tf.mul(ai, pi))], 0); // axis 0: contiguous copies
    im = tf.concat([im, tf.add(tf.mul(ar, pi), tf.mul(ai, pr))], 0);
    len += k;
    if (len < n) [pr, pi] = [tf.sub(tf.square(pr), tf.square(pi)), tf.mul(tf.mul(pr, pi), 2)];
  }
  return [re, im];
}

/**
 * The S4D kernel K (H, T) from SSKernelDiag's parameters (shapes as stored, C [1, H, M, 2]). Exported for tests.
 *
 * K[h, l] = 2·Re Σ_m C̃_m·λ_m^l is H·M·T complex terms (606k at tinylang's d = 64, N = 1024, T = 37). With
 * l = a·P + b (P ≈ √T, a < A = ⌈T/P⌉) only P + A powers are needed:
 *   K[h, aP+b] = 2·Σ_m Re(C̃λ^{aP})_m·Re(λ^b)_m − Im(C̃λ^{aP})_m·Im(λ^b)_m
 * one batched product (H, A, 2M)·(H, 2M, P). The powers are complex products (doubling), never
 * exp(l·log|λ|)·(cos lθ, sin lθ): sin and cos cost ~35 ns an element on wasm, and with |λ| < 1 the products only
 * shrink (architectures.md §10.5). Measured on wasm (busy machine), forward + backward at tinylang's sizes: all T
 * powers elementwise ≈ 120 ms, exp/sin/cos tables ≈ 60 ms, this ≈ 35 ms.
 */
export function s4dKernel(logDt: Tensor, C: Tensor, B: Tensor, invAReal: Tensor, AImag: Tensor, T: number): Tensor2D {
  const [H, M] = invAReal.shape as [number, number];
  const dt = tf.exp(logDt).reshape([H, 1]); // Δ (H, 1)
  const alpha = tf.mul(tf.neg(tf.exp(invAReal)), dt); // Re ΔA (H, M)
  const ni = tf.mul(AImag, tf.mul(dt, 0.5)); // Im ΔA/2
  const dr = tf.sub(1, tf.mul(alpha, 0.5)); // 1 − ΔA/2 = dr − i·ni
  const den2 = tf.add(tf.square(dr), tf.square(ni)); // |1 − ΔA/2|²
  // λ = (1 + ΔA/2)/(1 − ΔA/2) = −1 + 2/(1 − ΔA/2) = −1 + 2·(dr + i·ni)/|den|²
  const lamRe = tf.sub(tf.div(tf.mul(dr, 2), den2), 1);
  const lamIm = tf.div(tf.mul(ni, 2), den2);
  const [cr, ci] = complexParts(C, [H, M]);
  const [br, bi] = complexParts(B, [H, M]);
  const cbr = tf.sub(tf.mul(cr, br), tf.mul(ci, bi)); // C·B
  const cbi = tf.add(tf.mul(cr, bi), tf.mul(ci, br));
  const s = tf.div(dt, den2); // C̃ = C·B·(dr + i·ni)·Δ/|den|²
  const ctr = tf.mul(tf.sub(tf.mul(cbr, dr), tf.mul(cbi, ni)), s);
  const cti = tf.mul(tf.add(tf.mul(cbr, ni), tf.mul(cbi, dr)), s);

  const P = Math.ceil(Math.sqrt(T)), A = Math.ceil(T / P);
  const [wr, wi] = powers(lamRe, lamIm, P + 1); // λ^0 … λ^P, (P+1, H, M)
  const lpr = tf.slice(wr, P, 1).reshape([H, M]), lpi = tf.slice(wi, P, 1).reshape([H, M]); // λ^P
  const [vr, vi] = powers(lpr, lpi, A); // λ^{aP}, (A, H, M)
  const qr = tf.sub(tf.mul(vr, ctr), tf.mul(vi, cti)); // C̃·λ^{aP}
  const qi = tf.add(tf.mul(vr, cti), tf.mul(vi, ctr));
  const left = tf.transpose(tf.concat([qr, tf.neg(qi)], 2), [1, 0, 2]) as Tensor3D; // (H, A, 2M)
  const right = tf.transpose(tf.concat([tf.slice(wr, 0, P), tf.slice(wi, 0, P)], 2), [1, 2, 0]) as Tensor3D; // (H, 2M, P)
  const k = batchMatmul(left, right).reshape([H, A * P]); // (H, A·P), column a·P + b = l
  return tf.mul(A * P === T ? k : tf.slice(k, [0, 0], [H, T]), 2) as Tensor2D;
}

export const h3: MixerFactory = (cfg, _layer, p) => {
  const d = cfg.d_model, N = cfg.h3_d_state, lMax = cfg.n_positions;
  if (d % HEAD_DIM !== 0) throw new Error(`h3: d_model ${d} is not divisible by head_dim ${HEAD_DIM}`);
  if (N < 2) throw new Error(`h3: h3_d_state ${N} leaves no complex mode (N//2 = 0)`);
  const H = d / HEAD_DIM, M = Math.floor(N / 2);

  // Registration order = state-dict order (state-dict.md §5.4): own Parameters first, then the submodules.
  const ssmKD = p.param('ssm_k_D', [d], { kind: 'normal', std: 1 });
  const D = p.param('D', [H], { kind: 'normal', std: 1 });
  const proj = (name: string) => [p.param(`${name}.weight`, [d, d], LINEAR_W), p.param(`${name}.bias`, [d], ZERO)] as const;
  const [qW, qB] = proj('q_proj');
  const [kW, kB] = proj('k_proj');
  const [vW, vB] = proj('v_proj');
  const e1 = new Float32Array(d * N);
  for (let c = 0; c < d; c++) e1[c * N] = 1;
  const shiftB = p.param('ssm_k_kernel.kernel.B', [d, N], { kind: 'values', values: e1 });
  const shiftC = p.param('ssm_k_kernel.kernel.C', [1, d, N], torchDefault(N));
  const C = p.param('kernel.kernel.C', [1, H, M, 2], { kind: 'normal', std: Math.SQRT1_2 });
  const logDt = p.param('kernel.kernel.log_dt', [H], { kind: 'uniform', low: Math.log(DT_MIN), high: Math.log(DT_MAX) });
  const ones = new Float32Array(H * M * 2);
  for (let i = 0; i < H * M; i++) ones[2 * i] = 1;
  const B = p.param('kernel.kernel.B', [H, M, 2], { kind: 'values', values: ones });
  const invAReal = p.param('kernel.kernel.inv_A_real', [H, M], { kind: 'constant', value: Math.log(0.5) });
  const AImag = p.param('kernel.kernel.A_imag', [H, M], { kind: 'values', values: Float32Array.from({ length: H * M }, (_, i) => -Math.PI * (i % M)) });
  const outW = p.param('output_linear.weight', [d, d], LINEAR_W);
  const outB = p.param('output_linear.bias', [d], ZERO);

  return {
    forward(u: Tensor3D): Tensor3D {
      const [Bsz, T] = u.shape;
      if (T > lMax) throw new Error(`h3: sequence length ${T} exceeds l_max = n_positions = ${lMax}`);
      // One (B·T, d)·(d, 3d) product for q, k, v.
      const qkv = linear(u, tf.concat([qW, kW, vW], 0), tf.concat([qB, kB, vB], 0)); // (B, T, d) → (B, T, 3d)
      const [q, k, v] = tf.split(qkv, 3, 2) as [Tensor3D, Tensor3D, Tensor3D];

      // Shift SSM on k, its D skip in lag 0.
      const kShift = withSkip(crossCorrelation(shiftB as Tensor2D, shiftC.reshape([d, N]) as Tensor2D, T), ssmKD); // (d, T)
      const k2 = causalLongConv(k, kShift); // (B, T, d)

      // Per-head outer products, channel h·4 + i·2 + j, and the head's kernel repeated for its 4 signals.
      const kv = tf.mul(k2.reshape([Bsz, T, H, 2, 1]), v.reshape([Bsz, T, H, 1, 2])).reshape([Bsz, T, 4 * H]) as Tensor3D;
      const kDiag = withSkip(s4dKernel(logDt, C, B, invAReal, AImag, T), D); // (H, T)
      const k4 = tf.broadcastTo(kDiag.reshape([H, 1, T]), [H, 4, T]).reshape([4 * H, T]) as Tensor2D;
      const y = causalLongConv(kv, k4).reshape([Bsz, T, H, 2, 2]); // [.., h, i, j]

      // o[h, j] = Σ_i q[2h+i]·y[h, i, j], kept in (h, j) order; output_linear's input columns are permuted to match
      // zoology's (j, h) order instead of the activations (d² weights instead of B·T·d activations).
      const o = tf.sum(tf.mul(y, q.reshape([Bsz, T, H, 2, 1])), 3).reshape([Bsz, T, d]); // (B, T, d)
      const W = tf.transpose(outW.reshape([d, HEAD_DIM, H]), [0, 2, 1]).reshape([d, d]); // W[:, h·2 + j] = W_zoo[:, j·H + h]
      return linear(o, W, outB) as Tensor3D;
    },
  };
};
