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

test('every element of every parameter follows the reference; a parameter without a gradient keeps its moments', () => {
  const a = tf.variable(tf.tensor2d([[0.5, -1], [2, 0]]), true, 'a');
  const b = tf.variable(tf.tensor1d([3, -0.25, 1]), true, 'b');
  const opt = new AdamW({ weightDecay: 0.1 });
  const ga = [[0.3, -2, 1e-4, 5], [-0.1, 0.5, -3, 0], [0.05, 0.05, 0.2, -1]];
  const gb = [[1, 2, 3], null, [-0.5, 0.25, 4]];
  const vars = new Map<string, tf.Variable>([['a', a], ['b', b]]);
  ga.forEach((g, i) => {
    const grads: Record<string, tf.Tensor> = { [a.name]: tf.tensor2d(g, [2, 2]) };
    if (gb[i]) grads[b.name] = tf.tensor1d(gb[i]!);
    opt.apply(vars, grads, 0.02);
  });
  const gotA = Array.from(a.dataSync());
  [0.5, -1, 2, 0].forEach((p0, j) => {
    const want = reference(p0, ga.map((g) => g[j]!), 0.02, 0.1).at(-1)!;
    assert.ok(Math.abs(gotA[j]! - want) < 1e-6, `a[${j}]: ${gotA[j]} vs ${want}`);
  });
  assert.equal(opt.state.m.get('a')!.length, 4);
  // b skipped step 2: its moments and value are those after step 1, then step 3 uses t = 3 bias correction.
  const m1 = 0.1 * 3, mb = 0.9 * m1 + 0.1 * 4;
  assert.ok(Math.abs(opt.state.m.get('b')![2]! - mb) < 1e-6, `m of b: ${opt.state.m.get('b')![2]} vs ${mb}`);
});
