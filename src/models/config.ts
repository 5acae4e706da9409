/**
 * @module config — the model configuration. Its shape is defined once, in schemas/model.schema.json (the generated
 * type is re-exported here); this module fills in the defaults so every other module reads one resolved record.
 */
import type { ModelConfig } from '../../schemas/types/model.ts';

export type { ModelConfig };
export type MixerKind = ModelConfig['mixer'];

export interface ResolvedModelConfig {
  mixer: MixerKind;
  d_model: number;
  n_layers: number;
  n_heads: number;               // tinylang: 1
  vocab_size: number;
  n_positions: number;           // tinylang: 1024; also every mixer's l_max
  pos_emb: boolean;              // paper headline: on for attention only (paper-setup.md §3.1)
  d_conv: number | null;         // Mamba/DeltaNet default 4; BaseConv/Based keep their per-layer list when null
  d_state: number;               // Mamba S = 16
  expand: number;                // Mamba E = expand·d
  dt_rank: number;               // Mamba R = ⌈d/16⌉
  feature_dim: number;           // Based F = 8
  h3_d_state: number;            // tinylang passes d_state = input_seq_len = n_positions
  hyena_filter_order: number;    // 64
  delta_heads: number;           // 2
  mlp_hidden_mult: number;       // 4
  seed: number;
}

/** zoology's kernel-size code for the implicit long convolution (base_conv.ts LONG_CONV). */
const LONG_CONV_CODE = -1;

export function resolveModelConfig(c: ModelConfig): ResolvedModelConfig {
  const n_positions = c.n_positions ?? 1024;
  // −1 names a long convolution, which only BaseConv layers (BaseConv, Based's even layers) can build.
  if (c.d_conv === LONG_CONV_CODE && c.mixer !== 'base_conv' && c.mixer !== 'based') {
    throw new Error(`model config: d_conv = -1 (implicit long convolution) exists for base_conv and based only, not for ${c.mixer}`);
  }
  const mixerDefaultConv = c.mixer === 'mamba' || c.mixer === 'delta_net' ? 4 : null;
  return {
    mixer: c.mixer,
    d_model: c.d_model,
    n_layers: c.n_layers,
    n_heads: c.n_heads ?? 1,
    vocab_size: c.vocab_size,
    n_positions,
    pos_emb: c.pos_emb ?? false,
    d_conv: c.d_conv === undefined || c.d_conv === null ? mixerDefaultConv : c.d_conv,
    d_state: c.d_state ?? 16,
    expand: c.expand ?? 2,
    dt_rank: c.dt_rank ?? Math.ceil(c.d_model / 16),
    feature_dim: c.feature_dim ?? 8,
    h3_d_state: c.h3_d_state ?? n_positions,
    hyena_filter_order: c.hyena_filter_order ?? 64,
    delta_heads: c.delta_heads ?? 2,
    mlp_hidden_mult: c.mlp_hidden_mult ?? 4,
    seed: c.seed ?? 0,
  };
}
