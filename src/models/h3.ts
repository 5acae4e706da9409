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
 * Cost on wasm (one thread, d = 64, N = 1024, B = 32, T = 37, forward + backward, CPU time on a busy 2-core machine):
 * ≈ 65 ms, of which the kv convolution (2d channels) ≈ 17, the shift convolution ≈ 9, the shift kernel ≈ 12, the
 * S4D kernel ≈ 6, and the projections and the kv/q products the rest.
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

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/** zoology's H3 `head_dim` in every config (tinylang, fig2, models_repo). */
export const HEAD_DIM = 2;
const DT_MIN = 1e-3, DT_MAX = 1e-1;

const LINEAR_W: Init = { kind: 'normal', std: 0.02 };
const ZERO: Init = { kind: 'constant', value: 0 };

/**
 * The S4D kernel K (H, T) from SSKernelDiag's parameters (shapes as stored: log_dt [H], C [1, H, M, 2], B [H, M, 2],
 * inv_A_real and A_imag [H, M]), as ONE op: forward and backward are float64 loops in JS. Exported for tests.
 *
 * Why not TF ops: K[h, l] = 2·Re Σ_m C̃_m·λ_m^l is H·M·T complex terms (606k at tinylang's d = 64, N = 1024,
 * T = 37) built from ~40 elementwise steps on (H, M) tensors. On wasm every op costs ~50 µs before any arithmetic and
 * sin/cos ~35 ns an element; measured forward + backward (busy 2-core machine): all T powers as tensors ≈ 120 ms,
 * exp/sin/cos power tables + one batched product ≈ 60 ms, the same with doubled powers ≈ 50 ms, this ≈ 6 ms.
 *
 * Per mode, with q = ΔA/2, λ = (1 + q)/(1 − q), C̃ = C·B·Δ/(1 − q), the powers are running products (|λ| < 1, so
 * they only shrink; never exp of a growing exponent, architectures.md §10.5). Backward, writing g_z = ∂L/∂Re z +
 * i·∂L/∂Im z and w_l = ∂L/∂K[h, l]:
 *   g_C̃ = 2·conj(S0),  g_λ = 2·conj(C̃·S1),  S0 = Σ_l w_l λ^l,  S1 = Σ_l l·w_l λ^{l−1}   (one Horner pass)
 *   g_q = conj(2/(1−q)²)·g_λ + conj(C̃/(1−q))·g_C̃
 *   g_C = conj(B·Δ/(1−q))·g_C̃,  g_B = conj(C·Δ/(1−q))·g_C̃
 *   ∂L/∂inv_A_real = Re g_q·Re q,  ∂L/∂A_imag = Im g_q·Δ/2,  ∂L/∂log_dt = Σ_m Re(conj(g_q)·q) + Re(conj(g_C̃)·C̃)
 */
export function s4dKernel(logDt: Tensor, C: Tensor, B: Tensor, invAReal: Tensor, AImag: Tensor, T: number): Tensor2D {
  const [H, M] = invAReal.shape as [number, number];
  const f = tf.customGrad(((logDt: Tensor, C: Tensor, B: Tensor, invAReal: Tensor, AImag: Tensor) => {
    const ld = logDt.dataSync(), c = C.dataSync(), b = B.dataSync(), iar = invAReal.dataSync(), aim = AImag.dataSync();
    const K = new Float64Array(H * T);
    for (let h = 0; h < H; h++) {
      const dt = Math.exp(ld[h]!);
      for (let m = 0; m < M; m++) {
        const i = h * M + m;
        const qr = (-Math.exp(iar[i]!) * dt) / 2, qi = (aim[i]! * dt) / 2;
        const n = (1 - qr) * (1 - qr) + qi * qi, ir = (1 - qr) / n, ii = qi / n; // 1/(1 − q)
        const lr = (1 + qr) * ir - qi * ii, li = (1 + qr) * ii + qi * ir; // λ
        const cbr = c[2 * i]! * b[2 * i]! - c[2 * i + 1]! * b[2 * i + 1]!, cbi = c[2 * i]! * b[2 * i + 1]! + c[2 * i + 1]! * b[2 * i]!;
        let pr = (cbr * ir - cbi * ii) * dt, pi = (cbr * ii + cbi * ir) * dt; // C̃·λ^l, l = 0
        for (let l = 0; l < T; l++) {
          K[h * T + l] = K[h * T + l]! + 2 * pr;
          [pr, pi] = [pr * lr - pi * li, pr * li + pi * lr];
        }
      }
    }
    return {
      value: tf.tensor2d(Float32Array.from(K), [H, T]),
      gradFunc: (dK: Tensor) => {
        const w = dK.dataSync();
        const gLd = new Float32Array(H), gC = new Float32Array(H * M * 2), gB = new Float32Array(H * M * 2);
        const gIar = new Float32Array(H * M), gAim = new Float32Array(H * M);
        for (let h = 0; h < H; h++) {
          const dt = Math.exp(ld[h]!);
          let accDt = 0;
          for (let m = 0; m < M; m++) {
            const i = h * M + m;
            const qr = (-Math.exp(iar[i]!) * dt) / 2, qi = (aim[i]! * dt) / 2;
            const n = (1 - qr) * (1 - qr) + qi * qi, ir = (1 - qr) / n, ii = qi / n;
            const lr = (1 + qr) * ir - qi * ii, li = (1 + qr) * ii + qi * ir;
            const cr = c[2 * i]!, ci = c[2 * i + 1]!, br = b[2 * i]!, bi = b[2 * i + 1]!;
            const cbr = cr * br - ci * bi, cbi = cr * bi + ci * br;
            const tr = (cbr * ir - cbi * ii) * dt, ti = (cbr * ii + cbi * ir) * dt; // C̃
            let s0r = 0, s0i = 0, s1r = 0, s1i = 0; // Horner: S0 = Σ w_l λ^l, S1 = its derivative in λ
            for (let l = T - 1; l >= 0; l--) {
              [s1r, s1i] = [s1r * lr - s1i * li + s0r, s1r * li + s1i * lr + s0i];
              [s0r, s0i] = [s0r * lr - s0i * li + w[h * T + l]!, s0r * li + s0i * lr];
            }
            const gtr = 2 * s0r, gti = -2 * s0i; // g_C̃ = 2·conj(S0)
            const glr = 2 * (tr * s1r - ti * s1i), gli = -2 * (tr * s1i + ti * s1r); // g_λ = 2·conj(C̃·S1)
            const i2r = ir * ir - ii * ii, i2i = 2 * ir * ii; // 1/(1 − q)²
            const ar = 2 * i2r, ai = -2 * i2i; // conj(2/(1 − q)²)
            const er = tr * ir - ti * ii, ei = -(tr * ii + ti * ir); // conj(C̃/(1 − q))
            const gqr = ar * glr - ai * gli + er * gtr - ei * gti, gqi = ar * gli + ai * glr + er * gti + ei * gtr;
            gIar[i] = gqr * qr;
            gAim[i] = (gqi * dt) / 2;
            accDt += gqr * qr + gqi * qi + gtr * tr + gti * ti; // Re(conj(g_q)·q) + Re(conj(g_C̃)·C̃)
            const ur = (br * ir - bi * ii) * dt, ui = -(br * ii + bi * ir) * dt; // conj(B·Δ/(1 − q))
            gC[2 * i] = ur * gtr - ui * gti;
            gC[2 * i + 1] = ur * gti + ui * gtr;
            const vr = (cr * ir - ci * ii) * dt, vi = -(cr * ii + ci * ir) * dt; // conj(C·Δ/(1 − q))
            gB[2 * i] = vr * gtr - vi * gti;
            gB[2 * i + 1] = vr * gti + vi * gtr;
          }
          gLd[h] = accDt;
        }
        return [tf.tensor(gLd, logDt.shape), tf.tensor(gC, C.shape), tf.tensor(gB, B.shape), tf.tensor(gIar, invAReal.shape), tf.tensor(gAim, AImag.shape)];
      },
    };
  }) as unknown as CustomGradFn);
  return f(logDt, C, B, invAReal, AImag) as Tensor2D;
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
