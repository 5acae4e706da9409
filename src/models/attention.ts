/**
 * @module attention — zoology's multi-head causal softmax attention (`zoology/mixers/attention.py`, class MHA;
 * architectures.md §2, paper-setup.md §3.2, state-dict.md §5.1).
 *
 *   [q | k | v] = x Wqkvᵀ                  Wqkv: Linear(d, 3d, bias=False) in tinylang (`bias: false`)
 *   S_j = q_j k_jᵀ / √Dh + M               M = 0 on/below the diagonal, −10000 above (additive, as zoology)
 *   o   = out_proj( concat_j softmax(S_j) v_j )   out_proj: Linear(d, d, bias=True), always biased
 *
 * Speed (tfjs-backends.md §2, §4): on wasm a batchMatMul with batch > 1 runs a scalar loop at ~2 GFLOP/s, while a
 * 2-D product runs on XNNPACK at ~25 GFLOP/s. So the B·H sequences are packed `g` at a time into one 2-D product
 * (g·T, Dh)·(Dh, g·T) with a block-diagonal causal mask: g× more multiply-adds, but on the fast path, and far fewer
 * ops than one product per sequence. Entries of other sequences get −10000 like future tokens, whose exp underflows
 * to exactly 0 in float32, so the result (and its gradient) equals per-sequence attention. Measured at B=32, d=64
 * on wasm (one thread, a shared 2-core machine, so ±30% noise), forward + backward of the attention core: T=37
 * batched 17.9 ms, per-sequence 23 ms, packed g·T≈150 12.7 ms; T=11 per-sequence 31 ms, packed g·T=88 3.4 ms,
 * batched about the same as packed. In whole training steps g = 2…8 measured alike; g = 1 and g = B were slower.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D } from './tf.ts';
import { linear, matmul } from './ops.ts';
import type { MixerFactory } from './mixer.ts';

/** Target rows per packed score matrix (g·T): 80–150 measured alike on wasm; beyond ~300 the wasted work wins. */
const PACK_ROWS = 128;

/** Block-diagonal causal mask for `g` sequences of length T: (g·T, g·T), 0 where query i may see key j. */
function packedCausalMask(g: number, T: number): Tensor2D {
  const n = g * T;
  const m = new Float32Array(n * n).fill(-10000);
  for (let e = 0; e < g; e++) {
    for (let i = 0; i < T; i++) {
      const row = (e * T + i) * n + e * T;
      for (let j = 0; j <= i; j++) m[row + j] = 0;
    }
  }
  return tf.tensor2d(m, [n, n]);
}

/**
 * Causal softmax attention over S independent sequences given as rows of 2-D tensors q, k, v: (S·T, Dh) each.
 * Returns (S·T, Dh). Exposed for tests (the packed form against the plain batched form).
 */
export function causalAttentionRows(q: Tensor2D, k: Tensor2D, v: Tensor2D, T: number, packRows = PACK_ROWS): Tensor2D {
  const [rows, Dh] = q.shape;
  const S = rows / T;
  if (!Number.isInteger(S)) throw new Error(`attention: ${rows} rows are not a whole number of sequences of length ${T}`);
  const g = Math.max(1, Math.min(S, Math.floor(packRows / T)));
  const scale = 1 / Math.sqrt(Dh);
  const sizes: number[] = [];
  for (let s = 0; s < S; s += g) sizes.push(Math.min(g, S - s) * T);
  const masks = new Map<number, Tensor2D>();
  // Fewer, larger ops (each tfjs op costs tens of µs on wasm): scale q once, transpose k once and split the columns.
  const qScaled = tf.mul(q, scale) as Tensor2D;
  const kT = tf.transpose(k) as Tensor2D; // (Dh, S·T)
  const qs = sizes.length > 1 ? tf.split(qScaled, sizes, 0) : [qScaled];
  const kTs = sizes.length > 1 ? tf.split(kT, sizes, 1) : [kT];
  const vs = sizes.length > 1 ? tf.split(v, sizes, 0) : [v];
  const outs = qs.map((qi, i) => {
    const n = sizes[i]!;
    let mask = masks.get(n);
    if (!mask) { mask = packedCausalMask(n / T, T); masks.set(n, mask); }
    const scores = tf.add(matmul(qi as Tensor2D, kTs[i] as Tensor2D), mask); // (n, n)
    return matmul(tf.softmax(scores) as Tensor2D, vs[i] as Tensor2D); // (n, Dh)
  });
  return (outs.length > 1 ? tf.concat(outs, 0) : outs[0]!) as Tensor2D;
}

export const attention: MixerFactory = (cfg, _layer, p) => {
  const d = cfg.d_model;
  const H = cfg.n_heads;
  if (d % H !== 0) throw new Error(`attention: d_model ${d} is not divisible by n_heads ${H}`);
  const Dh = d / H;
  // Init (architectures.md §1.6): Linear weights N(0, 0.02), biases 0; `out_proj.weight` N(0, 0.02/√(2·n_layers)).
  const Wqkv = p.param('Wqkv.weight', [3 * d, d], { kind: 'normal', std: 0.02 });
  const Wout = p.param('out_proj.weight', [d, d], { kind: 'normal', std: 0.02 / Math.sqrt(2 * cfg.n_layers) });
  const bout = p.param('out_proj.bias', [d], { kind: 'constant', value: 0 });

  return {
    forward(x: Tensor3D): Tensor3D {
      const [B, T] = x.shape;
      const qkv = linear(x.reshape([B * T, d]), Wqkv) as Tensor2D; // (B·T, 3d), columns (three, head, Dh)
      const [q, k, v] = tf.split(qkv, 3, 1) as [Tensor2D, Tensor2D, Tensor2D]; // (B·T, d) each
      // Heads as separate sequences: (B·T, d) → (B, T, H, Dh) → (B, H, T, Dh) → (B·H·T, Dh). No-op for H = 1.
      const toRows = (t: Tensor2D): Tensor2D =>
        H === 1 ? t : (tf.transpose(t.reshape([B, T, H, Dh]), [0, 2, 1, 3]).reshape([B * H * T, Dh]) as Tensor2D);
      let o: Tensor = causalAttentionRows(toRows(q), toRows(k), toRows(v), T); // (B·H·T, Dh)
      if (H > 1) o = tf.transpose(o.reshape([B, H, T, Dh]), [0, 2, 1, 3]); // (B, T, H, Dh)
      return linear(o.reshape([B, T, d]) as Tensor3D, Wout, bout); // (B, T, d)
    },
  };
};
