import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { baseConv, baseConvKernel, causalLongConvToeplitz, positionalFeatures } from '../../src/models/base_conv.ts';
import { causalLongConv } from '../../src/models/ops.ts';
import { mixerCounts } from '../../src/models/count.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const fixture = JSON.parse(readFileSync(new URL('./fixtures/tinylang-state-dict.json', import.meta.url), 'utf8')) as {
  config: { d_model: number; vocab_size: number; n_positions: number };
  keys: Record<string, [string, number[]][]>;
};
const maxAbsDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const cfg = (over: Partial<ModelConfig> = {}): ModelConfig => ({ mixer: 'base_conv', d_model: 6, n_layers: 2, vocab_size: 5, n_positions: 16, ...over });
const P = (layer: number, name: string) => `backbone.layers.${layer}.sequence_mixer.${name}`;
const Z = P(1, 'conv.pos_emb.z');

/** Overwrite every parameter except z with N(0, std) draws, so checks see non-trivial biases and filters. */
function randomise(b: Built, std = 0.5, seed = 50): void {
  let k = 0;
  for (const [name, v] of b.params.vars) if (!name.endsWith('pos_emb.z')) v.assign(tf.randomNormal(v.shape, 0, std, 'float32', seed + k++));
}
/**
 * Move each filter-MLP hidden unit's pre-activation over the first T positions at least 0.3 away from ReLU's kink
 * (alternately on and off), so finite differences along a random direction do not straddle it.
 */
function offKinks(b: Built, T: number): void {
  const z = b.params.get(Z).dataSync(), w0 = b.params.get(P(1, 'conv.mlp.0.weight')).dataSync();
  const bias = new Float32Array(16);
  for (let j = 0; j < 16; j++) {
    const pre = Array.from({ length: T }, (_, t) => w0[j * 3]! * z[t * 3]! + w0[j * 3 + 1]! * z[t * 3 + 1]! + w0[j * 3 + 2]! * z[t * 3 + 2]!);
    bias[j] = j % 2 === 0 ? 0.3 - Math.min(...pre) : -0.3 - Math.max(...pre);
  }
  b.params.get(P(1, 'conv.mlp.0.bias')).assign(tf.tensor1d(bias));
}
const arr = (b: Built, layer: number, name: string) => Float64Array.from(b.params.get(P(layer, name)).dataSync());

/** float64 reference: y = conv(u) ⊙ (W u + b) + u with the conv given as a per-channel filter over lags 0..T−1. */
function reference(u: Float64Array, B: number, T: number, d: number, lag: (c: number, tau: number) => number, convBias: (c: number) => number,
  W: Float64Array, bias: Float64Array): Float64Array {
  const y = new Float64Array(B * T * d);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) {
    let conv = convBias(c);
    for (let s = 0; s <= t; s++) conv += lag(c, t - s) * u[(b * T + s) * d + c]!;
    let proj = bias[c]!;
    for (let j = 0; j < d; j++) proj += W[c * d + j]! * u[(b * T + t) * d + j]!;
    y[(b * T + t) * d + c] = conv * proj + u[(b * T + t) * d + c]!;
  }
  return y;
}
const assertClose = (got: Tensor, want: Float64Array, tol: number, what: string) => {
  const g = got.dataSync();
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(g[i]! - want[i]!));
  assert.ok(m < tol, `${what}: max |Δ| = ${m}`);
};

test('parameter names and shapes equal state-dict.md (tinylang base_conv: layer 0 short k=3, layer 1 implicit long conv)', () => {
  const { d_model, vocab_size, n_positions } = fixture.config;
  for (const layer of [0, 1]) {
    const b = buildMixer(baseConv, { mixer: 'base_conv', d_model, vocab_size, n_positions, n_layers: 2 }, layer);
    const want = fixture.keys['base_conv']!.filter(([n]) => n.startsWith(`backbone.layers.${layer}.sequence_mixer.`));
    assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), want);
    assert.equal(b.params.count(), mixerCounts(b.cfg, layer).params);
  }
});

test('d_conv replaces the kernel list: every layer becomes a short conv of that width (state-dict.md §2 rule 6)', () => {
  const b = buildMixer(baseConv, cfg({ d_conv: 2 }), 1);
  assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), [
    [P(1, 'projection.weight'), [6, 6]], [P(1, 'projection.bias'), [6]], [P(1, 'conv.conv.weight'), [6, 1, 2]], [P(1, 'conv.conv.bias'), [6]],
  ]);
  assert.deepEqual([0, 1, 2].map((l) => baseConvKernel(buildMixer(baseConv, cfg(), 0).cfg, l)), [3, -1, 3]);
  assert.throws(() => buildMixer(baseConv, cfg(), 4), /no kernel size for layer 4/);
  assert.throws(() => buildMixer(baseConv, cfg({ d_conv: 0 }), 0), /short conv width/);
});

test('init: projection and filter-MLP weights N(0, 0.02) with zero biases; conv weight and bias U(±1/√k); z = positional features', () => {
  const std = (t: Tensor) => tf.tidy(() => Math.sqrt(tf.moments(t).variance.dataSync()[0]!));
  const maxAbs = (t: Tensor) => tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]!);
  const b0 = buildMixer(baseConv, cfg({ d_model: 64 }), 0);
  assert.ok(Math.abs(std(b0.params.get(P(0, 'projection.weight'))) / 0.02 - 1) < 0.05);
  assert.equal(maxAbs(b0.params.get(P(0, 'projection.bias'))), 0);
  const w = b0.params.get(P(0, 'conv.conv.weight'));
  assert.ok(maxAbs(w) <= 1 / Math.sqrt(3) && maxAbs(w) > 0.5, `conv weight max ${maxAbs(w)}`);
  assert.ok(Math.abs(std(w) / (1 / Math.sqrt(3) / Math.sqrt(3)) - 1) < 0.15, 'conv weight std of U(±1/√3)');
  assert.ok(maxAbs(b0.params.get(P(0, 'conv.conv.bias'))) <= 1 / Math.sqrt(3));
  const b1 = buildMixer(baseConv, cfg({ d_model: 64, n_positions: 1024 }), 1);
  assert.ok(Math.abs(std(b1.params.get(P(1, 'conv.mlp.2.weight'))) / 0.02 - 1) < 0.1);
  assert.equal(maxAbs(b1.params.get(P(1, 'conv.mlp.0.bias'))) + maxAbs(b1.params.get(P(1, 'conv.mlp.2.bias'))), 0);
  const z = b1.params.get(Z).reshape([1024, 3]).arraySync() as number[][];
  assert.deepEqual(z[0], [0, 1, -0]);
  assert.equal(z[1023]![0], 1);
  assert.ok(Math.abs(z[512]![0]! - 512 / 1023) < 1e-7);
  assert.ok(Math.abs(z[512]![1]! - Math.cos(1e-4 * Math.PI)) < 1e-7 && Math.abs(z[512]![2]! + Math.sin(1e-4 * Math.PI)) < 1e-7);
  assert.deepEqual(Array.from(positionalFeatures(1)), [0, 1, -0]);
});

test('causalLongConvToeplitz equals the direct sum Σ_{s≤t} h[c, t−s]·x[b,s,c] and ops.causalLongConv (both Toeplitz builds)', () => {
  for (const [T, selectionMaxT] of [[1, 128], [2, 128], [5, 128], [9, 128], [1, 0], [2, 0], [5, 0], [9, 4]] as const) {
    const B = 2, C = 3, L = T + 3;
    const x = tf.randomNormal([B, T, C], 0, 1, 'float32', T) as Tensor3D;
    const h = tf.randomNormal([C, L], 0, 1, 'float32', 10 + T) as Tensor2D;
    const xs = x.dataSync(), hs = h.dataSync();
    const want = new Float64Array(B * T * C);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let s = 0; s <= t; s++) acc += hs[c * L + t - s]! * xs[(b * T + s) * C + c]!;
      want[(b * T + t) * C + c] = acc;
    }
    const got = causalLongConvToeplitz(x, h, selectionMaxT);
    assert.deepEqual(got.shape, [B, T, C]);
    assertClose(got, want, 1e-5, `T=${T}, selectionMaxT=${selectionMaxT}`);
    assert.ok(maxAbsDiff(got, causalLongConv(x, h)) < 1e-5);
  }
});

test('causalLongConvToeplitz gradients equal those of ops.causalLongConv (both inputs, both Toeplitz builds)', () => {
  const x = tf.randomNormal([2, 7, 3], 0, 1, 'float32', 1) as Tensor3D;
  const h = tf.randomNormal([3, 9], 0, 1, 'float32', 2) as Tensor2D;
  const w = tf.randomNormal([2, 7, 3], 0, 1, 'float32', 3);
  const f = (conv: typeof causalLongConv) => tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(conv(a as Tensor3D, b as Tensor2D), w)))([x, h]);
  const want = f(causalLongConv);
  for (const selectionMaxT of [128, 0]) {
    const got = f((a, b) => causalLongConvToeplitz(a, b, selectionMaxT));
    got.forEach((g, i) => assert.ok(maxAbsDiff(g, want[i]!) < 1e-5, `gradient ${i} (selectionMaxT ${selectionMaxT}) differs by ${maxAbsDiff(g, want[i]!)}`));
  }
});

test('short layer (k = 3) equals conv(u) ⊙ (W u + b) + u with PyTorch tap order (last tap = current token)', () => {
  const b = buildMixer(baseConv, cfg(), 0);
  randomise(b);
  const B = 2, T = 5, d = 6;
  const u = randomInput(B, T, d, 3);
  const w = arr(b, 0, 'conv.conv.weight'), cb = arr(b, 0, 'conv.conv.bias');
  const want = reference(Float64Array.from(u.dataSync()), B, T, d, (c, tau) => (tau < 3 ? w[c * 3 + 2 - tau]! : 0), (c) => cb[c]!,
    arr(b, 0, 'projection.weight'), arr(b, 0, 'projection.bias'));
  assertClose(b.run(u), want, 1e-4, 'short BaseConv');
});

test('long layer equals ((h ∗ u) + u) ⊙ (W u + b) + u with h[c, τ] = mlp.2(ReLU(mlp.0(z_τ)))[c] (both "+ u" skips)', () => {
  const b = buildMixer(baseConv, cfg(), 1);
  randomise(b);
  const B = 2, T = 7, d = 6;
  const u = randomInput(B, T, d, 4);
  const z = Float64Array.from(b.params.get(Z).dataSync());
  const w0 = arr(b, 1, 'conv.mlp.0.weight'), b0 = arr(b, 1, 'conv.mlp.0.bias'), w2 = arr(b, 1, 'conv.mlp.2.weight'), b2 = arr(b, 1, 'conv.mlp.2.bias');
  const lag = (c: number, tau: number) => {
    let acc = b2[c]!;
    for (let j = 0; j < 16; j++) {
      let hid = b0[j]!;
      for (let e = 0; e < 3; e++) hid += w0[j * 3 + e]! * z[tau * 3 + e]!;
      acc += w2[c * 16 + j]! * Math.max(0, hid);
    }
    return acc + (tau === 0 ? 1 : 0); // fft_conv's "+ u" is a unit tap at lag 0
  };
  const want = reference(Float64Array.from(u.dataSync()), B, T, d, lag, () => 0, arr(b, 1, 'projection.weight'), arr(b, 1, 'projection.bias'));
  assertClose(b.run(u), want, 1e-4, 'long BaseConv');
  assert.throws(() => b.run(randomInput(1, 17, d)), /exceeds l_max/);
});

test('both layers are causal', () => {
  for (const layer of [0, 1]) {
    const b = buildMixer(baseConv, cfg(), layer);
    randomise(b);
    const x = randomInput(2, 8, 6, 5);
    for (const t of [0, 3, 7]) assertCausal(b, x, t);
  }
});

test('gradients match finite differences (layer 0 short, layer 1 long); the frozen z gets no gradient', () => {
  const b0 = buildMixer(baseConv, cfg(), 0);
  randomise(b0);
  gradCheck(b0, randomInput(2, 5, 6, 6));
  const b1 = buildMixer(baseConv, cfg(), 1);
  randomise(b1);
  offKinks(b1, 6);
  const x = randomInput(2, 6, 6, 7);
  gradCheck(b1, x, { skip: [Z] });
  const { grads } = tf.variableGrads(() => tf.sum(b1.run(x)) as tf.Scalar, [...b1.params.vars.values()]);
  assert.equal(grads[b1.params.get(Z).name], undefined, 'z must get no gradient (requires_grad=False)');
  assert.ok(grads[b1.params.get(P(1, 'conv.mlp.0.weight')).name]);
});

test('a loaded z is the one used: the filter reads the parameter, not a copy made at build time', () => {
  const b = buildMixer(baseConv, cfg(), 1);
  randomise(b);
  const x = randomInput(1, 4, 6, 8);
  const y0 = b.run(x);
  b.params.get(Z).assign(tf.randomNormal([1, 16, 3], 0, 1, 'float32', 9));
  assert.ok(maxAbsDiff(b.run(x), y0) > 1e-4);
});

test('conv_output site: records conv(u) and a patch replaces it (zero conv output leaves y = u)', () => {
  for (const layer of [0, 1]) {
    const b = buildMixer(baseConv, cfg(), layer);
    randomise(b);
    const B = 2, T = 4, d = 6;
    const u = randomInput(B, T, d, 10);
    let rec: Tensor3D | null = null;
    const y = b.run(u, { record: (l, site, x) => { assert.equal(l, layer); assert.equal(site, 'conv_output'); rec = tf.keep(x.clone()); } });
    assert.ok(rec);
    const proj = tf.add(tf.matMul(u.reshape([B * T, d]), b.params.get(P(layer, 'projection.weight')), false, true), b.params.get(P(layer, 'projection.bias')));
    assert.ok(maxAbsDiff(y, tf.add(tf.mul(rec!, proj.reshape([B, T, d])), u)) < 1e-5);
    const rows = Int32Array.from([0, 1, 1]), positions = Int32Array.from([2, 0, 3]);
    const patched = b.run(u, { patches: [{ layer, site: 'conv_output', rows, positions, values: tf.zeros([3, d]) }] });
    for (let i = 0; i < 3; i++) {
      const cell = (t: Tensor3D) => tf.slice(t, [rows[i]!, positions[i]!, 0], [1, 1, d]);
      assert.equal(maxAbsDiff(cell(patched), cell(u)), 0);
    }
    const same = b.run(u, { patches: [{ layer, site: 'conv_output', rows, positions, values: tf.zeros([3, d]).add(tf.stack([0, 1, 2].map((i) => tf.slice(rec!, [rows[i]!, positions[i]!, 0], [1, 1, d]).reshape([d])))) as Tensor2D }] });
    assert.equal(maxAbsDiff(same, y), 0, 'patching conv_output with its own value changes nothing');
  }
});
