/* Generated from schemas/train-stage.schema.json by `npm run gen:types`. Do not edit by hand. */

/**
 * Params of a train stage: the model to build and how to train it. The dataset comes in as the `data` input.
 */
export interface TrainStageParams {
  model: ModelConfig;
  train: TrainConfig;
}
/**
 * A tinylang/zoology language model: embeddings, n_layers blocks with one sequence mixer each, final LayerNorm, tied head (paper-setup.md §3). Also written into every checkpoint's safetensors __metadata__ under `config`.
 */
export interface ModelConfig {
  /**
   * Sequence mixer. `based` is zoology's Hybrid: layer 0 BaseConv (k=3), layer 1 Taylor linear attention.
   */
  mixer: 'attention' | 'base_conv' | 'based' | 'mamba' | 'delta_net' | 'h3' | 'hyena';
  /**
   * Residual stream width d.
   */
  d_model: number;
  /**
   * Number of blocks (the paper: 2).
   */
  n_layers: number;
  /**
   * Attention heads (tinylang: 1). DeltaNet uses delta_heads.
   */
  n_heads?: number;
  /**
   * V; the tied head is V-way.
   */
  vocab_size: number;
  /**
   * Size of the learned position table and every mixer's l_max (tinylang uses both).
   */
  n_positions?: number;
  /**
   * Learned absolute position embedding. The paper's headline numbers: on for attention only.
   */
  pos_emb?: boolean;
  /**
   * Short-conv width where the mixer has one. Mamba: 4 by default; 0 = no conv; 1 = per-channel scale + bias. BaseConv/Based: overrides the per-layer kernel list; -1 = the implicit long convolution (zoology's kernel code; Based with -1 is tinylang's based_long_only). null = the mixer's default.
   */
  d_conv?: number | null;
  /**
   * Mamba state size S.
   */
  d_state?: number;
  /**
   * Mamba inner width multiplier (E = expand·d).
   */
  expand?: number;
  /**
   * Mamba dt rank R; null = ceil(d/16).
   */
  dt_rank?: number | null;
  /**
   * Based Taylor feature dimension F.
   */
  feature_dim?: number;
  /**
   * H3 diagonal SSM state size N; null = n_positions (tinylang).
   */
  h3_d_state?: number | null;
  /**
   * Width of Hyena's implicit filter MLP.
   */
  hyena_filter_order?: number;
  /**
   * DeltaNet heads.
   */
  delta_heads?: number;
  /**
   * TransformerBlock MLP hidden width = mlp_hidden_mult·d.
   */
  mlp_hidden_mult?: number;
  /**
   * Initialisation seed: each parameter draws from a stream derived from (seed, parameter name).
   */
  seed?: number;
}
/**
 * How one model is trained (paper-setup.md §4): AdamW, linear warm-up then cosine (or linear) decay to 0, loss = cross-entropy of the full-vocabulary logits at the answer position only.
 */
export interface TrainConfig {
  /**
   * Peak learning rate.
   */
  lr: number;
  /**
   * Optimizer steps (the paper: 50,016 for AR). Give steps or epochs, not both.
   */
  steps?: number;
  /**
   * Passes over the train split: steps = epochs · floor(N / batch_size) (the paper: 16 for AR, 32 for ATR). Give steps or epochs, not both.
   */
  epochs?: number;
  batch_size?: number;
  /**
   * Linear warm-up over int(fraction · steps) steps.
   */
  warmup_fraction?: number;
  /**
   * Decay to 0 after warm-up; the paper's gen templates use linear.
   */
  decay?: 'cosine' | 'linear';
  /**
   * Decoupled (AdamW) weight decay; the paper: 0.
   */
  weight_decay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * fixed: batch i holds the same examples every epoch (the paper); shuffle: a seeded permutation per epoch.
   */
  order?: 'fixed' | 'shuffle';
  /**
   * Seed of the per-epoch permutation when order = shuffle.
   */
  data_seed?: number;
  /**
   * Evaluate on the dev split every N steps (and at the end); 0 = only at the end.
   */
  eval_every?: number;
  /**
   * Dev examples used by each evaluation.
   */
  eval_examples?: number;
  /**
   * Write a resumable scratch checkpoint every K steps; 0 = never.
   */
  checkpoint_every?: number;
  /**
   * Stop at the first dev evaluation whose accuracy is ≥ this (paper-setup.md §10.3's CPU option); the learning-rate schedule stays that of `steps`. null = never (the paper).
   */
  early_stop_accuracy?: number | null;
}
