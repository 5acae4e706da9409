/**
 * @module mamba-scan — Mamba-1's selective scan (architectures.md §4, `selective_scan_ref` of mamba_ssm):
 *
 *   h_t = exp(Δ_t ⊗ A) ⊙ h_{t−1} + (Δ_t ⊙ u_t) ⊗ B_t        h_{−1} = 0,  h_t: (E, S) per batch row
 *   y_t = h_t · C_t + D ⊙ u_t                                (sum over the state axis S)
 *
 * Shapes: u, Δ (B, T, E); A (E, S) (already −exp(A_log)); B, C (B, T, S), shared by all E channels; D (E).
 *
 * Two implementations of the same sequential recurrence; neither ever forms exp of a cumulative decay
 * (architectures.md §4 Pitfalls): every factor exp(Δ·A) is ≤ 1, so the scan is stable in float32.
 *  - `selectiveScan` (used by the mixer): one fused op with a hand-written backward pass, looping in plain JS over
 *    typed arrays, like mamba_ssm's CUDA `selective_scan_fn` (which also fuses the softplus of Δ). As tf ops the
 *    recurrence costs ~4 kernel launches per step forward and more backward, on (B, E, S) slices, plus 2.4 M-element
 *    exp/mul kernels; fused, it is one pass over the data each way. Measured at B 32, T 37, E 128, S 16 on wasm
 *    (a shared 2-vCPU machine, CPU time, forward + backward): fused ≈ 55 ms, tf ops ≈ 460 ms. What is left is the
 *    exp of 2.4 M decays (~12 ms) and scalar JS arithmetic; a wasm-SIMD kernel would be the next step.
 *  - `selectiveScanOps`: architectures.md §4 reference form 1 with tf ops only (precompute ΔA = exp(Δ⊗A) and ΔBu for
 *    every t in parallel, one mul+add per step, read out all steps at once). Autodiff gives its gradient; the tests
 *    check the fused op's values and gradients against it.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

// exp for the scan's 2.4 M decays per layer and step (B·T·E·S at B 32, T 37, E 128, S 16): V8's Math.exp costs
// ~15–20 ns here, this ~5 ns. Range reduction x = (k/32)·ln2 + r, |r| ≤ ln2/64, then 2^(k/32) from two tables and a
// degree-4 polynomial for e^r: relative error < 1e-10 (tested against Math.exp), far below float32's 6e-8.
const EXP_K = 32 / Math.LN2, EXP_STEP = Math.LN2 / 32, EXP_BIAS = 35200; // EXP_BIAS/32 = 1100 = offset of EXP_POW2
const EXP_FRAC = Float64Array.from({ length: 32 }, (_, j) => 2 ** (j / 32));
const EXP_POW2 = Float64Array.from({ length: 1810 }, (_, i) => 2 ** (i - 1100));
/** e^x for x ≤ 700 (the scan only needs x = Δ·A ≤ 0); underflows to 0 below −740, NaN stays NaN. */
export function fastExp(x: number): number {
  if (x < -740) return 0;
  const k = (x * EXP_K + EXP_BIAS + 0.5) | 0; // round(x·32/ln2) + EXP_BIAS, ≥ 0 here, so `| 0` floors
  const r = x - (k - EXP_BIAS) * EXP_STEP;
  const p = 1 + r + r * r * (0.5 + r * (1 / 6 + r * (1 / 24)));
  return p * EXP_FRAC[k & 31]! * EXP_POW2[k >> 5]!;
}

function checkShapes(u: Tensor3D, delta: Tensor3D, A: Tensor2D, Bm: Tensor3D, Cm: Tensor3D, D: Tensor): [number, number, number, number] {
  const [B, T, E] = u.shape;
  const S = A.shape[1];
  const ok =
    delta.shape.join() === u.shape.join() && A.shape[0] === E &&
    Bm.shape.join() === [B, T, S].join() && Cm.shape.join() === [B, T, S].join() && D.shape.join() === [E].join();
  if (!ok) {
    throw new Error(`selectiveScan: shapes u [${u.shape}], Δ [${delta.shape}], A [${A.shape}], B [${Bm.shape}], C [${Cm.shape}], D [${D.shape}] ` +
      `do not fit u, Δ (B, T, E); A (E, S); B, C (B, T, S); D (E)`);
  }
  return [B, T, E, S];
}

/** Options shared by both scans. */
export interface ScanOptions {
  /** `delta` is pre-activation: Δ = softplus(delta) is applied inside (mamba_ssm `delta_softplus=True`). */
  deltaSoftplus?: boolean;
}

/**
 * Fused selective scan: (B, T, E) → (B, T, E). Forward keeps h_t and exp(Δ_t A) for the backward pass
 * (2 · B·T·E·S floats: 19 MB at B 32, T 37, E 128, S 16); backward runs the recurrence in reverse:
 *   ∂h_t = ∂y_t C_t + exp(Δ_{t+1} A) ⊙ ∂h_{t+1}
 *   ∂Δ_t = Σ_s ∂h_t·(A·exp(Δ_t A)·h_{t−1} + u_t B_t),  ∂u_t = Σ_s ∂h_t Δ_t B_t + D ∂y_t,  ∂A = Σ ∂h_t·Δ_t exp(Δ_t A) h_{t−1}
 *   ∂B_t = Σ_e ∂h_t Δ_t u_t,  ∂C_t = Σ_e ∂y_t h_t,  ∂D = Σ ∂y_t u_t
 * With `deltaSoftplus`, Δ = softplus(delta) is computed here too and ∂delta = ∂Δ · σ(delta) = ∂Δ · (1 − e^−Δ): the wasm
 * Softplus kernel alone costs more than this whole pass over B·T·E values.
 * Arithmetic is float64 inside the loops, stored as float32.
 */
export function selectiveScan(u: Tensor3D, delta: Tensor3D, A: Tensor2D, Bm: Tensor3D, Cm: Tensor3D, D: Tensor, opts: ScanOptions = {}): Tensor3D {
  // No tape is recording (evaluation, the intervention sweeps): nothing can ask for a gradient of this output, so
  // skip the states the backward pass would need (2·B·T·E·S floats allocated and written per call). Measured on
  // wasm at B 320, T 9, E 128, S 16 (best of 15, shared machine): 77–88 ms with the states, 53 ms without.
  return tf.engine().isTapeOn() ? selectiveScanTrainable(u, delta, A, Bm, Cm, D, opts) : selectiveScanInference(u, delta, A, Bm, Cm, D, opts);
}

/** The fused scan with its gradient: what `selectiveScan` runs while a tape records. */
export function selectiveScanTrainable(u: Tensor3D, delta: Tensor3D, A: Tensor2D, Bm: Tensor3D, Cm: Tensor3D, D: Tensor, opts: ScanOptions = {}): Tensor3D {
  const [B, T, E, S] = checkShapes(u, delta, A, Bm, Cm, D);
  const f = tf.customGrad(((uT: Tensor, dT: Tensor, aT: Tensor, bT: Tensor, cT: Tensor, DT: Tensor) => {
    const x = uT.dataSync() as Float32Array, a = aT.dataSync() as Float32Array, dd = DT.dataSync() as Float32Array;
    const bm = bT.dataSync() as Float32Array, cm = cT.dataSync() as Float32Array;
    const dl = opts.deltaSoftplus ? softplusJS(dT.dataSync() as Float32Array) : dT.dataSync() as Float32Array;
    const H = new Float32Array(B * T * E * S), decay = new Float32Array(B * T * E * S), y = new Float32Array(B * T * E);
    scanForward(B, T, E, S, x, dl, a, bm, cm, dd, H, decay, y);
    const gradFunc = (dyT: Tensor) => {
      const gu = new Float32Array(B * T * E), gdl = new Float32Array(B * T * E);
      const gA = new Float64Array(E * S), gB = new Float64Array(B * T * S), gC = new Float64Array(B * T * S), gD = new Float64Array(E);
      scanBackward(B, T, E, S, x, dl, a, bm, cm, dd, H, decay, dyT.dataSync() as Float32Array, gu, gdl, gA, gB, gC, gD);
      if (opts.deltaSoftplus) for (let i = 0; i < gdl.length; i++) gdl[i]! *= 1 - fastExp(-dl[i]!); // σ(z) = 1 − e^−softplus(z)
      return [
        tf.tensor3d(gu, [B, T, E]), tf.tensor3d(gdl, [B, T, E]), tf.tensor2d(Float32Array.from(gA), [E, S]),
        tf.tensor3d(Float32Array.from(gB), [B, T, S]), tf.tensor3d(Float32Array.from(gC), [B, T, S]), tf.tensor1d(Float32Array.from(gD)),
      ];
    };
    return { value: tf.tensor3d(y, [B, T, E]), gradFunc };
  }) as unknown as CustomGradFn) as unknown as (...xs: Tensor[]) => Tensor3D;
  return f(u, delta, A, Bm, Cm, D);
}

/**
 * State carried across calls (memory.ts): `init` (B, E, S) float64, h before step 0 of each row (default 0);
 * `saveTo(b, t)`, where to put h after step t of row b (E·S values), or null to skip it.
 */
export interface ScanCarry { init?: Float64Array | null; saveTo?: (b: number, t: number) => Float64Array | null }

/**
 * The fused scan's forward pass alone, off the tape: the same arithmetic in the same order as scanForward, so its
 * output is bit-equal to selectiveScanTrainable's (tested), without storing h_t and exp(Δ_t A) for a backward pass.
 */
export function selectiveScanInference(u: Tensor3D, delta: Tensor3D, A: Tensor2D, Bm: Tensor3D, Cm: Tensor3D, D: Tensor, opts: ScanOptions = {},
  carry: ScanCarry = {}): Tensor3D {
  const [B, T, E, S] = checkShapes(u, delta, A, Bm, Cm, D);
  if (carry.init && carry.init.length !== B * E * S) throw new Error(`selectiveScan: initial states hold ${carry.init.length} values, not ${B}·${E}·${S}`);
  const x = u.dataSync() as Float32Array, a = A.dataSync() as Float32Array, dd = D.dataSync() as Float32Array;
  const bm = Bm.dataSync() as Float32Array, cm = Cm.dataSync() as Float32Array;
  const dl = opts.deltaSoftplus ? softplusJS(delta.dataSync() as Float32Array) : delta.dataSync() as Float32Array;
  const y = new Float32Array(B * T * E);
  scanForwardOnly(B, T, E, S, x, dl, a, bm, cm, dd, y, carry);
  return tf.tensor3d(y, [B, T, E]);
}

/** softplus(z) = log(1 + e^z), PyTorch's threshold: z itself above 20. */
function softplusJS(z: Float32Array): Float32Array {
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) {
    const v = z[i]!;
    out[i] = v > 20 ? v : Math.log1p(fastExp(v));
  }
  return out;
}

// The two loops below run time-major (b, t, e, s): the state of all E·S channels of one batch row stays in L1 and
// every (B, T, E, S) array is walked sequentially. Channel-major order (b, e, t, s) strides 8 KB between steps.

function scanForward(B: number, T: number, E: number, S: number, x: Float32Array, dl: Float32Array, a: Float32Array,
  bm: Float32Array, cm: Float32Array, dd: Float32Array, H: Float32Array, decay: Float32Array, y: Float32Array): void {
  const h = new Float64Array(E * S);
  for (let b = 0; b < B; b++) {
    h.fill(0);
    for (let t = 0; t < T; t++) {
      const bt = b * T + t, bs = bt * S;
      for (let e = 0; e < E; e++) {
        const i = bt * E + e, hs = i * S, es = e * S;
        const dlt = dl[i]!, ut = x[i]!, du = dlt * ut;
        let acc = 0;
        for (let s = 0; s < S; s++) {
          const q = fastExp(dlt * a[es + s]!);        // exp(Δ·A) ≤ 1
          const hv = q * h[es + s]! + du * bm[bs + s]!; // h_t = exp(Δ_t A) h_{t−1} + Δ_t u_t B_t
          h[es + s] = hv;
          H[hs + s] = hv;
          decay[hs + s] = q;
          acc += hv * cm[bs + s]!;
        }
        y[i] = acc + dd[e]! * ut;                     // y_t = h_t·C_t + D u_t
      }
    }
  }
}

/**
 * scanForward without the stores: h lives in one (E, S) float64 buffer. A, and each step's B_t and C_t (shared by all
 * E channels), are read once into float64 buffers, so the inner loop does no float32 loads; the values are the same.
 */
function scanForwardOnly(B: number, T: number, E: number, S: number, x: Float32Array, dl: Float32Array, a32: Float32Array,
  bm: Float32Array, cm: Float32Array, dd: Float32Array, y: Float32Array, carry: ScanCarry): void {
  const ES = E * S;
  const h = new Float64Array(ES), a = Float64Array.from(a32), bv = new Float64Array(S), cv = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    if (carry.init) h.set(carry.init.subarray(b * ES, (b + 1) * ES)); else h.fill(0); // resuming: h before step 0
    for (let t = 0; t < T; t++) {
      const bt = b * T + t, bs = bt * S;
      for (let s = 0; s < S; s++) { bv[s] = bm[bs + s]!; cv[s] = cm[bs + s]!; }
      for (let e = 0; e < E; e++) {
        const i = bt * E + e, es = e * S;
        const dlt = dl[i]!, ut = x[i]!, du = dlt * ut;
        let acc = 0;
        for (let s = 0; s < S; s++) {
          const q = fastExp(dlt * a[es + s]!);
          const hv = q * h[es + s]! + du * bv[s]!;
          h[es + s] = hv;
          acc += hv * cv[s]!;
        }
        y[i] = acc + dd[e]! * ut;
      }
      carry.saveTo?.(b, t)?.set(h);
    }
  }
}

function scanBackward(B: number, T: number, E: number, S: number, x: Float32Array, dl: Float32Array, a: Float32Array,
  bm: Float32Array, cm: Float32Array, dd: Float32Array, H: Float32Array, decay: Float32Array, dy: Float32Array,
  gu: Float32Array, gdl: Float32Array, gA: Float64Array, gB: Float64Array, gC: Float64Array, gD: Float64Array): void {
  const ES = E * S;
  const dh = new Float64Array(ES); // ∂L/∂h_t for all channels of one batch row, carried backwards in time
  for (let b = 0; b < B; b++) {
    dh.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      const bt = b * T + t, bs = bt * S;
      for (let e = 0; e < E; e++) {
        const i = bt * E + e, hs = i * S, hp = hs - ES, es = e * S; // h_{t−1} is one step (E·S values) back
        const g = dy[i]!, dlt = dl[i]!, ut = x[i]!, du = dlt * ut;
        gD[e]! += g * ut;
        let gut = g * dd[e]!, gdlt = 0;
        for (let s = 0; s < S; s++) {
          const c = cm[bs + s]!, bv = bm[bs + s]!, q = decay[hs + s]!;
          const dhs = dh[es + s]! + g * c;
          gC[bs + s]! += g * H[hs + s]!;
          const gq = t > 0 ? dhs * H[hp + s]! * q : 0; // ∂L/∂(Δ·A) through exp(Δ·A)·h_{t−1}
          gdlt += gq * a[es + s]! + dhs * ut * bv;
          gA[es + s]! += gq * dlt;
          gut += dhs * dlt * bv;
          gB[bs + s]! += dhs * du;
          dh[es + s] = dhs * q;
        }
        gu[i] = gut;
        gdl[i] = gdlt;
      }
    }
  }
}

/**
 * The same scan from tf ops (architectures.md §4, reference form 1), differentiated by autodiff. Time goes to the
 * leading axis so that each step's slice is contiguous: (T, B, E, S).
 */
export function selectiveScanOps(u: Tensor3D, delta: Tensor3D, A: Tensor2D, Bm: Tensor3D, Cm: Tensor3D, D: Tensor, opts: ScanOptions = {}): Tensor3D {
  const [B, T, E, S] = checkShapes(u, delta, A, Bm, Cm, D);
  const tm = (z: Tensor) => tf.transpose(z, [1, 0, 2]); // (B, T, ·) → (T, B, ·)
  const uT = tm(u), dT = tm(opts.deltaSoftplus ? tf.softplus(delta) : delta);
  const decay = tf.exp(tf.mul(dT.reshape([T, B, E, 1]), A.reshape([1, 1, E, S])));       // (T, B, E, S), every entry ≤ 1
  const dBu = tf.mul(tf.mul(dT, uT).reshape([T, B, E, 1]), tm(Bm).reshape([T, B, 1, S])); // (T, B, E, S)
  const decays = tf.unstack(decay), inputs = tf.unstack(dBu);
  const hs: Tensor[] = [inputs[0]!];
  for (let t = 1; t < T; t++) hs.push(tf.add(tf.mul(decays[t]!, hs[t - 1]!), inputs[t]!)); // h_t = ΔA_t ⊙ h_{t−1} + ΔBu_t
  const H = tf.stack(hs);                                                                   // (T, B, E, S)
  const y = tf.add(tf.sum(tf.mul(H, tm(Cm).reshape([T, B, 1, S])), -1), tf.mul(uT, D));      // (T, B, E)
  return tm(y) as Tensor3D;
}
