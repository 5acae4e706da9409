/**
 * @module evaluate — accuracy = argmax of the full-vocabulary logits at the query position equals the answer
 * (paper-setup.md §4), and p(answer) under the full softmax; per example, in dataset order.
 */
import { tf } from '../models/tf.ts';
import type { TrainableLM } from './loop.ts';
import { batchTokens, gatherInt, type Split } from './split.ts';

export interface Evaluation {
  n: number;
  accuracy: number;
  meanPAnswer: number;
  predicted: Int32Array;
  pAnswer: Float32Array;
  correct: Int32Array;
}

export function evaluate(model: TrainableLM, s: Split, opts: { limit?: number; batchSize?: number; tokens?: Int32Array } = {}): Evaluation {
  const n = Math.min(s.n, opts.limit ?? s.n);
  const bs = opts.batchSize ?? 64;
  const tokens = opts.tokens ?? s.tokens;
  const predicted = new Int32Array(n);
  const pAnswer = new Float32Array(n);
  const correct = new Int32Array(n);
  for (let start = 0; start < n; start += bs) {
    const rows = Int32Array.from({ length: Math.min(bs, n - start) }, (_, i) => start + i);
    const { ids, batch, time } = batchTokens(s, tokens, rows);
    const positions = gatherInt(s.pos.query, rows);
    const answers = gatherInt(s.answers, rows);
    const [arg, p] = tf.tidy(() => {
      const hidden = model.forward({ ids, batch, time });
      const logits = model.logitsAt(hidden, Int32Array.from({ length: batch }, (_, i) => i), positions);
      const probs = tf.softmax(logits);
      const pa = tf.sum(tf.mul(probs, tf.oneHot(tf.tensor1d(answers, 'int32'), logits.shape[1]).toFloat()), 1);
      return [tf.argMax(logits, 1), pa];
    });
    const a = arg!.dataSync() as Int32Array, pv = p!.dataSync() as Float32Array;
    arg!.dispose(); p!.dispose();
    for (let i = 0; i < batch; i++) {
      predicted[start + i] = a[i]!;
      pAnswer[start + i] = pv[i]!;
      correct[start + i] = a[i] === answers[i] ? 1 : 0;
    }
  }
  let acc = 0, mp = 0;
  for (let i = 0; i < n; i++) { acc += correct[i]!; mp += pAnswer[i]!; }
  return { n, accuracy: n ? acc / n : 0, meanPAnswer: n ? mp / n : 0, predicted, pAnswer, correct };
}
