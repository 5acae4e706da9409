/** A tiny stand-in model and split for testing the training loop without the real mixers. */
import { tf, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { ParamStore } from '../../src/models/params.ts';
import { causalConv1d, embed, gatherRows, linear } from '../../src/models/ops.ts';
import type { TrainableLM } from '../../src/train/loop.ts';
import type { Split } from '../../src/train/split.ts';

/** h = conv4(E[x]) W: position 3 sees tokens 0–3 — enough to learn "answer = first token". */
export function toyModel(V: number, D: number, seed = 0): TrainableLM {
  const params = new ParamStore(seed);
  const E = params.create('emb', [V, D], { kind: 'normal', std: 0.5 });
  const W = params.create('w', [D, D], { kind: 'normal', std: 0.5 });
  const C = params.create('conv', [D, 1, 4], { kind: 'normal', std: 0.5 });
  return {
    params,
    forward({ ids, batch, time }) {
      const e = embed(E as unknown as Tensor2D, ids, batch, time);
      return linear(causalConv1d(e, C), W) as Tensor3D;
    },
    logitsAt(hidden, rows, positions) {
      const [B, T, D2] = hidden.shape;
      const flat = Int32Array.from(rows, (r, i) => r * T + positions[i]!);
      void B;
      return linear(gatherRows(hidden.reshape([-1, D2]) as Tensor2D, flat), E) as Tensor2D;
    },
  };
}

/** "Recall the first token": tokens [x, 5, 6, q], answer x, query at position 3. */
export function toySplit(n: number, V: number, seed = 1): Split {
  const L = 4;
  const tokens = new Int32Array(n * L);
  const answers = new Int32Array(n);
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 1000) / 1000;
  for (let i = 0; i < n; i++) {
    const x = 7 + Math.floor(rnd() * (V - 7));
    tokens.set([x, 5, 6, 3], i * L);
    answers[i] = x;
  }
  const fill = (v: number) => new Int32Array(n).fill(v);
  return {
    name: 'toy', n, lmax: L, tokens, tokensKeyCorrupted: tokens, tokensValueCorrupted: tokens,
    lengths: fill(L), answers,
    pos: { key: fill(0), value: fill(1), next_key: fill(2), divider: fill(2), query: fill(3), answer: fill(3) },
  };
}
