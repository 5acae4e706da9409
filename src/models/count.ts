/**
 * @module count — parameter counts from the shape formulas of state-dict.md §4–§5 (tinylang configuration), for
 * tests: `params` = PyTorch's `sum(p.numel() for p in model.parameters())` (the tied embedding once, BaseConv's
 * frozen `conv.pos_emb.z` included, buffers excluded — the convention of state-dict.md §9), `buffers` = persistent
 * buffer elements (Hyena's `pos_emb.t` and `modulation.deltas`), `keys` = `len(state_dict())` (aliases included).
 */
import type { ResolvedModelConfig } from './config.ts';

/**
 * State-dict keys that are persistent buffers in PyTorch (state-dict.md §7): Hyena's `filter_fn.pos_emb.t` and
 * `filter_fn.modulation.deltas`. Their mixers keep them in the ParamStore (so checkpoints carry them) but read them
 * off the tape, so they are never trained; they are not parameters in PyTorch's count.
 */
export const BUFFER_KEY = /\.pos_emb\.t$|\.modulation\.deltas$/;

export interface Counts {
  params: number;
  buffers: number;
  keys: number;
}

const add = (a: Counts, b: Counts): Counts => ({ params: a.params + b.params, buffers: a.buffers + b.buffers, keys: a.keys + b.keys });

/** BaseConv layer (§5.2): short conv of width k ≥ 1, or (k = −1) the implicit long conv with l_max = P. */
function baseConvLayer(d: number, k: number, P: number): Counts {
  const projection = d * d + d;
  if (k >= 1) return { params: projection + d * k + d, buffers: 0, keys: 4 };
  // conv.pos_emb.z [1, P, 3] (frozen Parameter), conv.mlp.0 Linear(3, 16), conv.mlp.2 Linear(16, d)
  return { params: projection + 3 * P + (16 * 3 + 16) + (d * 16 + d), buffers: 0, keys: 7 };
}

/** One layer's mixer (the keys under `sequence_mixer.`). */
export function mixerCounts(cfg: ResolvedModelConfig, layer: number): Counts {
  const d = cfg.d_model, P = cfg.n_positions;
  switch (cfg.mixer) {
    case 'attention': // Wqkv [3d, d] (no bias in tinylang), out_proj [d, d] + [d]
      return { params: 3 * d * d + d * d + d, buffers: 0, keys: 3 };
    case 'base_conv': // kernel_size = [3, −1, 3, −1][layer], or d_conv for every layer (state-dict.md §2 rule 6)
      return baseConvLayer(d, cfg.d_conv ?? (layer % 2 === 0 ? 3 : -1), P);
    case 'based': { // Hybrid[BaseConv(k=3 or d_conv), Based]; proj_q/proj_k [F, d], proj_v/proj_o [d, d]
      if (layer % 2 === 0) return baseConvLayer(d, cfg.d_conv ?? 3, P);
      const F = cfg.feature_dim;
      return { params: 2 * F * d + 2 * d * d, buffers: 0, keys: 4 };
    }
    case 'mamba': { // §5.6; d_conv 0 (MambaWithoutConv) still creates conv1d with the default width 4
      const E = cfg.expand * d, S = cfg.d_state, R = cfg.dt_rank, K = cfg.d_conv === 0 || cfg.d_conv === null ? 4 : cfg.d_conv;
      const params = E * S + E + 2 * E * d + (E * K + E) + (R + 2 * S) * E + (E * R + E) + d * E;
      return { params, buffers: 0, keys: 9 };
    }
    case 'delta_net': { // appendix: q/k/v/o [d, d], b_proj [nh, d], three convs [d, 1, K] without bias, o_norm [d/nh]
      const nh = cfg.delta_heads, K = cfg.d_conv ?? 4;
      return { params: 4 * d * d + nh * d + 3 * d * K + d / nh, buffers: 0, keys: 9 };
    }
    case 'h3': { // §5.4 with N = h3_d_state, H = d/2 SSM copies of N//2 complex modes
      const N = cfg.h3_d_state, H = d / 2, M = Math.floor(N / 2);
      const params = d + H + 3 * (d * d + d) + 2 * d * N + H * M * 2 + H + H * M * 2 + 2 * H * M + d * d + d;
      return { params, buffers: 0, keys: 17 };
    }
    case 'hyena': { // §5.5: freq counted once (one tensor under three keys); pos_emb.t and deltas are buffers
      const O = cfg.hyena_filter_order;
      const params = (3 * d * d + 3 * d) + (d * d + d) + (3 * d * 3 + 3 * d) + d + 3 * P
        + (3 * O + O) + O + 2 * (O * O + O) + d * O;
      return { params, buffers: P + d, keys: 20 };
    }
  }
}

/** One block: its mixer plus the MLP and norm1/norm2 (TransformerBlock), or norm.weight (MambaBlock). */
export function blockCounts(cfg: ResolvedModelConfig, layer: number): Counts {
  const d = cfg.d_model;
  const block: Counts = cfg.mixer === 'mamba'
    ? { params: d, buffers: 0, keys: 1 }
    : { params: 2 * cfg.mlp_hidden_mult * d * d + cfg.mlp_hidden_mult * d + d + 4 * d, buffers: 0, keys: 8 };
  return add(mixerCounts(cfg, layer), block);
}

/** The whole model: embeddings, blocks, ln_f, and the `lm_head.weight` key (no extra parameters: it is tied). */
export function modelCounts(cfg: ResolvedModelConfig): Counts {
  const d = cfg.d_model;
  let c: Counts = {
    params: cfg.vocab_size * d + (cfg.pos_emb ? cfg.n_positions * d : 0) + 2 * d,
    buffers: 0,
    keys: 1 + (cfg.pos_emb ? 1 : 0) + 2 + 1,
  };
  for (let i = 0; i < cfg.n_layers; i++) c = add(c, blockCounts(cfg, i));
  return c;
}
