/* Generated from schemas/train.schema.json by `npm run gen:types`. Do not edit by hand. */

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
