import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { attention, causalAttentionRows } from '../../src/models/attention.ts';
import { causalMask, linear } from '../../src/models/ops.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend } from './harness.ts';

await useBackend('cpu');

const maxAbsDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

/** The textbook form: per-sequence batched QKᵀ/√Dh + mask, softmax, ·V. q, k, v: (S, T, Dh). */
function reference(q: Tensor3D, k: Tensor3D, v: Tensor3D): Tensor3D {
  const [, T, Dh] = q.shape;
  const s = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(Dh)), causalMask(T));
  return tf.matMul(tf.softmax(s), v);
}

test('packed block-diagonal attention equals per-sequence attention, for every packing (incl. a ragged last group)', () => {
  const S = 5, T = 7, Dh = 6;
  const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([S, T, Dh], 0, 1, 'float32', s) as Tensor3D) as [Tensor3D, Tensor3D, Tensor3D];
  const want = reference(q, k, v);
  const rows = (t: Tensor3D) => t.reshape([S * T, Dh]) as Tensor2D;
  for (const packRows of [1, T, 2 * T, 3 * T + 1, 100]) { // g = 1, 1, 2, 3 (groups 3 + 2), 5
    const got = causalAttentionRows(rows(q), rows(k), rows(v), T, packRows).reshape([S, T, Dh]);
    assert.ok(maxAbsDiff(got, want) < 1e-5, `packRows ${packRows}: differs by ${maxAbsDiff(got, want)}`);
  }
});

test('packed attention: gradients equal those of per-sequence attention', () => {
  const S = 4, T = 5, Dh = 3;
  const xs = [1, 2, 3].map((s) => tf.randomNormal([S, T, Dh], 0, 1, 'float32', s) as Tensor3D);
  const w = tf.randomNormal([S, T, Dh], 0, 1, 'float32', 4);
  const g1 = tf.grads((q: Tensor, k: Tensor, v: Tensor) => tf.sum(tf.mul(reference(q as Tensor3D, k as Tensor3D, v as Tensor3D), w)))(xs);
  const r = (t: Tensor) => t.reshape([S * T, Dh]) as Tensor2D;
  const g2 = tf.grads((q: Tensor, k: Tensor, v: Tensor) =>
    tf.sum(tf.mul(causalAttentionRows(r(q), r(k), r(v), T, 2 * T).reshape([S, T, Dh]), w)))(xs);
  g1.forEach((g, i) => assert.ok(maxAbsDiff(g, g2[i]!) < 1e-5, `gradient ${'qkv'[i]} differs by ${maxAbsDiff(g, g2[i]!)}`));
});

test('MHA: parameters are Wqkv.weight [3d, d], out_proj.weight [d, d], out_proj.bias [d] (tinylang, no qkv bias)', () => {
  const b = buildMixer(attention, { mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 5 });
  assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), [
    ['backbone.layers.0.sequence_mixer.Wqkv.weight', [24, 8]],
    ['backbone.layers.0.sequence_mixer.out_proj.weight', [8, 8]],
    ['backbone.layers.0.sequence_mixer.out_proj.bias', [8]],
  ]);
});

test('MHA with 2 heads equals the per-head formula (Q/K/V rows (three, head, Dh), scale 1/√Dh)', () => {
  const d = 8, H = 2, Dh = 4, B = 2, T = 6;
  const b = buildMixer(attention, { mixer: 'attention', d_model: d, n_heads: H, n_layers: 2, vocab_size: 5 });
  const bias = b.params.get('backbone.layers.0.sequence_mixer.out_proj.bias');
  bias.assign(tf.randomNormal([d], 0, 1, 'float32', 5)); // non-zero, so the bias is checked too
  const x = randomInput(B, T, d, 3);
  const got = b.run(x);
  const Wqkv = b.params.get('backbone.layers.0.sequence_mixer.Wqkv.weight');
  const qkv = linear(x, Wqkv); // (B, T, 3d)
  const heads: Tensor[] = [];
  for (let h = 0; h < H; h++) {
    const part = (j: number) => tf.slice(qkv, [0, 0, j * d + h * Dh], [B, T, Dh]) as Tensor3D;
    heads.push(reference(part(0), part(1), part(2)));
  }
  const want = linear(tf.concat(heads, 2), b.params.get('backbone.layers.0.sequence_mixer.out_proj.weight'), bias);
  assert.ok(maxAbsDiff(got, want) < 1e-5, `differs by ${maxAbsDiff(got, want)}`);
});

test('MHA is causal', () => {
  const b = buildMixer(attention, { mixer: 'attention', d_model: 8, n_heads: 2, n_layers: 2, vocab_size: 5 });
  b.params.get('backbone.layers.0.sequence_mixer.Wqkv.weight').assign(tf.randomNormal([24, 8], 0, 1, 'float32', 9)); // sharp patterns
  const x = randomInput(3, 7, 8, 4);
  for (const t of [0, 3, 6]) assertCausal(b, x, t);
});

test('MHA gradients match finite differences', () => {
  const b = buildMixer(attention, { mixer: 'attention', d_model: 6, n_heads: 2, n_layers: 2, vocab_size: 5 });
  b.params.get('backbone.layers.0.sequence_mixer.Wqkv.weight').assign(tf.randomNormal([18, 6], 0, 0.5, 'float32', 9));
  gradCheck(b, randomInput(2, 5, 6, 5));
});

test('MHA init: Wqkv ~ N(0, 0.02), out_proj.weight ~ N(0, 0.02/√(2·n_layers)), out_proj.bias = 0', () => {
  const b = buildMixer(attention, { mixer: 'attention', d_model: 64, n_layers: 2, vocab_size: 5 });
  const std = (name: string) => tf.tidy(() => Math.sqrt(tf.moments(b.params.get(name)).variance.dataSync()[0]!));
  assert.ok(Math.abs(std('backbone.layers.0.sequence_mixer.Wqkv.weight') / 0.02 - 1) < 0.05);
  assert.ok(Math.abs(std('backbone.layers.0.sequence_mixer.out_proj.weight') / (0.02 / 2) - 1) < 0.05);
  assert.equal(tf.max(tf.abs(b.params.get('backbone.layers.0.sequence_mixer.out_proj.bias'))).dataSync()[0], 0);
});
