/**
 * The replaced wasm kernels (src/models/wasm-kernels.ts): a clone shares its buffer instead of copying it; slices and
 * gathers of every rank and dtype equal the backend's own Slice and GatherV2; the Sum and Mean gradients equal
 * tfjs's; training gradients are bit-identical to those with the backend's own kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/models/tf.ts';
import { useFastWasmKernels } from '../../src/models/wasm-kernels.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { answerLoss } from '../../src/train/loop.ts';
import type { MixerKind } from '../../src/models/config.ts';

await initBackend('wasm');

const buffers = () => tf.backend().numDataIds();

test('a clone on wasm shares the buffer (no new one); the copying kernel, put back, allocates one', () => {
  const x = tf.tensor1d([1, 2, 3, 4]);
  for (const share of [true, false]) {
    useFastWasmKernels(share);
    const before = buffers();
    const y = tf.clone(x);
    assert.equal(buffers() - before, share ? 0 : 1);
    x.dataSync(); // touch both
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
    y.dispose();
    assert.deepEqual(Array.from(x.dataSync()), [1, 2, 3, 4], 'disposing the clone must not free the original');
  }
  useFastWasmKernels(true);
  x.dispose();
});

test('Slice and SplitV equal the original kernels for every rank, dtype and cut (contiguous or not), and leaves its input intact', () => {
  const cases: [number[], number[], number[]][] = [
    [[10], [3], [4]], [[6, 7], [1, 2], [4, 3]], [[6, 7], [2, 0], [3, 7]], [[352, 192], [0, 64], [352, 64]],
    [[4, 5, 6], [1, 0, 2], [2, 5, 3]], [[4, 5, 6], [0, 2, 0], [4, 2, 6]], [[3, 4, 5, 6], [1, 1, 0, 3], [2, 3, 5, 2]],
    [[2, 3, 4, 5, 6], [0, 1, 2, 0, 1], [2, 2, 2, 5, 4]], [[5, 4], [0, 0], [5, 4]], [[5, 4], [2, 1], [0, 3]],
  ];
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [shape, begin, size] of cases) {
      const n = shape.reduce((a, v) => a * v, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : dtype === 'int32' ? i * 3 - 7 : i * 1.5 - 7));
      const x = tf.tensor(values, shape, dtype);
      const got = (on: boolean) => { useFastWasmKernels(on); const y = tf.slice(x, begin, size); const v = Array.from(y.dataSync()); const sh = y.shape; y.dispose(); return { v, sh }; };
      const want = got(false), have = got(true);
      assert.deepEqual(have, want, `${dtype} [${shape}] begin [${begin}] size [${size}]`);
      assert.deepEqual(Array.from(x.dataSync()), values);
      x.dispose();
    }
  }
  // tf.split (SplitV), as the attention mixer uses it: column blocks, uneven row blocks, a rank-3 middle axis.
  const q = tf.randomNormal([12, 9, 4], 0, 1, 'float32', 4);
  for (const [sizes, axis] of [[3, 1], [[5, 0, 7], 0], [[1, 3], 2]] as [number | number[], number][]) {
    const split = (on: boolean) => { useFastWasmKernels(on); return tf.split(q, sizes, axis).map((t) => ({ v: Array.from(t.dataSync()), s: t.shape })); };
    assert.deepEqual(split(true), split(false), `split ${JSON.stringify(sizes)} on axis ${axis}`);
  }
  useFastWasmKernels(true);
});

test('GatherV2 equals the original kernel for every axis, dtype and index pattern, and rejects an index out of range', () => {
  const cases: [number[], number, number[], number[]][] = [
    [[35, 64], 0, [352], Array.from({ length: 352 }, (_, i) => (i * 7919) % 35)], // the embedding
    [[352, 64], 0, [32], Array.from({ length: 32 }, (_, i) => i * 11 + 8)], // logitsAt's cells
    [[5, 3], 0, [4], [4, 0, 4, 2]], [[5, 3], 1, [2], [2, 0]], [[4, 5, 6], 1, [3], [4, 4, 0]],
    [[4, 5, 6], 2, [2, 2], [5, 0, 1, 3]], [[4, 5, 40], 1, [2], [1, 3]], [[7], 0, [0], []], [[3, 0], 0, [2], [1, 2]],
  ];
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [shape, axis, ishape, idx] of cases) {
      const n = shape.reduce((a, v) => a * v, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : dtype === 'int32' ? i * 3 - 7 : i * 1.5 - 7));
      const x = tf.tensor(values, shape, dtype), ind = tf.tensor(idx, ishape, 'int32');
      const got = (on: boolean) => { useFastWasmKernels(on); const y = tf.gather(x, ind, axis); const r = { v: Array.from(y.dataSync()), s: y.shape, d: y.dtype }; y.dispose(); return r; };
      assert.deepEqual(got(true), got(false), `${dtype} [${shape}] axis ${axis} indices ${JSON.stringify(idx)}`);
      x.dispose();
      ind.dispose();
    }
  }
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  for (const bad of [2, -1]) {
    const errOf = (on: boolean) => { useFastWasmKernels(on); try { tf.gather(x, tf.tensor1d([0, bad], 'int32')); return ''; } catch (e) { return (e as Error).message; } };
    assert.equal(errOf(true), errOf(false));
    assert.match(errOf(true), /is not in \[0, 1\]/);
  }
  useFastWasmKernels(true);
  x.dispose();
});

test('the Sum and Mean gradients (ones from Fill) equal the originals bit for bit, for every axis and keepDims', () => {
  const x = tf.variable(tf.randomNormal([3, 4, 5], 0, 1, 'float32', 9));
  const w = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 10);
  for (const op of [tf.sum, tf.mean]) {
    for (const axis of [0, 1, 2, -1, [0, 2], [0, 1, 2], undefined] as (number | number[] | undefined)[]) {
      for (const keep of [false, true]) {
        const grad = (on: boolean) => {
          useFastWasmKernels(on);
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(op(tf.mul(x, w), axis, keep), 1.7)) as tf.Scalar, [x]);
          const g = grads[x.name]!;
          const v = Buffer.from((g.dataSync() as Float32Array).slice().buffer);
          g.dispose();
          return v;
        };
        assert.ok(grad(true).equals(grad(false)), `${op === tf.sum ? 'sum' : 'mean'} axis ${JSON.stringify(axis)} keepDims ${keep}`);
      }
    }
  }
  useFastWasmKernels(true);
  x.dispose();
  w.dispose();
});

function gradsOf(mixer: MixerKind): Map<string, Float32Array> {
  const B = 4, T = 9, V = 21;
  const lm = new LanguageModel({ mixer, d_model: 16, n_layers: 2, vocab_size: V, n_positions: 16, pos_emb: true, seed: 3 });
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % V);
  const positions = new Int32Array(B).fill(T - 2), answers = Int32Array.from([1, 4, 7, 9]);
  const { value, grads } = tf.variableGrads(() => answerLoss(lm, ids, B, T, positions, answers));
  const out = new Map<string, Float32Array>([['loss', value.dataSync() as Float32Array]]);
  for (const [name, v] of lm.params.vars) if (grads[v.name]) out.set(name, grads[v.name]!.dataSync() as Float32Array);
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  lm.dispose();
  return out;
}

for (const mixer of ['attention', 'base_conv', 'based', 'hyena', 'mamba', 'delta_net', 'h3'] as MixerKind[]) {
  test(`${mixer}: gradients with the replaced kernels equal those with the originals, bit for bit, and nothing leaks`, () => {
    useFastWasmKernels(false);
    const copied = gradsOf(mixer);
    useFastWasmKernels(true);
    const tensors = tf.memory().numTensors, before = buffers();
    const shared = gradsOf(mixer);
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    assert.equal(buffers(), before, 'wasm buffers leaked');
    assert.deepEqual([...shared.keys()], [...copied.keys()]);
    for (const [name, g] of copied) assert.ok(Buffer.from(shared.get(name)!.buffer).equals(Buffer.from(g.buffer)), `${name} differs`);
  });
}
