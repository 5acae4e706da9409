/**
 * @module block — the two residual blocks of the tinylang backbone (architectures.md §1.2–1.3, paper-setup.md §3.1),
 * in tinylang's form (the block takes and returns only the residual stream r, which is what the hooks need).
 *
 *   TransformerBlock (every mixer but Mamba), pre-norm:   r ← r + Mixer(LN1(r));  r ← r + MLP(LN2(r))
 *   MambaBlock:                                          r ← r + Mamba(RMSNorm(r))        (no MLP, no norm2)
 *
 * Norm eps 1e-5 (PyTorch; tfjs-layers' 1e-3 would be wrong). Block-level patch sites (paper-setup.md §3.1 hooks,
 * architectures.md §9.1): block_input/block_output = the stream entering/leaving the block; mixer_input/mixer_output =
 * the normed mixer input and the mixer output before the residual add (tinylang's attention_input/output);
 * mlp_input/mlp_output = LN2 output and MLP output.
 *
 * Parameter creation order follows the PyTorch state dict (state-dict.md §2 rule 3): the mixer's keys first, then
 * `state_mixer.*`, then `norm1.*`, `norm2.*` (MambaBlock: the mixer, then `norm.weight`).
 */
import { tf, type Tensor3D } from './tf.ts';
import { gatherRows, layerNorm, rmsNorm } from './ops.ts';
import type { ResolvedModelConfig } from './config.ts';
import type { MixerFactory } from './mixer.ts';
import type { ParamStore } from './params.ts';
import { mlp } from './mlp.ts';
import { applySite, siteContext, type Hooks, type SiteName } from './sites.ts';

export interface Block {
  readonly layer: number;
  /**
   * (B, T, d) → (B, T, d): the residual stream through one block, with this layer's sites applied. With `at` (one
   * position per row) only those cells are wanted: the result is (B, 1, d), row b holding position at[b].
   */
  forward(r: Tensor3D, hooks?: Hooks, at?: Int32Array): Tensor3D;
  /**
   * Sites from which the rest of the block acts on each position alone: the block's output at position t depends on
   * the site's activation at t only (the residual adds, norms and MLP after the mixer, and the mixer's own
   * `positionwiseFrom`). The sweep patches all positions of such a site in one pass (src/interventions/sweep.ts).
   */
  readonly positionwiseFrom: ReadonlySet<SiteName>;
  /** The block can run part of a sequence from a memory (memory.ts): its mixer is resumable; the rest is per position. */
  readonly resumable: boolean;
}

/** A resuming pass through a mixer that cannot resume would be silently wrong: refuse it. */
function checkResumable(hooks: Hooks | undefined, layer: number, resumable: boolean): void {
  if (!resumable && hooks?.memory?.forLayer(layer).mode === 'resume') throw new Error(`block ${layer}: its mixer cannot resume part-way along a sequence`);
}

/** The transformer block's sites after its mixer output, which a cells-only (`at`) pass would not see in full. */
const AFTER_MIXER: ReadonlySet<SiteName> = new Set(['mlp_input', 'mlp_output', 'block_output']);

/** Whether `hooks` record anything, or patch one of `sites` of `layer`. */
function watched(hooks: Hooks | undefined, layer: number, sites: ReadonlySet<SiteName>): boolean {
  return hooks?.record !== undefined || (hooks?.patches ?? []).some((p) => p.layer === layer && sites.has(p.site));
}

/** (B, T, d) → (B, 1, d): row b's position at[b]. */
function pickCells(x: Tensor3D, at: Int32Array): Tensor3D {
  const [B, T, d] = x.shape;
  if (at.length !== B) throw new Error(`block: ${at.length} positions for ${B} rows`);
  const idx = Int32Array.from(at, (t, b) => {
    if (!(t >= 0 && t < T)) throw new Error(`block: position ${t} of row ${b} is outside [0, ${T})`);
    return b * T + t;
  });
  // One position for every row (the sweep's usual case: all queries at T − 1): a slice, far cheaper than a gather.
  if (at.every((t) => t === at[0])) return tf.slice(x, [0, at[0] ?? 0, 0], [B, 1, d]);
  return gatherRows(x.reshape([B * T, d]) as tf.Tensor2D, idx).reshape([B, 1, d]);
}

export function transformerBlock(cfg: ResolvedModelConfig, layer: number, store: ParamStore, mixer: MixerFactory): Block {
  const d = cfg.d_model;
  const prefix = `backbone.layers.${layer}.`;
  const seq = mixer(cfg, layer, store.scope(`${prefix}sequence_mixer.`));
  const ff = mlp(cfg, store.scope(`${prefix}state_mixer.`));
  const ones = { kind: 'constant', value: 1 } as const, zeros = { kind: 'constant', value: 0 } as const;
  const n1w = store.create(`${prefix}norm1.weight`, [d], ones);
  const n1b = store.create(`${prefix}norm1.bias`, [d], zeros);
  const n2w = store.create(`${prefix}norm2.weight`, [d], ones);
  const n2b = store.create(`${prefix}norm2.bias`, [d], zeros);
  return {
    layer,
    positionwiseFrom: new Set<SiteName>(['mixer_output', 'mlp_input', 'mlp_output', 'block_output', ...(seq.positionwiseFrom ?? [])]),
    resumable: seq.resumable ?? false,
    forward(r, hooks, at) {
      checkResumable(hooks, layer, seq.resumable ?? false);
      const site = (name: Parameters<typeof applySite>[2], x: Tensor3D) => applySite(hooks, layer, name, x);
      r = site('block_input', r);
      const h = site('mixer_input', layerNorm(r, n1w, n1b));
      const m = site('mixer_output', seq.forward(h, siteContext(hooks, layer)));
      r = tf.add(r, m) as Tensor3D;
      // Norm2 and the MLP act per position: when only the cells `at` are wanted and no hook looks at the rest of the
      // block, they run on those cells alone (the MLP is most of a block's work; the sweep reads one cell per row).
      const early = at !== undefined && !watched(hooks, layer, AFTER_MIXER);
      if (early) r = pickCells(r, at);
      const u = site('mlp_input', layerNorm(r, n2w, n2b));
      const f = site('mlp_output', ff.forward(u));
      const out = site('block_output', tf.add(r, f) as Tensor3D);
      return at && !early ? pickCells(out, at) : out;
    },
  };
}

export function mambaBlock(cfg: ResolvedModelConfig, layer: number, store: ParamStore, mixer: MixerFactory): Block {
  const prefix = `backbone.layers.${layer}.`;
  // tinylang's MambaBlock stores the mixer as `sequence_mixer` (zoology's uses `mixer`; state-dict.md §2 rule 5).
  const seq = mixer(cfg, layer, store.scope(`${prefix}sequence_mixer.`));
  const nw = store.create(`${prefix}norm.weight`, [cfg.d_model], { kind: 'constant', value: 1 });
  return {
    layer,
    positionwiseFrom: new Set<SiteName>(['mixer_output', 'block_output', ...(seq.positionwiseFrom ?? [])]),
    resumable: seq.resumable ?? false,
    forward(r, hooks, at) {
      checkResumable(hooks, layer, seq.resumable ?? false);
      const site = (name: Parameters<typeof applySite>[2], x: Tensor3D) => applySite(hooks, layer, name, x);
      r = site('block_input', r);
      const h = site('mixer_input', rmsNorm(r, nw));
      const m = site('mixer_output', seq.forward(h, siteContext(hooks, layer)));
      const out = site('block_output', tf.add(r, m) as Tensor3D);
      return at ? pickCells(out, at) : out;
    },
  };
}
