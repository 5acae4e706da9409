/**
 * @module hyena — zoology's order-2 Hyena operator (`zoology/mixers/hyena.py`, from safari's
 * `src/models/sequence/hyena.py`; architectures.md §7, paper-setup.md §3.6, state-dict.md §5.5).
 *
 *   [x1 | x2 | v] = short_filter( in_proj(u) )     in_proj: Linear(d, 3d) with bias; short_filter: causal depthwise
 *                                                   Conv1d, k = 3, with bias, on all 3d channels (site `short_filter_output`)
 *   v ← v ⊙ x1                                      pre-gate (channels [0, d))
 *   v ← h ∗ v + D ⊙ v                               long causal conv with the implicit filter h (d, T); D = filter_fn.bias
 *   v ← v ⊙ x2                                      post-gate (channels [d, 2d))
 *   out = out_proj(v)                               Linear(d, d) with bias
 *
 * Implicit filter (HyenaFilter.filter), for the first T of l_max = n_positions positions:
 *   z (l_max, 3) = [t, cos(1e-4·ω), −sin(1e-4·ω)],  t = l/(l_max−1), ω = 2π·l/l_max   (pos_emb.z, trainable)
 *   h = Linear(3, O) → Sin → Linear(O, O) → Sin → Linear(O, O) → Sin → Linear(O, d, no bias)      O = filter_order
 *       Sin(x) = sin(freq ⊙ x), ONE module (one freq [1, O], init 1) at positions 1, 3 and 5
 *   h[l, c] ← h[l, c]·(exp(−t_l·|δ_c|) + shift)    ExponentialModulation: δ = linspace(ln(1e-2)/1.5, ln(1e-2)/0.3, d),
 *                                                   shift 0, modulate on
 * t is normalised by l_max, not by T (calibration.md: tinylang normalises with n_positions), so at l_max = 1024 and
 * T = 37 the modulation stays ≥ 0.58.
 *
 * D skip: tinylang passes bias=False, which reaches Filter(bias=False): `filter_fn.bias` exists (state dict) but
 * forward uses 0·bias (architectures.md §7.1). `hyenaWith({ filterBias: true })` is zoology's default.
 *
 * Buffers: `pos_emb.t` [1, l_max, 1] and `modulation.deltas` [1, 1, d] are persistent buffers in PyTorch. They live
 * in the ParamStore (so checkpoints hold them) but are read into constants on each forward, so no gradient reaches
 * them (the convention of base_conv.ts for its frozen z). `implicit_filter.3.freq` and `.5.freq` are aliases of
 * `.1.freq`; the store holds it once and checkpoint.ts writes the aliases.
 *
 * Init (architectures.md §1.6, §7.3): every Linear (the filter MLP too) N(0, 0.02) with zero bias; out_proj
 * N(0, 0.02/√(2·n_layers)) (the out_proj rule); short_filter PyTorch's U(±1/√3) for weight and bias; filter_fn.bias
 * N(0, 1) (torch.randn). So the filter starts at ~1e-4 and, in tinylang, the long-conv branch starts near zero.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { linear } from './ops.ts';
import { torchDefault, type Init } from './params.ts';
import type { MixerFactory } from './mixer.ts';
import type { SiteContext } from './sites.ts';
import { causalLongConv, depthwiseConv1d, withSkip } from './long_filter.ts';

/** zoology Hyena / Filter defaults (architectures.md §7.1). */
const SHORT_FILTER_ORDER = 3;
const EMB_DIM = 3;
const SIN_W = 1;
const FAST_DECAY_PCT = 0.3, SLOW_DECAY_PCT = 1.5, TARGET = 1e-2, SHIFT = 0;

const ZERO: Init = { kind: 'constant', value: 0 };

/** PositionalEmbedding(emb_dim 3, seq_len l_max).z: [t, cos(f·ω), −sin(f·ω)] with the one band f = 1e-4. */
export function positionalZ(lMax: number): Float32Array {
  const z = new Float32Array(lMax * EMB_DIM);
  for (let l = 0; l < lMax; l++) {
    const w = (2 * Math.PI * l) / lMax;
    z[l * EMB_DIM] = lMax > 1 ? l / (lMax - 1) : 0; // torch.linspace(0, 1, l_max)
    z[l * EMB_DIM + 1] = Math.cos(1e-4 * w);
    z[l * EMB_DIM + 2] = -Math.sin(1e-4 * w);
  }
  return z;
}

/** ExponentialModulation.deltas: linspace(ln(target)/slow_pct, ln(target)/fast_pct, d), all negative. */
export function modulationDeltas(d: number): Float32Array {
  const lo = Math.log(TARGET) / SLOW_DECAY_PCT, hi = Math.log(TARGET) / FAST_DECAY_PCT;
  return Float32Array.from({ length: d }, (_, i) => (d > 1 ? lo + ((hi - lo) * i) / (d - 1) : lo));
}

export interface HyenaOptions {
  /** Filter(bias=…): whether the long conv adds D ⊙ v. tinylang passes bias=False (false); zoology's default is true. */
  filterBias: boolean;
}

export function hyenaWith(opts: HyenaOptions): MixerFactory {
  return (cfg, _layer, p) => {
    const d = cfg.d_model, O = cfg.hyena_filter_order, lMax = cfg.n_positions;
    const W: Init = { kind: 'normal', std: 0.02 };

    // Registration order = state-dict order (state-dict.md §5.5): in_proj, out_proj, short_filter, filter_fn.
    const inW = p.param('in_proj.weight', [3 * d, d], W);
    const inB = p.param('in_proj.bias', [3 * d], ZERO);
    const outW = p.param('out_proj.weight', [d, d], { kind: 'normal', std: 0.02 / Math.sqrt(2 * cfg.n_layers) });
    const outB = p.param('out_proj.bias', [d], ZERO);
    const sfW = p.param('short_filter.weight', [3 * d, 1, SHORT_FILTER_ORDER], torchDefault(SHORT_FILTER_ORDER)); // fan_in = 1·k
    const sfB = p.param('short_filter.bias', [3 * d], torchDefault(SHORT_FILTER_ORDER));
    const D = p.param('filter_fn.bias', [d], { kind: 'normal', std: 1 });
    const z = p.param('filter_fn.pos_emb.z', [1, lMax, EMB_DIM], { kind: 'values', values: positionalZ(lMax) });
    const tBuf = p.param('filter_fn.pos_emb.t', [1, lMax, 1], { kind: 'values', values: Float32Array.from({ length: lMax }, (_, l) => (lMax > 1 ? l / (lMax - 1) : 0)) });
    const w0 = p.param('filter_fn.implicit_filter.0.weight', [O, EMB_DIM], W);
    const b0 = p.param('filter_fn.implicit_filter.0.bias', [O], ZERO);
    const freq = p.param('filter_fn.implicit_filter.1.freq', [1, O], { kind: 'constant', value: SIN_W });
    const w2 = p.param('filter_fn.implicit_filter.2.weight', [O, O], W);
    const b2 = p.param('filter_fn.implicit_filter.2.bias', [O], ZERO);
    const w4 = p.param('filter_fn.implicit_filter.4.weight', [O, O], W);
    const b4 = p.param('filter_fn.implicit_filter.4.bias', [O], ZERO);
    const w6 = p.param('filter_fn.implicit_filter.6.weight', [d, O], W);
    const deltas = p.param('filter_fn.modulation.deltas', [1, 1, d], { kind: 'values', values: modulationDeltas(d) });

    /** The filter for the first T positions, (d, T), with D (or 0·D) in lag 0. */
    const filter = (T: number): Tensor2D => {
      const sin = (x: Tensor) => tf.sin(tf.mul(freq, x)); // the one shared Sin module
      const zT = tf.slice(z.reshape([lMax, EMB_DIM]), [0, 0], [T, EMB_DIM]); // (T, 3)
      let a = sin(linear(zT, w0, b0)); // (T, O)
      a = sin(linear(a, w2, b2));
      a = sin(linear(a, w4, b4));
      const hT = linear(a, w6); // (T, d)
      // Buffers as constants (off the tape): decay[l, c] = exp(−t_l·|δ_c|) + shift.
      const t = tBuf.dataSync(), dl = deltas.dataSync();
      const decay = new Float32Array(T * d);
      for (let l = 0; l < T; l++) for (let c = 0; c < d; c++) decay[l * d + c] = Math.exp(-t[l]! * Math.abs(dl[c]!)) + SHIFT;
      const h = tf.transpose(tf.mul(hT, tf.tensor2d(decay, [T, d]))) as Tensor2D; // (d, T)
      return withSkip(h, opts.filterBias ? D : tf.mul(D, 0)); // 0·bias as PyTorch: a zero gradient, not none
    };

    return {
      forward(u: Tensor3D, ctx: SiteContext): Tensor3D {
        const T = u.shape[1];
        if (T > lMax) throw new Error(`hyena: sequence length ${T} exceeds l_max = n_positions = ${lMax}`);
        const uc = ctx.site('short_filter_output', depthwiseConv1d(linear(u, inW, inB), sfW, sfB)); // (B, T, 3d)
        const [x1, x2, v] = tf.split(uc, 3, 2) as [Tensor3D, Tensor3D, Tensor3D]; // (B, T, d) each
        const y = tf.mul(causalLongConv(tf.mul(v, x1) as Tensor3D, filter(T)), x2) as Tensor3D;
        return linear(y, outW, outB);
      },
    };
  };
}

/** tinylang's Hyena (bias=False: no D skip). */
export const hyena: MixerFactory = hyenaWith({ filterBias: false });
