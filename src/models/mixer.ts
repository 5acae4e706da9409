/**
 * @module mixer — what a sequence mixer is to the rest of the model. One file per mixer
 * (attention.ts, base_conv.ts, based.ts, mamba.ts, delta_net.ts, h3.ts, hyena.ts) exports a MixerFactory.
 */
import type { ResolvedModelConfig } from './config.ts';
import type { ParamScope } from './params.ts';
import type { MixerSite, SiteContext } from './sites.ts';
import type { Tensor3D } from './tf.ts';

export interface Mixer {
  /** (B, T, D) → (B, T, D); causal: output t depends on inputs ≤ t only. Internal sites go through ctx.site. */
  forward(x: Tensor3D, ctx: SiteContext): Tensor3D;
  /**
   * Internal sites after which the mixer mixes no more tokens: its output at position t depends on such a site's
   * activation at t only. The intervention sweep relies on this (src/interventions/sweep.ts), so list a site only
   * when it holds; leaving one out only costs time. Checked for every mixer in tests/models/positionwise.test.ts.
   */
  readonly positionwiseFrom?: readonly MixerSite[];
  /**
   * The mixer honours `ctx.memory` (memory.ts): it keeps its conv inputs and recurrent states when recording, and
   * when resuming its input covers positions [start, …) and it continues from what was kept. Forward passes only.
   */
  readonly resumable?: boolean;
}

/**
 * Build layer `layer`'s mixer, creating its parameters through `p`, whose prefix is the mixer's state-dict prefix
 * (`backbone.layers.{i}.sequence_mixer.`; a Hybrid adds `mixer.` itself).
 */
export type MixerFactory = (cfg: ResolvedModelConfig, layer: number, p: ParamScope) => Mixer;
