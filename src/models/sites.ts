/**
 * @module sites — named activations that a forward pass can record or overwrite (the patch sites of the
 * interchange interventions, paper-setup.md §5, architectures.md §9). Site names are a literal union, so the
 * compiler checks every `ctx.site('conv_output', x)`.
 *
 * Every site carries a (B, T, C) tensor. Block-level sites exist in every layer; mixer-internal sites only where the
 * mixer has them:
 *   Mamba      conv_input, conv_output (pre-SiLU), ssm_output, gate
 *   BaseConv   conv_output      (also Based's BaseConv layer)
 *   Hyena      short_filter_output
 *   DeltaNet   q_conv, k_conv, v_conv
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import type { LayerMemory } from './memory.ts';

export const BLOCK_SITES = ['block_input', 'block_output', 'mixer_input', 'mixer_output', 'mlp_input', 'mlp_output'] as const;
export const MIXER_SITES = ['conv_input', 'conv_output', 'ssm_output', 'gate', 'short_filter_output', 'q_conv', 'k_conv', 'v_conv'] as const;
export type BlockSite = (typeof BLOCK_SITES)[number];
export type MixerSite = (typeof MIXER_SITES)[number];
export type SiteName = BlockSite | MixerSite;

/** Overwrite `values[i]` into the activation at (batch row `rows[i]`, position `positions[i]`). */
export interface Patch {
  layer: number;
  site: SiteName;
  rows: Int32Array;
  positions: Int32Array;
  values: Tensor2D; // (n, C)
}

export interface Hooks {
  /** Called with each site's activation (B, T, C). Keep (tf.keep / clone) what you need: the pass is tidied. */
  record?: (layer: number, site: SiteName, x: Tensor3D) => void;
  patches?: readonly Patch[];
  /** Recording what a later pass needs to resume part-way along the sequence, or resuming (memory.ts). */
  memory?: { forLayer(layer: number): LayerMemory };
}

/** What a mixer sees of the hooks: the layer it is in, one call per internal site, and the memory if any. */
export interface SiteContext {
  readonly layer: number;
  site(name: SiteName, x: Tensor3D): Tensor3D;
  readonly memory?: LayerMemory;
}

/** Pass x through site (layer, name): apply any patches, then record. With no hooks it returns x itself. */
export function applySite(hooks: Hooks | undefined, layer: number, name: SiteName, x: Tensor3D): Tensor3D {
  if (!hooks) return x;
  let out = x;
  const patches = hooks.patches?.filter((p) => p.layer === layer && p.site === name) ?? [];
  for (const p of patches) out = overwrite(out, p);
  hooks.record?.(layer, name, out);
  return out;
}

export function siteContext(hooks: Hooks | undefined, layer: number): SiteContext {
  return { layer, site: (name, x) => applySite(hooks, layer, name, x), memory: hooks?.memory?.forLayer(layer) };
}

/**
 * where(mask, source, x): selected (row, position) cells take the patch values exactly, all others keep x exactly,
 * so patching a site with its own recorded value is bit-identical to not patching.
 */
function overwrite(x: Tensor3D, p: Patch): Tensor3D {
  const [B, T, C] = x.shape;
  const n = p.rows.length;
  if (p.positions.length !== n || p.values.shape[0] !== n || p.values.shape[1] !== C) {
    throw new Error(`patch ${p.site}@${p.layer}: ${n} rows, ${p.positions.length} positions, values [${p.values.shape}] for width ${C}`);
  }
  // The mask is built at full size (B, T, C) here: tiling a (B, T, 1) bool tensor over C took ~35 ms on wasm at
  // (320, 9, 128), more than the rest of the overwrite (~1.5 ms) and a sizeable part of a patched pass.
  const mask = new Uint8Array(B * T * C);
  const idx = new Int32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const b = p.rows[i]!, t = p.positions[i]!;
    if (b < 0 || b >= B || t < 0 || t >= T) throw new Error(`patch ${p.site}@${p.layer}: cell (${b}, ${t}) is outside (${B}, ${T})`);
    const cell = (b * T + t) * C;
    if (mask[cell]) throw new Error(`patch ${p.site}@${p.layer}: cell (${b}, ${t}) is patched twice`);
    mask.fill(1, cell, cell + C);
    idx[2 * i] = b;
    idx[2 * i + 1] = t;
  }
  const source = tf.scatterND(tf.tensor2d(idx, [n, 2], 'int32'), p.values, [B, T, C]) as Tensor3D;
  return tf.where(tf.tensor3d(mask, [B, T, C], 'bool') as Tensor, source, x) as Tensor3D;
}
