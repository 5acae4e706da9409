/**
 * @module delta_net — DeltaNet, fla's `fla.layers.DeltaNet` as zoology and the later tinylang wrap it
 * (architectures.md §5, paper-setup.md §3.8, state-dict.md §5.7 and its Appendix). Maths from fla
 * `fla/ops/delta_rule/naive.py`.
 *
 *   q̃, k̃, ṽ = SiLU(ShortConv_K(W_q u)), SiLU(ShortConv_K(W_k u)), SiLU(ShortConv_K(W_v u))   no biases anywhere
 *   q_t, k_t = q̃_t, k̃_t per head / √(‖·‖² + 1e-6)                                            L2 norm per head
 *   β_t = σ(W_b u_t) ∈ (0, 1)^H                                                            from u, not from a conv
 *   S_t = S_{t−1} + β_t k_t (v_t − S_{t−1}ᵀ k_t)ᵀ,  S_0 = 0,  S ∈ ℝ^{Dh×Dh} per head          the delta rule
 *   o_t = S_tᵀ q_t / √Dh                                                                    the state AFTER step t
 *   out = o_proj(concat_heads(RMSNorm_Dh(o_t)))                                              one norm weight, all heads
 *
 * H = cfg.delta_heads (zoology: 2), Dh = d/H (expand_k = expand_v = 1), K = cfg.d_conv (default 4). d_conv 0 is fla's
 * use_short_conv=False: no conv parameters, q, k, v = SiLU(projection).
 *
 * Three forms of the delta rule, equal up to rounding (tested against each other and a float64 reference):
 *   recurrent  fla `delta_rule_recurrence` in TF ops: one state update per token; the plain reference.
 *   chunked    fla `delta_rule_chunkwise` (WY representation) in TF ops: chunks of C tokens solved in parallel with
 *              (I + N)⁻¹ from a Neumann product; only ⌈T/C⌉ − 1 state updates are serial.
 *   fused      the recurrence as one custom op whose forward and backward are JS loops (deltaRuleFused). Default.
 * Why fused for training: on wasm a batched product with batch > 1 runs a scalar loop at ~1–2 GFLOP/s and every op
 * costs tens of µs (tfjs-backends.md §2), and the delta rule is nothing but small per-head products, so both TF forms
 * spend their time in batched-matmul slow paths and op overhead. CPU time of the rule alone, forward + backward, wasm,
 * B = 32, d = 64, H = 2 (measured on a shared 2-core machine, so only the ratios mean much):
 *   T = 37   fused 34–37 ms   recurrent 80–147 ms   chunked C = 8 82–104 ms, C = 16 98–107 ms
 *   T = 11   fused 10–11 ms   recurrent 18–34 ms    chunked C = 16 (a single chunk) 11–13 ms, C = 8 22–33 ms
 *
 * Patch sites (all (B, T, d)): q_conv, k_conv, v_conv = the outputs of fla's q/k/v_conv1d modules, i.e. AFTER the
 * SiLU that fla's ShortConvolution applies itself (architectures.md §9.3 "post-conv q, k, v"), before the head split
 * and the L2 norm. With d_conv 0 they are SiLU(projection), the same place in the data flow.
 */
import { tf, type Tensor, type Tensor3D } from './tf.ts';
import { causalConv1d, linear, rmsNorm, silu } from './ops.ts';
import { torchDefault } from './params.ts';
import type { MixerFactory } from './mixer.ts';

type Tensor4D = tf.Tensor4D;
type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/** fla `l2norm` epsilon (inside the square root) and the RMSNorm epsilon (norm_eps). */
const L2_EPS = 1e-6;
const NORM_EPS = 1e-5;

/**
 * Chunk size of the chunked form. The in-chunk inverse (I + N)⁻¹ is a Neumann product whose partial sums can reach
 * binomial sizes when keys repeat and β → 1: at most C(C−2, ⌊(C−2)/2⌋), i.e. 20 at C = 8 and 3432 at C = 16
 * (architectures.md §5, "safe only for C ≤ 16"). C = 8 keeps that rounding negligible in fp32, and at T = 37 it
 * costs the same as C = 16.
 */
export const DEFAULT_CHUNK = 8;

/** The form the mixer runs unless told otherwise: the fastest on wasm at T = 37, level with one chunk at T = 11. */
export const DEFAULT_FORM: DeltaRuleForm = 'fused';

// ---------------------------------------------------------------------------------------------------------------
// The delta rule, three ways. Every form takes the heads packed as the mixer makes them, qkv (B, T, 3H, Dh) with
// head axis [q_0 … q_{H−1}, k_0 …, v_0 …], q already L2-normalised and scaled by Dh^−½, k L2-normalised, and
// β (B, T, H); each returns o (B, T, H, Dh).

export type DeltaRule = (qkv: Tensor4D, beta: Tensor3D) => Tensor4D;

/** fla `delta_rule_recurrence` in TF ops: one state update per token (architectures.md §5 reference form 1). */
export const deltaRuleRecurrent: DeltaRule = (qkv, beta) => {
  const [B, T, H3, Dh] = qkv.shape;
  const H = H3 / 3, G = B * H;
  // (B, T·3, H·Dh) → (T·3, B, H·Dh): time and role outermost, so each step's q, k, v are contiguous rows. Rank 3 on
  // purpose: wasm runs rank-5/6 transposes far slower (see deltaRuleChunked).
  const rows = tf.unstack(tf.transpose(qkv.reshape([B, 3 * T, H * Dh]), [1, 0, 2]).reshape([3 * T, G, 1, Dh]));
  const betas = tf.unstack(tf.transpose(beta, [1, 0, 2]).reshape([T, G, 1, 1])); // T × (G, 1, 1)
  let S: Tensor3D | null = null; // (G, Dh, Dh): rows index the key, columns the value
  const out: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const q = rows[3 * t] as Tensor3D, k = rows[3 * t + 1] as Tensor3D, v = rows[3 * t + 2] as Tensor3D; // (G, 1, Dh)
    const r = S ? tf.sub(v, tf.matMul(k, S)) : v; // v_t − S_{t−1}ᵀ k_t, as a row
    const u = tf.mul(r, betas[t]!); // what gets written
    const write = tf.mul(k.reshape([G, Dh, 1]), u) as Tensor3D; // k_t u_tᵀ, an outer product (G, Dh, Dh)
    S = S ? (tf.add(S, write) as Tensor3D) : write;
    out.push(tf.matMul(q, S)); // o_t = S_tᵀ q_t, read from the state after step t (G, 1, Dh)
  }
  return tf.transpose(tf.stack(out).reshape([T, B, H, Dh]), [1, 0, 2, 3]) as Tensor4D; // (T, B, H, Dh) → (B, T, H, Dh)
};

/** Constant (C, C) masks built in JS, so no gradient passes through a comparison (tfjs-backends.md §3). */
function triMask(C: number, withDiagonal: boolean): Tensor {
  const m = new Float32Array(C * C);
  for (let i = 0; i < C; i++) for (let j = 0; j < (withDiagonal ? i + 1 : i); j++) m[i * C + j] = 1;
  return tf.tensor2d(m, [C, C]);
}

/**
 * (I + N)⁻¹ for strictly lower-triangular N (…, C, C). N is nilpotent, so (I + N)⁻¹ = Σ_{m<C} (−N)^m
 * = (I − N)(I + N²)(I + N⁴)…, exact once the last power reaches C: ⌈log₂C⌉ − 1 squarings and as many products,
 * no loop over rows (architectures.md §5 form 2, option b; TF.js has no triangular solve).
 */
function unitLowerInverse(N: Tensor3D, C: number): Tensor3D {
  let P = tf.sub(tf.eye(C), N) as Tensor3D; // Σ_{m<2} (−N)^m
  let M = N;
  for (let span = 2; span < C; span *= 2) {
    M = tf.matMul(M, M); // N^span (an even power, so (−N)^span = N^span)
    P = tf.add(P, tf.matMul(P, M)) as Tensor3D; // P (I + N^span): now Σ_{m<2·span} (−N)^m
  }
  return P;
}

/**
 * fla `delta_rule_chunkwise` in TF ops (architectures.md §5 form 2). Per chunk of C tokens, with Kβ = diag(β)K,
 * Vβ = diag(β)V:
 *   N = strict_tril(Kβ Kᵀ),  W = (I + N)⁻¹ Kβ,  U = (I + N)⁻¹ Vβ        (the WY representation)
 *   u = U − W S,  o = Q S + tril(Q Kᵀ) u,  S ← S + Kᵀ u                 (S = state before the chunk)
 * Rearranged so that only the state update is serial and everything else is one batched product over all chunks:
 *   o = tril(QKᵀ) U + (Q − tril(QKᵀ) W) S,   S ← S + KᵀU − (KᵀW) S.
 * T is padded with zeros to a multiple of C; padded keys have β·k = 0 and come after every real token.
 */
export function deltaRuleChunked(chunk = DEFAULT_CHUNK): DeltaRule {
  return (qkv, beta) => {
    const [B, T, H3, Dh] = qkv.shape;
    const H = H3 / 3, G = B * H;
    const C = Math.min(chunk, T);
    const n = Math.ceil(T / C), Tp = n * C;
    const padT = <R extends Tensor>(x: R): R => (Tp > T ? tf.pad(x, [[0, 0], [0, Tp - T], ...x.shape.slice(2).map(() => [0, 0] as [number, number])]) : x) as R;
    // Batch order (b, chunk, h) throughout. Every reshuffle stays at rank ≤ 4: on wasm, rank-5/6 transposes and slices
    // of these ~80K-element tensors took 20–190 ms each (measured), rank ≤ 4 ones well under 1 ms.
    const x = tf.transpose(padT(qkv).reshape([B * n, C, 3 * H, Dh]), [0, 2, 1, 3]).reshape([B * n, 3, H * C * Dh]); // (Bn, 3, H·C·Dh)
    const part = (i: number) => tf.slice(x, [0, i, 0], [B * n, 1, H * C * Dh]).reshape([n * G, C, Dh]) as Tensor3D;
    const Q = part(0), K = part(1), V = part(2); // (nG, C, Dh)
    const b = tf.transpose(padT(beta).reshape([B * n, C, H]), [0, 2, 1]).reshape([n * G, C, 1]); // (nG, C, 1)
    const Kb = tf.mul(K, b) as Tensor3D;
    const N = tf.mul(tf.matMul(Kb, K, false, true), triMask(C, false)) as Tensor3D; // (nG, C, C)
    const WU = tf.matMul(unitLowerInverse(N, C), tf.concat([Kb, tf.mul(V, b)], 2)); // [W | U] (nG, C, 2Dh)
    const A = tf.mul(tf.matMul(Q, K, false, true), triMask(C, true)) as Tensor3D; // tril(QKᵀ), diagonal kept
    const AWU = tf.matMul(A, WU); // [AW | AU]
    const intra = tf.slice(AWU, [0, 0, Dh], [n * G, C, Dh]); // tril(QKᵀ) U: the chunk's own contribution
    let o: Tensor = intra;
    if (n > 1) {
      const Qs = tf.sub(Q, tf.slice(AWU, [0, 0, 0], [n * G, C, Dh])); // Q − tril(QKᵀ) W: how the query reads S
      const Kt = tf.transpose(K, [0, 2, 1]); // (nG, Dh, C); explicit: a transposeA product is 2× slower on wasm
      const perChunk = (y: Tensor) => { // chunk i of a (nG, Dh, Dh) tensor: (G, Dh, Dh)
        const y3 = y.reshape([B, n, H * Dh * Dh]);
        return Array.from({ length: n }, (_, i) => tf.slice(y3, [0, i, 0], [B, 1, H * Dh * Dh]).reshape([G, Dh, Dh]));
      };
      const dec = perChunk(tf.matMul(Kt, tf.slice(WU, [0, 0, 0], [n * G, C, Dh]))); // KᵀW
      const inc = perChunk(tf.matMul(Kt, tf.slice(WU, [0, 0, Dh], [n * G, C, Dh]))); // KᵀU
      const states: Tensor[] = [tf.zeros([B, 1, H * Dh * Dh])]; // the state before chunk 0
      let S = inc[0]!; // before chunk 1
      states.push(S.reshape([B, 1, H * Dh * Dh]));
      for (let i = 1; i < n - 1; i++) {
        S = tf.add(S, tf.sub(inc[i]!, tf.matMul(dec[i]!, S)));
        states.push(S.reshape([B, 1, H * Dh * Dh]));
      }
      o = tf.add(intra, tf.matMul(Qs, tf.concat(states, 1).reshape([n * G, Dh, Dh]))); // + (Q − AW) S_before
    }
    // (Bn·H, C, Dh) → (Bn, C, H, Dh) → (B, Tp, H, Dh)
    const o4 = tf.transpose(o.reshape([B * n, H, C, Dh]), [0, 2, 1, 3]).reshape([B, Tp, H, Dh]);
    return (Tp > T ? tf.slice(o4, [0, 0, 0, 0], [B, T, H, Dh]) : o4) as Tensor4D;
  };
}

/**
 * Sizes of one fused call. The loops take two value columns at a time, which V8 runs 1.3–1.5× faster than one, so
 * an odd Dh is padded to P = Dh + 1 with a zero row and column: k and v are zero there, so r, S and o stay zero too.
 */
interface Dims { B: number; T: number; H: number; Dh: number; P: number }

/** Copy one head's Dh-vector at `off` into a float64 buffer of length P (the padding stays 0). */
function load(dst: Float64Array, src: Float32Array, off: number, Dh: number): void {
  for (let i = 0; i < Dh; i++) dst[i] = src[off + i]!;
}

/**
 * Forward over packed x (B, T, 3H, Dh) and β (B, T, H): fills o (B, T, H, Dh) and, when `keep` is given (training),
 * every r_t and every head's S_T for the backward pass; without it, r and S live in scratch buffers. `carry` gives
 * the states before step 0 and/or takes the state after every step (forward-only passes, memory.ts).
 *
 * One pass over S per step, four value columns at a time (then two): it updates S_t = S_{t−1} + β_t k_t r_tᵀ, reads
 * o_t = S_tᵀ q_t and already accumulates the next step's r_{t+1} = v_{t+1} − S_tᵀ k_{t+1} from the fresh S_t, all sums
 * in registers. Every sum runs over the key index i in ascending order, as the earlier separate r pass and
 * update-then-read pass did, so the numbers are the same bit for bit; S is walked once per step instead of twice.
 * Measured on wasm, B 320, T 9, H 2, Dh 32 (forward only, best of 15): 27–31 ms before, 15 ms (keep omitted) to 16 ms.
 */
function fusedForward(d: Dims, x: Float32Array, bt: Float32Array, o: Float32Array, keep?: { rs: Float64Array; finals: Float64Array },
  carry?: Carry): void {
  const { B, T, H, Dh, P } = d, PP = P * P;
  const q = new Float64Array(P), ku = new Float64Array(P), kn = new Float64Array(P), v = new Float64Array(P);
  // Without `keep`, one P-vector holds r: a column's r_{t+1} is written only after its r_t was read.
  const scratchR = keep ? null : new Float64Array(P), scratchS = keep ? null : new Float64Array(PP);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const g = b * H + h;
    const S = keep ? keep.finals.subarray(g * PP, (g + 1) * PP) : scratchS!.fill(0); // updated in place from S_0 = 0
    if (carry?.init) S.set(carry.init.subarray(g * PP, (g + 1) * PP)); // resuming: the state before step 0 (memory.ts)
    const rs = keep ? keep.rs : scratchR!;
    const rAt = keep ? (t: number) => (g * T + t) * P : () => 0; // where r_t lives
    const kAt = (t: number) => ((b * T + t) * 3 * H + H + h) * Dh;
    // r_0 = v_0 − S_{−1}ᵀ k_0 (S_{−1} = 0 or the carried state), computed as every later r is (so signed zeros agree too).
    load(kn, x, kAt(0), Dh); load(v, x, ((b * T) * 3 * H + 2 * H + h) * Dh, Dh);
    for (let j = 0, r0 = rAt(0); j < P; j++) {
      let a = v[j]!;
      for (let i = 0; i < P; i++) a -= kn[i]! * S[i * P + j]!;
      rs[r0 + j] = a;
    }
    const saveTo = carry?.saveTo;
    for (let t = 0; t < T; t++) {
      const row3 = (b * T + t) * 3 * H, beta_t = bt[(b * T + t) * H + h]!, r0 = rAt(t);
      load(q, x, (row3 + h) * Dh, Dh);
      for (let i = 0; i < P; i++) ku[i] = kn[i]! * beta_t; // kn holds k_t here
      const next = t + 1 < T, r1 = next ? rAt(t + 1) : 0;
      if (next) { load(kn, x, kAt(t + 1), Dh); load(v, x, ((b * T + t + 1) * 3 * H + 2 * H + h) * Dh, Dh); }
      const o0 = ((b * T + t) * H + h) * Dh;
      let j = 0;
      for (; j + 4 <= Dh; j += 4) { // four value columns at a time while they are all real (not padding)
        const u0 = rs[r0 + j]!, u1 = rs[r0 + j + 1]!, u2 = rs[r0 + j + 2]!, u3 = rs[r0 + j + 3]!;
        let oa0 = 0, oa1 = 0, oa2 = 0, oa3 = 0, n0 = v[j]!, n1 = v[j + 1]!, n2 = v[j + 2]!, n3 = v[j + 3]!;
        for (let i = 0, c = j; i < P; i++, c += P) {
          const kui = ku[i]!, qi = q[i]!, ki = kn[i]!;
          const s0 = S[c]! + kui * u0, s1 = S[c + 1]! + kui * u1, s2 = S[c + 2]! + kui * u2, s3 = S[c + 3]! + kui * u3;
          S[c] = s0; S[c + 1] = s1; S[c + 2] = s2; S[c + 3] = s3;
          oa0 += qi * s0; oa1 += qi * s1; oa2 += qi * s2; oa3 += qi * s3;
          n0 -= ki * s0; n1 -= ki * s1; n2 -= ki * s2; n3 -= ki * s3;
        }
        o[o0 + j] = oa0; o[o0 + j + 1] = oa1; o[o0 + j + 2] = oa2; o[o0 + j + 3] = oa3;
        if (next) { rs[r1 + j] = n0; rs[r1 + j + 1] = n1; rs[r1 + j + 2] = n2; rs[r1 + j + 3] = n3; }
      }
      for (; j < P; j += 2) {
        const u0 = rs[r0 + j]!, u1 = rs[r0 + j + 1]!;
        let o0a = 0, o1a = 0, n0 = v[j]!, n1 = v[j + 1]!;
        for (let i = 0, c = j; i < P; i++, c += P) {
          const s0 = S[c]! + ku[i]! * u0, s1 = S[c + 1]! + ku[i]! * u1;
          S[c] = s0; S[c + 1] = s1;
          const qi = q[i]!, ki = kn[i]!;
          o0a += qi * s0; o1a += qi * s1;
          n0 -= ki * s0; n1 -= ki * s1;
        }
        if (j < Dh) o[o0 + j] = o0a;
        if (j + 1 < Dh) o[o0 + j + 1] = o1a;
        if (next) { rs[r1 + j] = n0; rs[r1 + j + 1] = n1; }
      }
      saveTo?.(b, t)?.set(S, h * PP);
    }
  }
}

/** Backward of fusedForward: from dO (B, T, H, Dh) fills dx (B, T, 3H, Dh) and dβ (B, T, H). */
function fusedBackward(d: Dims, x: Float32Array, bt: Float32Array, dO: Float32Array, rs: Float64Array, finals: Float64Array,
  dx: Float32Array, dbeta: Float32Array): void {
  const { B, T, H, Dh, P } = d, PP = P * P;
  const q = new Float64Array(P), k = new Float64Array(P), dov = new Float64Array(P);
  const du = new Float64Array(P), dq = new Float64Array(P), dk = new Float64Array(P);
  const S = new Float64Array(PP), dS = new Float64Array(PP);
  const store = (src: Float64Array, off: number) => { for (let i = 0; i < Dh; i++) dx[off + i] = src[i]!; };
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const g = b * H + h;
    S.set(finals.subarray(g * PP, (g + 1) * PP)); // S_T, walked back to S_0 below
    dS.fill(0); // ∂L/∂S_t, carried backwards in time
    for (let t = T - 1; t >= 0; t--) {
      const row3 = (b * T + t) * 3 * H, o0 = ((b * T + t) * H + h) * Dh;
      load(q, x, (row3 + h) * Dh, Dh); load(k, x, (row3 + H + h) * Dh, Dh); load(dov, dO, o0, Dh);
      const beta_t = bt[(b * T + t) * H + h]!, r0 = (g * T + t) * P;
      du.fill(0);
      for (let i = 0; i < P; i++) { // S holds S_t
        const qi = q[i]!, ki = k[i]!, row = i * P;
        let dqi = 0, dki = 0;
        for (let j = 0; j < P; j += 2) {
          const g0 = dov[j]!, g1 = dov[j + 1]!;
          dqi += S[row + j]! * g0 + S[row + j + 1]! * g1; // o = S_tᵀ q
          const d0 = dS[row + j]! + qi * g0, d1 = dS[row + j + 1]! + qi * g1;
          dS[row + j] = d0; dS[row + j + 1] = d1;
          du[j]! += ki * d0; du[j + 1]! += ki * d1; // S_t = S_{t−1} + k uᵀ
          dki += d0 * rs[r0 + j]! + d1 * rs[r0 + j + 1]!;
        }
        dq[i] = dqi;
        dk[i] = dki * beta_t; // dS_t u, u = β r
      }
      let db = 0;
      for (let j = 0; j < P; j++) { // u = β r
        db += du[j]! * rs[r0 + j]!;
        du[j]! *= beta_t; // now dr = dv
      }
      dbeta[(b * T + t) * H + h] = db;
      if (t > 0) { // S_{−1} = 0: at t = 0 nothing flows further back
        for (let i = 0; i < P; i++) { // undo step t, then r = v − S_{t−1}ᵀ k
          const ki = k[i]!, ku = ki * beta_t, row = i * P;
          let dki = 0;
          for (let j = 0; j < P; j += 2) {
            const p0 = S[row + j]! - ku * rs[r0 + j]!, p1 = S[row + j + 1]! - ku * rs[r0 + j + 1]!;
            S[row + j] = p0; S[row + j + 1] = p1;
            dki += p0 * du[j]! + p1 * du[j + 1]!;
            dS[row + j]! -= ki * du[j]!; dS[row + j + 1]! -= ki * du[j + 1]!;
          }
          dk[i]! -= dki;
        }
      }
      store(dq, (row3 + h) * Dh); store(dk, (row3 + H + h) * Dh); store(du, (row3 + 2 * H + h) * Dh);
    }
  }
}

/**
 * The recurrent form as one fused op: forward and backward are plain JS loops, one (batch row, head) at a time with
 * its Dh×Dh state in float64. Why: on wasm every TF op costs tens of µs and a batched product with batch > 1 runs a
 * scalar loop (tfjs-backends.md §2), and the delta rule is nothing but small per-head products, so the TF forms spend
 * their time in op overhead. The forward pass keeps r_t = v_t − S_{t−1}ᵀ k_t and the final state; the backward pass
 * walks back in time, undoing one update per step (S_{t−1} = S_t − β_t k_t r_tᵀ, exact up to float64 rounding), so
 * it needs no stored states (B·H·T·Dh² of them) and no second forward pass:
 *   o_t = S_tᵀ q_t            → dq_t = S_t do_t,           dS_t += q_t do_tᵀ
 *   S_t = S_{t−1} + k_t u_tᵀ   → du_t = dS_tᵀ k_t,          dk_t += dS_t u_t,           dS_{t−1} = dS_t + …
 *   u_t = β_t r_t             → dβ_t = du_t·r_t,           dr_t = β_t du_t = dv_t
 *   r_t = v_t − S_{t−1}ᵀ k_t   → dk_t −= S_{t−1} dr_t,      dS_{t−1} −= k_t dr_tᵀ
 * Checked against autodiff of deltaRuleRecurrent in the tests.
 */
export const deltaRuleFused: DeltaRule = (qkv, beta) =>
  // No tape is recording (evaluation, the intervention sweeps): nothing can ask for a gradient, so keep nothing.
  tf.engine().isTapeOn() ? deltaRuleFusedTrainable(qkv, beta) : deltaRuleFusedInference(qkv, beta);

const dimsOf = (qkv: Tensor4D): Dims => {
  const [B, T, H3, Dh] = qkv.shape;
  return { B, T, H: H3 / 3, Dh, P: Dh + (Dh % 2) };
};

/**
 * State carried across calls (memory.ts): `init` (B, H, P, P) float64, the state before step 0 of each row (default 0);
 * `saveTo(b, t)`, where to put the state after step t of row b (H·P² values), or null to skip it. P = Dh rounded up
 * to even (Dims).
 */
export interface Carry { init?: Float64Array | null; saveTo?: (b: number, t: number) => Float64Array | null }

/** The state size of one row for `carry`: H·P². */
export const carryWidth = (H: number, Dh: number): number => H * (Dh + (Dh % 2)) ** 2;

/** The fused forward pass alone, off the tape: the same kernel without the saved r_t and S_T, bit-equal (tested). */
export const deltaRuleFusedInference = (qkv: Tensor4D, beta: Tensor3D, carry: Carry = {}): Tensor4D => {
  const d = dimsOf(qkv);
  const { B, T, H, Dh, P } = d;
  if (carry.init && carry.init.length !== B * H * P * P) throw new Error(`delta rule: initial states hold ${carry.init.length} values, not ${B}·${H}·${P}²`);
  const o = new Float32Array(B * T * H * Dh);
  fusedForward(d, qkv.dataSync() as Float32Array, beta.dataSync() as Float32Array, o, undefined, carry);
  return tf.tensor4d(o, [B, T, H, Dh]);
};

/** The fused op with its hand-written gradient: what deltaRuleFused runs while a tape records. */
export const deltaRuleFusedTrainable: DeltaRule = (qkv, beta) => {
  const d = dimsOf(qkv);
  const { B, T, Dh } = d;
  const f = tf.customGrad(((qkvIn: Tensor, betaIn: Tensor) => {
    const x = qkvIn.dataSync() as Float32Array, bt = betaIn.dataSync() as Float32Array;
    const o = new Float32Array(B * T * d.H * Dh);
    const rs = new Float64Array(B * d.H * T * d.P); // r_t of every head and step, for the backward pass
    const finals = new Float64Array(B * d.H * d.P * d.P); // S_T of every head
    fusedForward(d, x, bt, o, { rs, finals });
    const gradFunc = (dy: Tensor) => {
      const dx = new Float32Array(x.length), dbeta = new Float32Array(bt.length);
      fusedBackward(d, x, bt, dy.dataSync() as Float32Array, rs, finals, dx, dbeta);
      return [tf.tensor(dx, qkvIn.shape), tf.tensor(dbeta, betaIn.shape)];
    };
    return { value: tf.tensor4d(o, [B, T, d.H, Dh]), gradFunc };
  }) as unknown as CustomGradFn);
  return f(qkv, beta) as Tensor4D;
};

// ---------------------------------------------------------------------------------------------------------------
// The mixer.

export type DeltaRuleForm = 'recurrent' | 'chunked' | 'fused';

export interface DeltaNetOptions {
  /** Which form of the delta rule the forward pass runs (default: fused, the fastest on wasm; see DEFAULT_FORM). */
  form?: DeltaRuleForm;
  /** Chunk size of the chunked form. */
  chunk?: number;
}

/** The delta rule a form name stands for. */
export function deltaRule(form: DeltaRuleForm, chunk = DEFAULT_CHUNK): DeltaRule {
  return form === 'recurrent' ? deltaRuleRecurrent : form === 'chunked' ? deltaRuleChunked(chunk) : deltaRuleFused;
}

/** A DeltaNet factory with a chosen form; `deltaNet` below is the default one the registry uses. */
export function makeDeltaNet(opts: DeltaNetOptions = {}): MixerFactory {
  const rule = deltaRule(opts.form ?? DEFAULT_FORM, opts.chunk ?? DEFAULT_CHUNK);
  // Only the fused form carries its state across calls, so only it records and resumes (memory.ts).
  const resumable = (opts.form ?? DEFAULT_FORM) === 'fused';
  return (cfg, _layer, p) => {
    const D = cfg.d_model, H = cfg.delta_heads;
    if (D % H !== 0) throw new Error(`delta_net: d_model ${D} is not divisible by delta_heads ${H}`);
    const Dh = D / H;
    const K = cfg.d_conv ?? 4;
    // Parameters in fla's registration order (state-dict.md Appendix). Non-Mamba init (architectures.md §1.6):
    // Linear N(0, 0.02), o_proj NOT rescaled (its name has no `out_proj`); the depthwise convs keep Conv1d's
    // default U(±1/√K) (fan_in = 1·K); RMSNorm weight 1.
    const lin = { kind: 'normal', std: 0.02 } as const;
    const wq = p.param('q_proj.weight', [D, D], lin);
    const wk = p.param('k_proj.weight', [D, D], lin);
    const wv = p.param('v_proj.weight', [D, D], lin);
    const wb = p.param('b_proj.weight', [H, D], lin);
    const convs = K > 0 ? ['q', 'k', 'v'].map((s) => p.param(`${s}_conv1d.weight`, [D, 1, K], torchDefault(K))) : [];
    const g = p.param('o_norm.weight', [Dh], { kind: 'constant', value: 1 });
    const wo = p.param('o_proj.weight', [D, D], lin);

    // Per-head factor after the L2 norm, over the packed (q, k, v) head axis: q also gets the read-out scale Dh^−½
    // (fla's default scale, folded in here), k gets 1, and v is not normalised: 0·rsqrt + 1 is exactly 1.
    const gainV = new Float32Array(3 * H), offV = new Float32Array(3 * H);
    for (let h = 0; h < H; h++) { gainV[h] = 1 / Math.sqrt(Dh); gainV[H + h] = 1; offV[2 * H + h] = 1; }

    return {
      // q_t is only read out at t (o_t = S_tᵀ q_t; no state depends on q), and all that follows is per position.
      positionwiseFrom: ['q_conv'],
      resumable,
      forward(x: Tensor3D, ctx): Tensor3D {
        const [B, T] = x.shape;
        const mem = resumable ? ctx.memory : undefined;
        if (mem && tf.engine().isTapeOn()) throw new Error('delta_net: a memory is for forward passes only (no gradient flows through it)');
        // q, k, v and β in one 2-D product: the four weights stacked along their output rows.
        const proj = linear(x, tf.concat([wq, wk, wv, wb], 0)); // (B, T, D) → (B, T, 3D + H)
        const pre = tf.slice(proj, [0, 0, 0], [B, T, 3 * D]) as Tensor3D; // (B, T, 3D)
        const betaLogit = tf.slice(proj, [0, 0, 3 * D], [B, T, H]) as Tensor3D; // (B, T, H)
        // The three depthwise convs are one conv over the 3D stacked channels (same width, no bias); fla's
        // ShortConvolution applies the SiLU itself (activation='silu' for q, k and v). Resuming at `start`, the conv
        // reads its K − 1 earlier inputs from the memory; its outputs at those lead positions are dropped.
        if (K > 1 && mem?.mode === 'record') mem.keep('conv_input', pre.dataSync() as Float32Array, 3 * D);
        const lead = K > 1 && mem?.mode === 'resume' ? K - 1 : 0;
        const convIn = lead && mem?.mode === 'resume' ? (tf.concat([tf.tensor3d(mem.before('conv_input', lead), [B, lead, 3 * D]), pre], 1) as Tensor3D) : pre;
        const conv = K > 0 ? causalConv1d(convIn, tf.concat(convs, 0)) : pre;
        const act = silu(lead ? (tf.slice(conv, [0, lead, 0], [B, T, 3 * D]) as Tensor3D) : conv); // (B, T, 3D)

        const q0 = tf.slice(act, [0, 0, 0], [B, T, D]) as Tensor3D;
        const k0 = tf.slice(act, [0, 0, D], [B, T, D]) as Tensor3D;
        const v0 = tf.slice(act, [0, 0, 2 * D], [B, T, D]) as Tensor3D;
        const qs = ctx.site('q_conv', q0), ks = ctx.site('k_conv', k0), vs = ctx.site('v_conv', v0);
        // Sites that were not patched hand back their input: keep the stacked tensor then (no concat when training).
        const qkv = qs === q0 && ks === k0 && vs === v0 ? act : (tf.concat([qs, ks, vs], 2) as Tensor3D);

        // Heads, then the L2 norm per head: x / √(‖x‖² + 1e-6) (fla l2norm), for q and k only.
        const heads = qkv.reshape([B, T, 3 * H, Dh]); // (B, T, 3D) → (B, T, 3H, Dh): q heads, k heads, v heads
        const inv = tf.rsqrt(tf.add(tf.sum(tf.square(heads), 3, true), L2_EPS)); // (B, T, 3H, 1)
        const factor = tf.add(tf.mul(inv, tf.tensor4d(gainV, [1, 1, 3 * H, 1])), tf.tensor4d(offV, [1, 1, 3 * H, 1]));
        const beta = tf.sigmoid(betaLogit); // (B, T, H), in (0, 1)

        const qkvNormed = tf.mul(heads, factor) as Tensor4D;
        let o: Tensor4D; // (B, T, H, Dh)
        if (mem?.mode === 'record') {
          o = deltaRuleFusedInference(qkvNormed, beta, { saveTo: mem.keepStates('rule_state', carryWidth(H, Dh)) });
        } else if (mem?.mode === 'resume') o = deltaRuleFusedInference(qkvNormed, beta, { init: mem.stateBefore('rule_state') });
        else o = rule(qkvNormed, beta);
        const normed = rmsNorm(o, g, NORM_EPS); // per head, one weight shared by all heads
        return linear(normed.reshape([B, T, D]) as Tensor3D, wo); // (B, T, D)
      },
    };
  };
}

export const deltaNet: MixerFactory = makeDeltaNet();
