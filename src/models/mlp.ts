/**
 * @module mlp — zoology's MLP state mixer (`zoology/mixers/mlp.py`; architectures.md §1.4, state-dict.md §4):
 *   fc2( GELU( fc1(x) ) ),  fc1: Linear(d, m·d), fc2: Linear(m·d, d), both biased (tinylang's `bias` flag never
 * reaches the MLP), GELU the exact erf form, m = mlp_hidden_mult = 4.
 */
import type { Tensor3D } from './tf.ts';
import { gelu, linear } from './ops.ts';
import type { ResolvedModelConfig } from './config.ts';
import type { ParamScope } from './params.ts';

export interface Mlp {
  forward(x: Tensor3D): Tensor3D; // (B, T, d) → (B, T, d)
}

/** Parameters under `p` (`backbone.layers.{i}.state_mixer.`). */
export function mlp(cfg: ResolvedModelConfig, p: ParamScope): Mlp {
  const d = cfg.d_model;
  const hidden = cfg.mlp_hidden_mult * d;
  // Init (architectures.md §1.6): Linear weights N(0, 0.02), biases 0; `fc2.weight` N(0, 0.02/√(2·n_layers)).
  const w1 = p.param('fc1.weight', [hidden, d], { kind: 'normal', std: 0.02 });
  const b1 = p.param('fc1.bias', [hidden], { kind: 'constant', value: 0 });
  const w2 = p.param('fc2.weight', [d, hidden], { kind: 'normal', std: 0.02 / Math.sqrt(2 * cfg.n_layers) });
  const b2 = p.param('fc2.bias', [d], { kind: 'constant', value: 0 });
  return {
    forward: (x) => linear(gelu(linear(x, w1, b1)), w2, b2), // (B, T, d) → (B, T, m·d) → (B, T, d)
  };
}
