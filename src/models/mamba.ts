/**
 * @module mamba — Mamba-1 (selective SSM), mamba_ssm `mamba_simple.Mamba` as tinylang uses it, with tinylang's
 * short-conv ablation (architectures.md §4, paper-setup.md §3.7, state-dict.md §5.6).
 *
 *   [x | z] = in_proj(u)                          d → 2E, no bias; x = rows 0:E, z = rows E:2E
 *   x̃ = SiLU(conv1d(x))                           causal depthwise conv of width K = d_conv, with bias
 *   [δ̂ | B | C] = x_proj(x̃)                       E → R + 2S, no bias, in that order
 *   Δ = softplus(dt_proj(δ̂))                      R → E, bias inside the softplus
 *   y = selective_scan(x̃, Δ, A = −exp(A_log), B, C, D)   (mamba-scan.ts; the softplus is fused into it)
 *   out = out_proj(y ⊙ SiLU(z))                   E → d, no bias
 *
 * d_conv ablation (tinylang `tinylang/model/arch/mamba.py`, paper-setup.md §3.7):
 *   2–4  standard Mamba with that conv width;
 *   1    `MambaNoCausalConv1D`: a width-1 conv, i.e. a per-channel scale + bias, no token mixing;
 *   0    `MambaWithoutConv`: x̃ = SiLU(x). tinylang still creates `conv1d` with the default K = 4 and never uses it
 *        (state-dict.md §5.6), so we create `conv1d.weight` [E, 1, 4] and `conv1d.bias` [E] too: checkpoints keep
 *        tinylang's keys and load with strict=True. These two parameters get no gradient (the optimiser must accept
 *        variables without one; tf.variableGrads returns none for them).
 *
 * Patch sites (all (B, T, E), E = expand·d):
 *   conv_input   x, the conv's input (the x half of in_proj);
 *   conv_output  the conv output BEFORE SiLU (tinylang's `conv1d_output`, paper-setup.md §3.7); with d_conv 0 there
 *                is no conv, so it is the same activation as conv_input, passed through the site again;
 *   ssm_output   y of architectures.md §4 step 8: h_t·C_t + D ⊙ x̃_t, before the gate;
 *   gate         SiLU(z), what y is multiplied by (architectures.md §4 "the gate SiLU(z_t)").
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { causalConv1d, linear, silu } from './ops.ts';
import { streamSeed, torchDefault } from './params.ts';
import type { MixerFactory } from './mixer.ts';
import { selectiveScan, selectiveScanInference } from './mamba-scan.ts';

/** mamba_simple defaults (architectures.md §4 table). */
const DT_MIN = 1e-3, DT_MAX = 1e-1, DT_INIT_FLOOR = 1e-4;
/** `MambaWithoutConv` builds its unused conv1d with mamba_simple's default width. */
const UNUSED_CONV_WIDTH = 4;

/** A_log[e, s] = log(s + 1): the S4D-real init, A = −1, −2, …, −S in every channel. */
function aLogInit(E: number, S: number): Float32Array {
  const v = new Float32Array(E * S);
  for (let e = 0; e < E; e++) for (let s = 0; s < S; s++) v[e * S + s] = Math.log(s + 1);
  return v;
}

/**
 * dt_proj.bias = softplus⁻¹(dt), dt = exp(U[log dt_min, log dt_max]) clamped to ≥ dt_init_floor, so that
 * softplus(bias) starts in [dt_min, dt_max] (architectures.md §4 Initialisation). softplus⁻¹(dt) = dt + log(1 − e^−dt).
 */
function dtBiasInit(E: number, seed: number): Float32Array {
  const u = tf.tidy(() => tf.randomUniform([E], 0, 1, 'float32', seed).dataSync() as Float32Array);
  const v = new Float32Array(E);
  const lo = Math.log(DT_MIN), hi = Math.log(DT_MAX);
  for (let e = 0; e < E; e++) {
    const dt = Math.max(Math.exp(lo + u[e]! * (hi - lo)), DT_INIT_FLOOR);
    v[e] = dt + Math.log(-Math.expm1(-dt));
  }
  return v;
}

export const mamba: MixerFactory = (cfg, _layer, p) => {
  const d = cfg.d_model, E = cfg.expand * d, S = cfg.d_state, R = cfg.dt_rank;
  const K = cfg.d_conv ?? 4;
  if (!Number.isInteger(K) || K < 0) throw new Error(`mamba: d_conv must be an integer ≥ 0 (0 = no conv), got ${K}`);

  // Creation order = state-dict order (state-dict.md §6.1): own Parameters A_log, D first, then the sub-layers.
  const A_log = p.param('A_log', [E, S], { kind: 'values', values: aLogInit(E, S) });
  const D = p.param('D', [E], { kind: 'constant', value: 1 });
  const inProj = p.param('in_proj.weight', [2 * E, d], torchDefault(d));
  const convK = K === 0 ? UNUSED_CONV_WIDTH : K;
  const convW = p.param('conv1d.weight', [E, 1, convK], torchDefault(convK)); // Conv1d fan_in = (in/groups)·K = K
  const convB = p.param('conv1d.bias', [E], torchDefault(convK));
  const xProj = p.param('x_proj.weight', [R + 2 * S, E], torchDefault(E));
  const dtStd = R ** -0.5; // dt_init "random": U(±dt_rank^−½ · dt_scale), dt_scale = 1
  const dtW = p.param('dt_proj.weight', [E, R], { kind: 'uniform', low: -dtStd, high: dtStd });
  const dtB = p.param('dt_proj.bias', [E], { kind: 'values', values: dtBiasInit(E, streamSeed(cfg.seed, p.prefix + 'dt_proj.bias')) });
  // kaiming_uniform(a = √5) = U(±1/√fan_in), then ÷ √n_layers (zoology _init_weights for the Mamba block).
  const outBound = 1 / Math.sqrt(E * cfg.n_layers);
  const outProj = p.param('out_proj.weight', [d, E], { kind: 'uniform', low: -outBound, high: outBound });

  return {
    // After y and SiLU(z) come only y ⊙ gate and out_proj, position by position.
    positionwiseFrom: ['ssm_output', 'gate'],
    resumable: true,
    forward(u, ctx) {
      const mem = ctx.memory;
      if (mem && tf.engine().isTapeOn()) throw new Error('mamba: a memory is for forward passes only (no gradient flows through it)');
      const [B, T] = u.shape;
      const xz = linear(u, inProj);                                           // (B, T, d) → (B, T, 2E)
      const [xIn, z] = tf.split(xz, 2, 2) as [Tensor3D, Tensor3D];            // x, z: (B, T, E) each
      const x = ctx.site('conv_input', xIn);
      // Resuming at `start` (memory.ts): the conv reads its K − 1 earlier inputs from the memory, and the outputs at
      // those lead positions are dropped.
      if (K > 1 && mem?.mode === 'record') mem.keep('conv_input', x.dataSync() as Float32Array, E);
      const lead = K > 1 && mem?.mode === 'resume' ? K - 1 : 0;
      const convIn = lead && mem?.mode === 'resume' ? (tf.concat([tf.tensor3d(mem.before('conv_input', lead), [B, lead, E]), x], 1) as Tensor3D) : x;
      const conv = K === 0 ? x : causalConv1d(convIn, convW, convB);
      const xc = ctx.site('conv_output', lead ? (tf.slice(conv, [0, lead, 0], [B, T, E]) as Tensor3D) : conv); // pre-SiLU
      const xs = silu(xc);                                                    // x̃ (B, T, E)
      const dbc = linear(xs, xProj);                                          // (B, T, R + 2S)
      const [dtLow, Bm, Cm] = tf.split(dbc, [R, S, S], 2) as [Tensor3D, Tensor3D, Tensor3D];
      const dtPre = linear(dtLow, dtW, dtB);                                  // (B, T, E); Δ = softplus(dtPre), bias inside
      const A = tf.neg(tf.exp(A_log)) as Tensor2D;                            // (E, S), real, < 0
      let scanned: Tensor3D;
      if (mem?.mode === 'record') {
        scanned = selectiveScanInference(xs, dtPre, A, Bm, Cm, D, { deltaSoftplus: true }, { saveTo: mem.keepStates('scan_state', E * S) });
      } else if (mem?.mode === 'resume') {
        scanned = selectiveScanInference(xs, dtPre, A, Bm, Cm, D, { deltaSoftplus: true }, { init: mem.stateBefore('scan_state') });
      } else scanned = selectiveScan(xs, dtPre, A, Bm, Cm, D, { deltaSoftplus: true });
      const y = ctx.site('ssm_output', scanned); // (B, T, E)
      const gate = ctx.site('gate', silu(z));                                 // (B, T, E)
      return linear(tf.mul(y, gate) as Tensor3D, outProj);                    // (B, T, E) → (B, T, d)
    },
  };
};
