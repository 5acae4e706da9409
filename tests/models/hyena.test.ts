/**
 * Hyena (src/models/hyena.ts): state-dict names and shapes, buffers and init, the whole operator against a float64
 * direct double loop (issue 4 "Hyena Toeplitz vs direct"), causality, gradients, the short_filter_output site.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { hyena, hyenaWith, modulationDeltas, positionalZ } from '../../src/models/hyena.ts';
import type { MixerFactory } from '../../src/models/mixer.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { SiteName } from '../../src/models/sites.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const fixture = JSON.parse(readFileSync(new URL('./fixtures/tinylang-state-dict.json', import.meta.url), 'utf8')) as {
  config: { d_model: number; n_positions: number };
  keys: Record<string, [string, number[]][]>;
};
const cfg = (over: Partial<ModelConfig> = {}): ModelConfig => ({ mixer: 'hyena', d_model: 4, n_layers: 2, vocab_size: 5, n_positions: 16, hyena_filter_order: 8, ...over });
const P = (name: string) => `backbone.layers.0.sequence_mixer.${name}`;
const BUFFERS = [P('filter_fn.pos_emb.t'), P('filter_fn.modulation.deltas')];
const arr = (b: Built, name: string) => Float64Array.from(b.params.get(P(name)).dataSync());

/** Non-trivial values everywhere except the buffers: N(0, 0.5) weights (the init filter is ~1e-4), jittered z and freq. */
function randomise(b: Built, seed = 30): void {
  let k = 0;
  for (const [name, v] of b.params.vars) {
    if (BUFFERS.includes(name)) continue;
    const noise = tf.randomNormal(v.shape, 0, name.endsWith('pos_emb.z') ? 0.1 : 0.5, 'float32', seed + k++);
    v.assign(name.endsWith('pos_emb.z') || name.endsWith('.freq') ? tf.add(v, noise) : noise);
  }
}

/** The operator in float64, straight from the equations, with the long conv as a direct double loop over (t, s ≤ t). */
function direct(b: Built, u: Float64Array, B: number, T: number, filterBias: boolean): Float64Array {
  const d = b.cfg.d_model, O = b.cfg.hyena_filter_order;
  const A = (n: string) => arr(b, n), F = (n: string) => arr(b, `filter_fn.${n}`);
  const inW = A('in_proj.weight'), inB = A('in_proj.bias'), outW = A('out_proj.weight'), outB = A('out_proj.bias');
  const sfW = A('short_filter.weight'), sfB = A('short_filter.bias'), D = F('bias'), z = F('pos_emb.z'), t = F('pos_emb.t');
  const w0 = F('implicit_filter.0.weight'), b0 = F('implicit_filter.0.bias'), freq = F('implicit_filter.1.freq');
  const w2 = F('implicit_filter.2.weight'), b2 = F('implicit_filter.2.bias'), w4 = F('implicit_filter.4.weight');
  const b4 = F('implicit_filter.4.bias'), w6 = F('implicit_filter.6.weight'), deltas = F('modulation.deltas');
  const dense = (W: Float64Array, bias: Float64Array | null, x: ArrayLike<number>, nIn: number, nOut: number) =>
    Float64Array.from({ length: nOut }, (_, o) => { let s = bias ? bias[o]! : 0; for (let j = 0; j < nIn; j++) s += W[o * nIn + j]! * x[j]!; return s; });
  const sin = (x: Float64Array) => x.map((v, i) => Math.sin(freq[i]! * v));
  // h[l][c] for l < T: MLP(z_l)·exp(−t_l·|δ_c|)
  const h: Float64Array[] = [];
  for (let l = 0; l < T; l++) {
    let a = sin(dense(w0, b0, z.subarray(3 * l, 3 * l + 3), 3, O));
    a = sin(dense(w2, b2, a, O, O));
    a = sin(dense(w4, b4, a, O, O));
    h.push(dense(w6, null, a, O, d).map((v, c) => v * Math.exp(-t[l]! * Math.abs(deltas[c]!))));
  }
  const out = new Float64Array(B * T * d);
  for (let bi = 0; bi < B; bi++) {
    const proj = Array.from({ length: T }, (_, s) => dense(inW, inB, u.subarray((bi * T + s) * d, (bi * T + s + 1) * d), d, 3 * d));
    const uc = Array.from({ length: T }, (_, s) => Float64Array.from({ length: 3 * d }, (_, c) => {
      let y = sfB[c]!;
      for (let k = 0; k < 3; k++) { const src = s - 2 + k; if (src >= 0) y += sfW[c * 3 + k]! * proj[src]![c]!; }
      return y;
    }));
    for (let s = 0; s < T; s++) {
      const y = new Float64Array(d);
      for (let c = 0; c < d; c++) {
        let acc = filterBias ? D[c]! * uc[s]![2 * d + c]! * uc[s]![c]! : 0;
        for (let r = 0; r <= s; r++) acc += h[s - r]![c]! * uc[r]![2 * d + c]! * uc[r]![c]!; // (v·x1) at r, lag s − r
        y[c] = acc * uc[s]![d + c]!; // ·x2
      }
      out.set(dense(outW, outB, y, d, d), (bi * T + s) * d);
    }
  }
  return out;
}

test('parameter names, shapes and order equal state-dict.md §5.5 (tinylang fixture, d = 16, l_max = 24), .3/.5.freq being aliases', () => {
  const { d_model, n_positions } = fixture.config;
  const b = buildMixer(hyena, { mixer: 'hyena', d_model, n_layers: 2, vocab_size: 37, n_positions });
  const want = fixture.keys['hyena']!.filter(([n]) => n.startsWith('backbone.layers.0.sequence_mixer.') && !/implicit_filter\.[35]\.freq$/.test(n));
  assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), want);
  assert.equal(want.length, 18);
  b.params.dispose();
});

test('buffers and init: t = linspace(0, 1, l_max), deltas, z = [t, cos, −sin], freq = 1, Linear N(0, 0.02), out_proj N(0, 0.02/√(2n))', () => {
  const L = 24, d = 16;
  const b = buildMixer(hyena, cfg({ d_model: d, n_positions: L, hyena_filter_order: 64, n_layers: 2 }));
  const t = arr(b, 'filter_fn.pos_emb.t');
  for (let l = 0; l < L; l++) assert.ok(Math.abs(t[l]! - l / (L - 1)) < 1e-7);
  const dl = arr(b, 'filter_fn.modulation.deltas');
  assert.ok(Math.abs(dl[0]! - Math.log(1e-2) / 1.5) < 1e-6 && Math.abs(dl[d - 1]! - Math.log(1e-2) / 0.3) < 1e-5);
  assert.deepEqual(Array.from(dl), Array.from(modulationDeltas(d)));
  const z = arr(b, 'filter_fn.pos_emb.z');
  assert.deepEqual(Array.from(z), Array.from(positionalZ(L)));
  assert.equal(z[3 * 5], t[5]); // z[..., 0] is t
  assert.ok(z[3 * (L - 1) + 1]! < 1 && z[3 * (L - 1) + 2]! < 0);
  assert.ok(arr(b, 'filter_fn.implicit_filter.1.freq').every((x) => x === 1));
  const std = (n: string) => { const w = arr(b, n); return Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length); };
  for (const n of ['in_proj.weight', 'filter_fn.implicit_filter.0.weight', 'filter_fn.implicit_filter.2.weight', 'filter_fn.implicit_filter.6.weight']) {
    assert.ok(std(n) > 0.014 && std(n) < 0.026, `${n} std ${std(n)}`);
  }
  assert.ok(std('out_proj.weight') > 0.007 && std('out_proj.weight') < 0.013, `out_proj std ${std('out_proj.weight')} (0.01 expected)`);
  for (const n of ['in_proj.bias', 'out_proj.bias', 'filter_fn.implicit_filter.0.bias']) assert.ok(arr(b, n).every((x) => x === 0));
  assert.ok(arr(b, 'short_filter.weight').every((x) => Math.abs(x) <= 1 / Math.sqrt(3)));
  b.params.dispose();
});

for (const [label, factory, filterBias] of [['tinylang, bias=False', hyena, false], ['zoology default, bias=True', hyenaWith({ filterBias: true }), true]] as [string, MixerFactory, boolean][]) {
  test(`Toeplitz vs direct: the operator equals a float64 direct double loop (${label}; T = 13 < l_max = 20)`, () => {
    const b = buildMixer(factory, cfg({ n_positions: 20 }));
    randomise(b);
    const B = 2, T = 13;
    const x = randomInput(B, T, 4, 5);
    const want = direct(b, Float64Array.from(x.dataSync()), B, T, filterBias);
    const got = b.run(x).dataSync();
    let err = 0, scale = 0;
    for (let i = 0; i < want.length; i++) { err = Math.max(err, Math.abs(got[i]! - want[i]!)); scale = Math.max(scale, Math.abs(want[i]!)); }
    assert.ok(scale > 0.1, `reference output is degenerate (max ${scale})`);
    assert.ok(err / scale < 2e-5, `relative error ${err / scale}`);
    b.params.dispose();
  });
}

test('causal: changing the input at t changes no output before t (exactly), and some output at or after t', () => {
  const b = buildMixer(hyena, cfg());
  randomise(b);
  const x = randomInput(2, 9, 4, 3);
  for (const t of [0, 4, 8]) assertCausal(b, x, t);
  b.params.dispose();
});

test('gradients match finite differences; buffers get none; tinylang\'s filter_fn.bias gets exactly zero (0·bias)', () => {
  for (const [factory, zeroBias] of [[hyena, true], [hyenaWith({ filterBias: true }), false]] as [MixerFactory, boolean][]) {
    const b = buildMixer(factory, cfg());
    randomise(b, 60);
    const x = randomInput(2, 6, 4, 9);
    gradCheck(b, x, { skip: BUFFERS });
    const vars = [...b.params.vars.values()];
    const w = tf.randomNormal([2, 6, 4], 0, 1, 'float32', 11);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(b.run(x), w)) as tf.Scalar, vars);
    for (const n of BUFFERS) assert.equal(grads[b.params.get(n).name], undefined, `${n} is a buffer but gets a gradient`);
    const gD = grads[b.params.get(P('filter_fn.bias')).name]!.dataSync();
    assert.equal(gD.every((g) => g === 0), zeroBias);
    b.params.dispose();
  }
});

test('site short_filter_output: (B, T, 3d), recorded once, and its (possibly patched) value is what the operator uses', () => {
  const b = buildMixer(hyena, cfg());
  randomise(b);
  const B = 2, T = 7, d = 4;
  const x = randomInput(B, T, d, 2);
  const seen: [SiteName, Tensor3D][] = [];
  const y0 = b.run(x, { record: (_l, site, t) => seen.push([site, tf.keep(t.clone())]) }).dataSync();
  assert.deepEqual(seen.map(([s, t]) => [s, t.shape]), [['short_filter_output', [B, T, 3 * d]]]);
  const y1 = b.run(x, { patches: [{ layer: 0, site: 'short_filter_output', rows: Int32Array.from([1]), positions: Int32Array.from([3]), values: tf.zeros([1, 3 * d]) }] }).dataSync();
  for (let bi = 0; bi < B; bi++) for (let t = 0; t < T; t++) {
    let diff = 0;
    for (let c = 0; c < d; c++) diff = Math.max(diff, Math.abs(y1[(bi * T + t) * d + c]! - y0[(bi * T + t) * d + c]!));
    if (bi === 1 && t >= 3) assert.ok(diff > 0, `patch had no effect at (1, ${t})`);
    else assert.equal(diff, 0, `patch leaked to (${bi}, ${t})`);
  }
  b.params.dispose();
});

test('sequence longer than l_max = n_positions is refused', () => {
  const b = buildMixer(hyena, cfg({ n_positions: 8 }));
  assert.throws(() => b.run(randomInput(1, 9, 4, 1)), /exceeds l_max/);
  b.params.dispose();
});
