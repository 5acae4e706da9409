/**
 * long_filter (the convolutions of H3 and Hyena): values and hand-written gradients against plain references, over
 * the kernel widths that take different paths (one call, fast-width pieces with zero padding, one wide call).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { causalLongConv, crossCorrelation, depthwiseConv1d, withSkip } from '../../src/models/long_filter.ts';
import { causalConv1d } from '../../src/models/ops.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) => {
  let m = 0, s = 0;
  for (let i = 0; i < want.length; i++) { m = Math.max(m, Math.abs(got[i]! - want[i]!)); s = Math.max(s, Math.abs(want[i]!)); }
  assert.ok(s > 0, `${what}: reference is all zeros`);
  assert.ok(m / s < tol, `${what}: max |Δ| ${m} against max ${s}`);
};

/** Value and gradients of Σ f(x, h)·w, for comparing a custom-gradient op with a reference built from plain ops. */
function valueAndGrads(f: (x: Tensor, h: Tensor) => Tensor, x: Tensor, h: Tensor, w: Tensor): Float32Array[] {
  return tf.tidy(() => {
    const g = tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(f(a, b), w)));
    const [gx, gh] = g([x, h]);
    return [f(x, h).dataSync() as Float32Array, gx!.dataSync() as Float32Array, gh!.dataSync() as Float32Array].map((a) => a.slice());
  });
}

for (const K of [1, 3, 4, 7, 9, 13, 25, 26, 37, 60]) {
  test(`causalLongConv with a ${K}-tap filter equals Σ_τ h[τ]·x[t−τ] and its gradients equal those of the shifted-slice form`, () => {
    const B = 2, T = 40, C = 3;
    const x = tf.randomNormal([B, T, C], 0, 1, 'float32', K);
    const h = tf.randomNormal([C, K], 0, 1, 'float32', K + 1);
    const w = tf.randomNormal([B, T, C], 0, 1, 'float32', K + 2);
    // reference: ops.causalConv1d (shifted slices, autodiff) with PyTorch weight [C, 1, K] = h reversed along τ
    const ref = (a: Tensor, b: Tensor) => causalConv1d(a as Tensor3D, tf.reverse(b, 1).reshape([C, 1, K]));
    const [y, gx, gh] = valueAndGrads((a, b) => causalLongConv(a as Tensor3D, b as Tensor2D), x, h, w);
    const [ry, rgx, rgh] = valueAndGrads(ref, x, h, w);
    close(y!, ry!, 1e-5, 'y');
    close(gx!, rgx!, 1e-5, 'dx');
    close(gh!, rgh!, 1e-5, 'dh');
  });
}

test('depthwiseConv1d equals ops.causalConv1d (PyTorch Conv1d semantics, with bias)', () => {
  const x = tf.randomNormal([3, 11, 5], 0, 1, 'float32', 1) as Tensor3D;
  const wt = tf.randomNormal([5, 1, 3], 0, 1, 'float32', 2), b = tf.randomNormal([5], 0, 1, 'float32', 3);
  close(depthwiseConv1d(x, wt, b).dataSync(), causalConv1d(x, wt, b).dataSync(), 1e-6, 'y');
});

for (const [N, T] of [[8, 5], [6, 9], [150, 37]] as const) {
  test(`crossCorrelation k[j] = Σ_n a[n]·b[n+j] (N = ${N}, T = ${T}) with its gradients, against the explicit sum`, () => {
    const C = 3;
    const a = tf.randomNormal([C, N], 0, 1, 'float32', 5), b = tf.randomNormal([C, N], 0, 1, 'float32', 6);
    const w = tf.randomNormal([C, T], 0, 1, 'float32', 7);
    // reference from plain ops: per lag j, Σ_n a[n]·b[n+j] over the overlap (0 when j ≥ N)
    const ref = (a: Tensor, b: Tensor) => tf.stack(Array.from({ length: T }, (_, j) => j >= N ? tf.zeros([C])
      : tf.sum(tf.mul(tf.slice(a, [0, 0], [C, N - j]), tf.slice(b, [0, j], [C, N - j])), 1)), 1);
    const [k, ga, gb] = valueAndGrads((p, q) => crossCorrelation(p as Tensor2D, q as Tensor2D, T), a, b, w);
    const [rk, rga, rgb] = valueAndGrads(ref, a, b, w);
    close(k!, rk!, 1e-5, 'k');
    close(ga!, rga!, 1e-5, 'da');
    close(gb!, rgb!, 1e-5, 'db');
  });
}

test('withSkip adds D to the lag-0 tap only', () => {
  const h = tf.tensor2d([[1, 2, 3], [4, 5, 6]]), D = tf.tensor1d([10, 20]);
  assert.deepEqual(Array.from(withSkip(h, D).dataSync()), [11, 2, 3, 24, 5, 6]);
});
