import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/models/tf.ts';
import { AdamW } from '../../src/train/optimizer.ts';

await initBackend('cpu');

/** torch.optim.AdamW, written out in float64 for one scalar parameter. */
function reference(p: number, grads: number[], lr: number, wd: number): number[] {
  let m = 0, v = 0;
  const out: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    p -= lr * wd * p;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    p -= (lr * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
    out.push(p);
  });
  return out;
}

test('AdamW matches torch.optim.AdamW step by step (with and without weight decay)', () => {
  for (const wd of [0, 0.1]) {
    const p = tf.variable(tf.scalar(0.5), true, `p${wd}`);
    const opt = new AdamW({ weightDecay: wd });
    const grads = [0.3, -0.1, 0.05, 2.0];
    const want = reference(0.5, grads, 0.01, wd);
    grads.forEach((g, i) => {
      opt.apply(new Map([[p.name, p]]), { [p.name]: tf.scalar(g) }, 0.01);
      const got = p.dataSync()[0]!;
      assert.ok(Math.abs(got - want[i]!) < 1e-6, `wd ${wd}, step ${i + 1}: ${got} vs ${want[i]}`);
    });
    assert.equal(opt.state.step, 4);
  }
});

test('the first AdamW step moves each parameter by ≈ lr (bias correction)', () => {
  const p = tf.variable(tf.tensor1d([1, -1]), true, 'q');
  new AdamW().apply(new Map([[p.name, p]]), { [p.name]: tf.tensor1d([1e-3, -5]) }, 0.1);
  const [a, b] = Array.from(p.dataSync());
  assert.ok(Math.abs(a! - 0.9) < 1e-5 && Math.abs(b! + 0.9) < 1e-5, `${a}, ${b}`);
});
