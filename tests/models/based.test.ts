import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { based, isTaylorLinearAttention, taylorAttention, taylorFeatures, type TaylorLinearAttention } from '../../src/models/based.ts';
import { mixerCounts } from '../../src/models/count.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const fixture = JSON.parse(readFileSync(new URL('./fixtures/tinylang-state-dict.json', import.meta.url), 'utf8')) as {
  config: { d_model: number; vocab_size: number; n_positions: number };
  keys: Record<string, [string, number[]][]>;
};
const maxAbsDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const cfg = (over: Partial<ModelConfig> = {}): ModelConfig => ({ mixer: 'based', d_model: 6, n_layers: 2, vocab_size: 5, n_positions: 16, feature_dim: 4, ...over });
const P = (layer: number, name: string) => `backbone.layers.${layer}.sequence_mixer.mixer.${name}`;

/** Every parameter drawn from N(0, std): larger than the init's 0.02, so σ = q·k/√F is O(1) and the pattern is sharp. */
function randomise(b: Built, std = 0.6, seed = 60): void {
  let k = 0;
  for (const v of b.params.vars.values()) v.assign(tf.randomNormal(v.shape, 0, std, 'float32', seed + k++));
}
function attentionLayer(over: Partial<ModelConfig> = {}): { b: Built; m: TaylorLinearAttention } {
  const b = buildMixer(based, cfg(over), 1);
  assert.ok(isTaylorLinearAttention(b.mixer));
  randomise(b);
  return { b, m: b.mixer };
}

test('parameter names and shapes equal state-dict.md (tinylang based: Hybrid adds `mixer.`; BaseConv k=3, then proj_q/k/v/o)', () => {
  const { d_model, vocab_size, n_positions } = fixture.config;
  for (const layer of [0, 1]) {
    const b = buildMixer(based, { mixer: 'based', d_model, vocab_size, n_positions, n_layers: 2 }, layer);
    const want = fixture.keys['based']!.filter(([n]) => n.startsWith(`backbone.layers.${layer}.sequence_mixer.`));
    assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), want);
    assert.equal(b.params.count(), mixerCounts(b.cfg, layer).params);
  }
  assert.equal(buildMixer(based, { mixer: 'based', d_model: 64, vocab_size, n_layers: 2 }, 1).params.count(), 9216); // architectures.md §8
});

test('layer i builds configs[i mod 2]: a 3-layer based is [BaseConv, Based, BaseConv]; d_conv sets the BaseConv width', () => {
  const names = (b: Built) => [...b.params.vars.keys()].map((n) => n.replace(/^backbone\.layers\.\d\.sequence_mixer\.mixer\./, ''));
  assert.deepEqual(names(buildMixer(based, cfg({ n_layers: 3 }), 2)), ['projection.weight', 'projection.bias', 'conv.conv.weight', 'conv.conv.bias']);
  assert.ok(!isTaylorLinearAttention(buildMixer(based, cfg(), 0).mixer));
  assert.deepEqual(buildMixer(based, cfg({ d_conv: 2 }), 0).params.get(P(0, 'conv.conv.weight')).shape, [6, 1, 2]);
});

test('d_conv −1 is based_long_only: layer 0 is the implicit long conv (state-dict.md §5.3), layer 1 unchanged', () => {
  const names = (b: Built) => [...b.params.vars.keys()].map((n) => n.replace(/^backbone\.layers\.\d\.sequence_mixer\.mixer\./, ''));
  const long = names(buildMixer(based, cfg({ d_conv: -1 }), 0));
  assert.ok(long.some((n) => n.startsWith('conv.mlp.')) && !long.includes('conv.conv.weight'), long.join(', '));
  assert.deepEqual(names(buildMixer(based, cfg({ d_conv: -1 }), 1)), names(buildMixer(based, cfg(), 1)));
  // Only BaseConv layers can build a long conv: any other mixer rejects −1 by name.
  assert.throws(() => buildMixer(based, cfg({ mixer: 'mamba', d_conv: -1 }), 0), /d_conv = -1 .* not for mamba/);
});

test('init: proj_q/k/v/o ~ N(0, 0.02) (proj_o is not rescaled like out_proj)', () => {
  const b = buildMixer(based, cfg({ d_model: 64, feature_dim: 8 }), 1);
  const std = (name: string) => tf.tidy(() => Math.sqrt(tf.moments(b.params.get(P(1, name))).variance.dataSync()[0]!));
  for (const name of ['proj_v.weight', 'proj_o.weight']) assert.ok(Math.abs(std(name) / 0.02 - 1) < 0.05, name);
  for (const name of ['proj_q.weight', 'proj_k.weight']) assert.ok(Math.abs(std(name) / 0.02 - 1) < 0.1, name);
});

test('Taylor feature map: 1 + F + F² features with φ(q)·φ(k) = 1 + σ + σ²/2, σ = q·k/√F (architectures.md §11)', () => {
  const F = 8;
  const q = tf.randomNormal([5, F], 0, 1, 'float32', 1), k = tf.randomNormal([5, F], 0, 1, 'float32', 2);
  const [fq, fk] = [taylorFeatures(q), taylorFeatures(k)];
  assert.deepEqual(fq.shape, [5, 1 + F + F * F]);
  const dot = tf.sum(tf.mul(fq, fk), 1);
  const sigma = tf.div(tf.sum(tf.mul(q, k), 1), Math.sqrt(F));
  assert.ok(maxAbsDiff(dot, tf.add(tf.add(1, sigma), tf.div(tf.square(sigma), 2))) < 1e-5);
  // layout as zoology: [1, x/F^¼, (x_m x_n)/(√2·√F) in row-major (m, n) order]
  const f = taylorFeatures(tf.tensor2d([[1, 2]])).dataSync();
  const r = 2 ** 0.25, c = 1 / (Math.SQRT2 * Math.SQRT2);
  [1, 1 / r, 2 / r, 1 * c, 2 * c, 2 * c, 4 * c].forEach((v, i) => assert.ok(Math.abs(f[i]! - v) < 1e-6, `feature ${i}`));
});

test('quadratic form equals the float64 formula y_t = Σ_{s≤t} a_ts v_s / (Σ_{s≤t} a_ts + ε), a = 1 + σ + σ²/2, then proj_o', () => {
  const { b } = attentionLayer();
  const B = 2, T = 5, d = 6, F = 4;
  const x = randomInput(B, T, d, 3);
  const xs = x.dataSync();
  const W = (n: string) => b.params.get(P(1, n)).dataSync();
  const [Wq, Wk, Wv, Wo] = ['proj_q.weight', 'proj_k.weight', 'proj_v.weight', 'proj_o.weight'].map(W) as Float32Array[];
  const proj = (Wm: Float32Array, out: number, bt: number) => Array.from({ length: out }, (_, o) => {
    let acc = 0;
    for (let j = 0; j < d; j++) acc += Wm[o * d + j]! * xs[bt * d + j]!;
    return acc;
  });
  const want: number[] = [];
  for (let bb = 0; bb < B; bb++) for (let t = 0; t < T; t++) {
    const q = proj(Wq!, F, bb * T + t);
    const num = new Array<number>(d).fill(0);
    let den = 0;
    for (let s = 0; s <= t; s++) {
      const k = proj(Wk!, F, bb * T + s), v = proj(Wv!, d, bb * T + s);
      const sigma = q.reduce((a, qi, i) => a + qi * k[i]!, 0) / Math.sqrt(F);
      const a = 1 + sigma + sigma * sigma / 2;
      den += a;
      for (let c = 0; c < d; c++) num[c]! += a * v[c]!;
    }
    const y = num.map((n) => n / (den + 1e-12));
    for (let o = 0; o < d; o++) want.push(y.reduce((acc, yc, c) => acc + Wo![o * d + c]! * yc, 0));
  }
  const got = b.run(x).dataSync();
  const err = Math.max(...want.map((w, i) => Math.abs(w - got[i]!)));
  assert.ok(err < 1e-4, `max |Δ| = ${err}`);
});

test('Based quadratic vs recurrent (issue 4): the masked quadratic form equals the running-state form (S_t, z_t)', () => {
  for (const F of [4, 8]) {
    const { b, m } = attentionLayer({ feature_dim: F });
    const x = randomInput(3, 9, 6, 4);
    const quad = b.run(x);
    const states: number[] = [];
    const rec = m.forwardRecurrent(x, (t, S, z) => {
      assert.deepEqual(S.shape, [3, 1 + F + F * F, 6]);
      states.push(t, z.slice([0, 0], [1, 1]).dataSync()[0]!); // z's constant feature counts the tokens seen
    });
    const scale = tf.max(tf.abs(quad)).dataSync()[0]!;
    assert.ok(maxAbsDiff(quad, rec) < 1e-5 * Math.max(1, scale), `F=${F}: differs by ${maxAbsDiff(quad, rec)} (scale ${scale})`);
    assert.deepEqual(states, Array.from({ length: 9 }, (_, t) => [t, t + 1]).flat());
  }
});

test('taylorAttention: a hand-computed case (T = 2, F = 1): row 0 copies v_0, row 1 mixes v_0 and v_1 with weights 1 + σ + σ²/2', () => {
  const q = tf.tensor3d([[[0.5], [2]]]), k = tf.tensor3d([[[1], [-1]]]), v = tf.tensor3d([[[3, 1], [-1, 5]]]);
  const w = (s: number) => 1 + s + s * s / 2; // σ = q·k/√1
  const [a0, a1] = [w(2 * 1), w(2 * -1)];
  const want = [3, 1, (a0 * 3 + a1 * -1) / (a0 + a1), (a0 * 1 + a1 * 5) / (a0 + a1)];
  Array.from(taylorAttention(q, k, v).dataSync()).forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-6, `${i}: ${g} vs ${want[i]}`));
});

test('both layers are causal', () => {
  for (const layer of [0, 1]) {
    const b = buildMixer(based, cfg(), layer);
    randomise(b);
    const x = randomInput(2, 8, 6, 5);
    for (const t of [0, 3, 7]) assertCausal(b, x, t);
  }
});

test('gradients match finite differences (layer 0 BaseConv, layer 1 linear attention)', () => {
  for (const layer of [0, 1]) {
    const b = buildMixer(based, cfg(), layer);
    randomise(b, 0.4);
    gradCheck(b, randomInput(2, 5, 6, 6 + layer));
  }
});

test('conv_output site of the BaseConv layer goes through ctx.site (the linear-attention layer has none)', () => {
  const seen: string[] = [];
  for (const layer of [0, 1]) buildMixer(based, cfg(), layer).run(randomInput(1, 3, 6), { record: (l, s) => seen.push(`${l}:${s}`) });
  assert.deepEqual(seen, ['0:conv_output']);
});

test('sequences of a batch are independent: changing one leaves the others bit-identical', () => {
  const { b } = attentionLayer();
  const x = randomInput(4, 6, 6, 8);
  const y = b.run(x);
  // Change sequence 1 entirely: sequences 0, 2, 3 must not change.
  const x2 = tf.concat([tf.slice(x, [0, 0, 0], [1, 6, 6]), randomInput(1, 6, 6, 9), tf.slice(x, [2, 0, 0], [2, 6, 6])], 0) as Tensor3D;
  const y2 = b.run(x2);
  for (const s of [0, 2, 3]) assert.equal(maxAbsDiff(tf.slice(y, [s, 0, 0], [1, 6, 6]), tf.slice(y2, [s, 0, 0], [1, 6, 6])), 0, `sequence ${s}`);
});
