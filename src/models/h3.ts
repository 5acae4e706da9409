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
 * Complex numbers are (re, im) pairs (C and B are stored view_as_real, [..., 2]). The powers λ^l are built by
 * doubling (λ^0..λ^{n−1} times λ^n), never as exp(l·log λ): |λ| < 1, so the products only shrink, and a (H, M, T)
 * tensor of exp/cos/sin would cost ~50 ms on wasm at tinylang's M = 512.
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

/**
 * The S4D kernel K (H, T) from SSKernelDiag's parameters (shapes as stored, C [1, H, M, 2]).
 * Exported for tests.
 */
export function s4dKernel(logDt: Tensor, C: Tensor, B: Tensor, invAReal: Tensor, AImag: Tensor, T: number): Tensor2D {
  const [H, M] = invAReal.shape as [number, number];
  const dt = tf.exp(logDt).reshape([H, 1]); // Δ (H, 1)
  const alpha = tf.mul(tf.neg(tf.exp(invAReal)), dt); // Re ΔA (H, M)
  const beta = tf.mul(AImag, dt); // Im ΔA
  const nr = tf.add(1, tf.mul(alpha, 0.5)); // 1 + ΔA/2 = nr + i·ni
  const ni = tf.mul(beta, 0.5);
  const dr = tf.sub(1, tf.mul(alpha, 0.5)); // 1 − ΔA/2 = dr − i·ni
  const den2 = tf.add(tf.square(dr), tf.square(ni)); // |1 − ΔA/2|²
  // λ = (nr + i ni)(dr + i ni)/|den|²; Im uses nr + dr = 2
  const lamRe = tf.div(tf.sub(tf.mul(nr, dr), tf.square(ni)), den2);
  const lamIm = tf.div(tf.mul(ni, 2), den2);
  const [cr, ci] = complexParts(C, [H, M]);
  const [br, bi] = complexParts(B, [H, M]);
  const cbr = tf.sub(tf.mul(cr, br), tf.mul(ci, bi)); // C·B
  const cbi = tf.add(tf.mul(cr, bi), tf.mul(ci, br));
  const s = tf.div(dt, den2); // C̃ = C·B·(dr + i ni)·Δ/|den|²
  let re: Tensor = tf.mul(tf.sub(tf.mul(cbr, dr), tf.mul(cbi, ni)), s).reshape([H, M, 1]); // C̃·λ^l for l < len
  let im: Tensor = tf.mul(tf.add(tf.mul(cbr, ni), tf.mul(cbi, dr)), s).reshape([H, M, 1]);
  let pr: Tensor = lamRe.reshape([H, M, 1]); // λ^len
  let pi: Tensor = lamIm.reshape([H, M, 1]);
  for (let len = 1; len < T;) {
    const n = Math.min(len, T - len);
    const ar = n < len ? tf.slice(re, [0, 0, 0], [H, M, n]) : re;
    const ai = n < len ? tf.slice(im, [0, 0, 0], [H, M, n]) : im;
    re = tf.concat([re, tf.sub(tf.mul(ar, pr), tf.mul(ai, pi))], 2); // (H, M, len + n)
    im = tf.concat([im, tf.add(tf.mul(ar, pi), tf.mul(ai, pr))], 2);
    len += n;
    if (len < T) [pr, pi] = [tf.sub(tf.square(pr), tf.square(pi)), tf.mul(tf.mul(pr, pi), 2)];
  }
  return tf.mul(tf.sum(re, 1), 2) as Tensor2D; // 2·Re Σ_m (H, T)
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
