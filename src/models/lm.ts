/**
 * @module lm — the tinylang language model (architectures.md §1.1, paper-setup.md §3.1, state-dict.md §4):
 *
 *   r = E[ids] (+ P[0..T−1] if pos_emb)           tied token embedding E (V, d); learned positions P (n_positions, d)
 *   r = block_i(r)  for i < n_layers               TransformerBlock, or MambaBlock for Mamba (block.ts)
 *   h = ln_f(r)                                    LayerNorm, eps 1e-5
 *   logits = h Eᵀ                                  tied head, no bias — computed only at requested cells (logitsAt)
 *
 * The V-way head is the most expensive op of the model at V = 8196 (issue 4), and the AR loss and every metric read
 * one position per example, so `forward` stops at the final hidden states and `logitsAt` gathers the (row, position)
 * cells first. Parameter names are the PyTorch state-dict names; `lm_head.weight` is not a parameter here, only a
 * second checkpoint key for E (checkpoint.ts).
 */
import { tf, type Tensor2D, type Tensor3D } from './tf.ts';
import { embed, gatherRows, layerNorm, matmul } from './ops.ts';
import { resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from './config.ts';
import { ParamStore } from './params.ts';
import { mambaBlock, transformerBlock, type Block } from './block.ts';
import { blockKind, mixerFactory } from './mixers.ts';
import type { Hooks, SiteName } from './sites.ts';
import { BUFFER_KEY } from './count.ts';

export interface ForwardArgs {
  /** Token ids, row-major (B, T). */
  ids: Int32Array;
  batch: number;
  time: number;
  hooks?: Hooks;
}

export class LanguageModel {
  readonly cfg: ResolvedModelConfig;
  readonly params: ParamStore;
  readonly blocks: readonly Block[];
  private readonly wte: tf.Variable<tf.Rank.R2>;
  private readonly wpe: tf.Variable | null;
  private readonly lnfW: tf.Variable;
  private readonly lnfB: tf.Variable;

  constructor(config: ModelConfig | ResolvedModelConfig) {
    const cfg = (this.cfg = resolveModelConfig(config as ModelConfig));
    const store = (this.params = new ParamStore(cfg.seed));
    const { d_model: d, vocab_size: V } = cfg;
    // Creation order = PyTorch state-dict order (state-dict.md §6.1). Embeddings N(0, 0.02) (architectures.md §1.6).
    this.wte = <tf.Variable<tf.Rank.R2>>store.create('backbone.embeddings.word_embeddings.weight', [V, d], { kind: 'normal', std: 0.02 });
    this.wpe = cfg.pos_emb
      ? store.create('backbone.embeddings.position_embeddings.weight', [cfg.n_positions, d], { kind: 'normal', std: 0.02 })
      : null;
    const factory = mixerFactory(cfg.mixer);
    const makeBlock = blockKind(cfg.mixer) === 'mamba' ? mambaBlock : transformerBlock;
    const blocks: Block[] = [];
    for (let i = 0; i < cfg.n_layers; i++) blocks.push(makeBlock(cfg, i, store, factory));
    this.blocks = blocks;
    this.lnfW = store.create('backbone.ln_f.weight', [d], { kind: 'constant', value: 1 });
    this.lnfB = store.create('backbone.ln_f.bias', [d], { kind: 'constant', value: 0 });
  }

  /** The tied embedding / head matrix E: (V, d). */
  get embedding(): tf.Variable<tf.Rank.R2> {
    return this.wte;
  }

  /** ids (B, T) → final hidden states ln_f(r): (B, T, d). Sites of every layer go through `hooks`. */
  forward({ ids, batch, time, hooks }: ForwardArgs): Tensor3D {
    const { vocab_size: V, n_positions: P, d_model: d } = this.cfg;
    if (ids.length !== batch * time) throw new Error(`forward: ${ids.length} ids for batch ${batch} × time ${time}`);
    if (this.wpe && time > P) throw new Error(`forward: ${time} tokens, but n_positions is ${P}`);
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i]!;
      if (!(t >= 0 && t < V)) throw new Error(`forward: token id ${t} at (${Math.floor(i / time)}, ${i % time}) is outside [0, ${V})`);
    }
    let r = embed(this.wte, ids, batch, time); // (B, T, d)
    // Positions 0..T−1 for every row: a slice broadcast over the batch (its gradient is a pad, no scatter needed).
    if (this.wpe) r = tf.add(r, tf.slice(this.wpe, [0, 0], [time, d]).reshape([1, time, d])) as Tensor3D;
    for (const block of this.blocks) r = block.forward(r, hooks);
    return layerNorm(r, this.lnfW, this.lnfB);
  }

  /**
   * The rest of a forward pass from the residual stream entering block `layer` (its `block_input`): blocks
   * layer…n−1, then ln_f. The interventions use it to skip the layers before a patch, which every patched copy
   * shares with the unpatched run. With `at` (one position per row), only those cells: (B, 1, d), so the last block
   * may run its position-wise part on them alone (Block.forward).
   */
  forwardFrom(layer: number, residual: Tensor3D, hooks?: Hooks, at?: Int32Array): Tensor3D {
    if (!(layer >= 0 && layer < this.blocks.length)) throw new Error(`forwardFrom: layer ${layer} is outside [0, ${this.blocks.length})`);
    let r = residual;
    const last = this.blocks.length - 1;
    for (let i = layer; i <= last; i++) r = this.blocks[i]!.forward(r, hooks, i === last ? at : undefined);
    return layerNorm(r, this.lnfW, this.lnfB);
  }

  /** Block `layer` alone on the residual stream entering it (its `block_input`): the stream leaving it. */
  runBlock(layer: number, residual: Tensor3D, hooks?: Hooks): Tensor3D {
    const block = this.blocks[layer];
    if (!block) throw new Error(`runBlock: layer ${layer} is outside [0, ${this.blocks.length})`);
    return block.forward(residual, hooks);
  }

  /** Whether blocks `layer`… can run part of a sequence from a memory (memory.ts; Block.resumable). */
  resumableFrom(layer: number): boolean {
    return this.blocks.slice(layer).every((b) => b.resumable);
  }

  /** Whether block `layer`'s output at position t depends on `site`'s activation at t only (Block.positionwiseFrom). */
  positionwiseFrom(layer: number, site: SiteName): boolean {
    return this.blocks[layer]?.positionwiseFrom.has(site) ?? false;
  }

  /**
   * Logits at chosen cells only: hidden (B, T, d), cells (rows[i], positions[i]) → (n, V) = h Eᵀ.
   * The cells are gathered from the flattened (B·T, d) states first, so the head costs n·d·V, not B·T·d·V.
   */
  logitsAt(hidden: Tensor3D, rows: Int32Array, positions: Int32Array): Tensor2D {
    const [B, T, d] = hidden.shape;
    if (rows.length !== positions.length) throw new Error(`logitsAt: ${rows.length} rows but ${positions.length} positions`);
    const idx = new Int32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const b = rows[i]!, t = positions[i]!;
      if (b < 0 || b >= B || t < 0 || t >= T) throw new Error(`logitsAt: cell (${b}, ${t}) is outside (${B}, ${T})`);
      idx[i] = b * T + t;
    }
    const h = gatherRows(hidden.reshape([B * T, d]), idx); // (n, d)
    // (E · hᵀ)ᵀ rather than h · Eᵀ: XNNPACK re-packs the right operand of every product, so keep the big E on the
    // left, where it streams (measured on wasm, n=32, V=8196, d=64, forward + backward: 7.3 ms vs 12.0 ms).
    return tf.transpose(matmul(this.wte, tf.transpose(h) as Tensor2D)); // (V, d)·(d, n) → (V, n) → (n, V)
  }

  /**
   * Number of parameters as PyTorch's `sum(p.numel() for p in model.parameters())` counts them: the tied E once,
   * BaseConv's frozen z included, persistent buffers (Hyena's t and deltas, kept in the store) excluded.
   */
  paramCount(): number {
    let n = 0;
    for (const [name, v] of this.params.vars) if (!BUFFER_KEY.test(name)) n += v.size;
    return n;
  }

  dispose(): void {
    this.params.dispose();
  }
}

export function createLanguageModel(config: ModelConfig | ResolvedModelConfig): LanguageModel {
  return new LanguageModel(config);
}
