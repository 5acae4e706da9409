import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { causalConv1d, causalLongConv, gatherRows, linear } from '../../src/models/ops.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

test('causalConv1d: the last tap multiplies the current token (PyTorch Conv1d, padding K−1, first T outputs)', () => {
  const x = tf.tensor3d([1, 2, 3, 4], [1, 4, 1]);
  const w = tf.tensor3d([10, 100, 1000], [1, 1, 3]); // taps for x[t−2], x[t−1], x[t]
  const y = causalConv1d(x as Tensor3D, w, tf.tensor1d([0.5]));
  assert.deepEqual(Array.from(y.dataSync()), [1000.5, 2100.5, 3210.5, 4320.5]);
});

test('causalLongConv equals the direct sum Σ_{s≤t} h[t−s]·x[s]', () => {
  const x = tf.tensor3d([1, 2, 3, 4], [1, 4, 1]);
  const h = tf.tensor2d([1, 0.1, 0.01, 0.001, 7], [1, 5]);
  const y = Array.from(causalLongConv(x as Tensor3D, h).dataSync());
  const xs = [1, 2, 3, 4], hs = [1, 0.1, 0.01, 0.001];
  const want = xs.map((_, t) => xs.slice(0, t + 1).reduce((a, xv, s) => a + hs[t - s]! * xv, 0));
  y.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `t=${i}: ${v} vs ${want[i]}`));
});

test('gatherRows scatters its gradient back onto repeated rows', () => {
  const E = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
  const { grads } = tf.variableGrads(() => tf.sum(gatherRows(E, Int32Array.from([2, 0, 2]))) as tf.Scalar, [E]);
  assert.deepEqual(Array.from(grads[E.name]!.dataSync()), [1, 1, 0, 0, 2, 2]);
  assert.throws(() => gatherRows(E, Int32Array.from([3])), /outside \[0, 3\)/);
});

test('linear uses the PyTorch [out, in] layout', () => {
  const x = tf.tensor3d([1, 2], [1, 1, 2]);
  const W = tf.tensor2d([[1, 0], [0, 1], [1, 1]]); // out 3, in 2
  assert.deepEqual(Array.from(linear(x, W, tf.tensor1d([0, 0, 1])).dataSync()), [1, 2, 4]);
  assert.throws(() => linear(x, tf.zeros([3, 3])), /\[out, in\]/);
});
