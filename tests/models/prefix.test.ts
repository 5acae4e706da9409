/**
 * Prefix reuse (src/models/prefix.ts): rows that repeat a recorded row's first p steps start at step p from its
 * state. The outputs must be those of the plain forward-only kernels bit for bit, for rows that share no step, some
 * steps, or all of them; and rows of another layer (other weights) must not be matched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { selectiveScanInference } from '../../src/models/mamba-scan.ts';
import { deltaRuleFusedInference } from '../../src/models/delta_net.ts';
import { PrefixCache, rowStarts, withPrefixCache } from '../../src/models/prefix.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const T = 7;
/** Rows of the reuse batch: (recorded row it copies, step from which it differs; T = never). */
const ROWS: [number, number][] = [[0, 0], [0, 1], [1, 3], [2, 6], [1, T], [2, 4], [0, 5]];

function bits(x: Tensor): number[] {
  return Array.from(new Uint32Array((x.dataSync() as Float32Array).slice().buffer));
}

/**
 * A recorded batch (3 rows) and a reuse batch built from it: row j copies recorded row ROWS[j][0] up to step
 * ROWS[j][1] and has fresh values from there on. `width` floats per step, in each of the given (B, T, width) arrays.
 */
function batches(widths: number[], seed: number): { recorded: Float32Array[]; reuse: Float32Array[] } {
  const recorded = widths.map((w, k) => tf.randomNormal([3, T, w], 0, 1, 'float32', seed + k).dataSync() as Float32Array);
  const fresh = widths.map((w, k) => tf.randomNormal([ROWS.length, T, w], 0, 1, 'float32', seed + 10 + k).dataSync() as Float32Array);
  const reuse = widths.map((w, k) => {
    const out = fresh[k]!.slice();
    ROWS.forEach(([src, until], j) => out.set(recorded[k]!.subarray(src * T * w, (src * T + until) * w), j * T * w));
    return out;
  });
  return { recorded, reuse };
}

test('rowStarts finds the longest recorded prefix of each row and copies its outputs', () => {
  const width = 3, state = 2, outW = 2;
  const { recorded: [rec], reuse: [use] } = batches([width], 1) as { recorded: Float32Array[]; reuse: Float32Array[] };
  const cache = new PrefixCache();
  const recOut = Float32Array.from({ length: 3 * T * outW }, (_, i) => i + 0.5);
  withPrefixCache(cache, 'record', () => {
    const r = rowStarts('t', 3, T, width, state, outW, rec!, recOut)!;
    r.save!.forEach((_, i) => { r.save![i] = i; });
    r.keep();
  });
  assert.equal(cache.size, 3);
  const out = new Float32Array(ROWS.length * T * outW);
  const r = withPrefixCache(cache, 'reuse', () => rowStarts('t', ROWS.length, T, width, state, outW, use!, out))!;
  assert.deepEqual(Array.from(r.start), ROWS.map(([, until]) => until));
  ROWS.forEach(([src, until], j) => {
    if (until === 0) return assert.equal(r.init[j], null);
    assert.deepEqual(Array.from(r.init[j]!), Array.from({ length: state }, (_, s) => ((src * T + until - 1) * state) + s), `row ${j}: the state after step ${until - 1}`);
    assert.deepEqual(Array.from(out.subarray(j * T * outW, (j * T + until) * outW)), Array.from(recOut.subarray(src * T * outW, (src * T + until) * outW)));
  });
  assert.equal(withPrefixCache(cache, 'reuse', () => rowStarts('other tag', 1, T, width, state, outW, use!, out))!.start[0], 0);
});

test('selective scan with prefix reuse equals the plain forward-only scan bit for bit; other weights are not matched', () => {
  const [Bn, E, S] = [ROWS.length, 6, 4];
  const { recorded, reuse } = batches([E, E, S, S], 3);
  const A = tf.neg(tf.exp(tf.randomNormal([E, S], 0, 1, 'float32', 30))) as Tensor2D, D = tf.randomNormal([E], 0, 1, 'float32', 31);
  const t3 = (x: Float32Array, b: number, w: number) => tf.tensor3d(x, [b, T, w]) as Tensor3D;
  const scan = (xs: Float32Array[], b: number, a: Tensor2D = A) =>
    selectiveScanInference(t3(xs[0]!, b, E), t3(xs[1]!, b, E), a, t3(xs[2]!, b, S), t3(xs[3]!, b, S), D, { deltaSoftplus: true });
  const cache = new PrefixCache();
  const recOut = withPrefixCache(cache, 'record', () => scan(recorded, 3));
  assert.deepEqual(bits(recOut), bits(scan(recorded, 3)));
  assert.deepEqual(bits(withPrefixCache(cache, 'reuse', () => scan(reuse, Bn))), bits(scan(reuse, Bn)));
  const A2 = tf.mul(A, 1.5) as Tensor2D; // another layer: the same inputs must not pick up A's states
  assert.deepEqual(bits(withPrefixCache(cache, 'reuse', () => scan(reuse, Bn, A2))), bits(scan(reuse, Bn, A2)));
});

test('fused delta rule with prefix reuse equals the plain forward-only rule bit for bit', () => {
  const [H, Dh] = [2, 5];
  const { recorded, reuse } = batches([3 * H * Dh, H], 5);
  const rule = (xs: Float32Array[], b: number) =>
    deltaRuleFusedInference(tf.tensor4d(xs[0]!, [b, T, 3 * H, Dh]).div(3) as tf.Tensor4D, tf.sigmoid(tf.tensor3d(xs[1]!, [b, T, H])) as Tensor3D);
  const cache = new PrefixCache();
  withPrefixCache(cache, 'record', () => rule(recorded, 3));
  assert.deepEqual(bits(withPrefixCache(cache, 'reuse', () => rule(reuse, ROWS.length))), bits(rule(reuse, ROWS.length)));
});
