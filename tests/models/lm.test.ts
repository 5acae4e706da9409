import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { MIXER_KINDS, mixerFactory, registeredMixers } from '../../src/models/mixers.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const maxAbsDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const ids = (B: number, T: number, V: number, seed = 1) => Int32Array.from({ length: B * T }, (_, i) => (i * 7 + seed * 13) % V);

test('logitsAt equals the full tied head h·Eᵀ at the requested cells', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 11, pos_emb: true, n_positions: 16 });
  const B = 3, T = 5;
  const h = lm.forward({ ids: ids(B, T, 11), batch: B, time: T });
  assert.deepEqual(h.shape, [B, T, 8]);
  const rows = Int32Array.from([2, 0, 1, 2]), pos = Int32Array.from([4, 0, 3, 1]);
  const got = lm.logitsAt(h, rows, pos);
  assert.deepEqual(got.shape, [4, 11]);
  const full = tf.matMul(h.reshape([B * T, 8]), lm.embedding, false, true); // (B·T, V)
  const want = tf.gather(full, tf.tensor1d(Array.from(rows, (r, i) => r * T + pos[i]!), 'int32'));
  assert.ok(maxAbsDiff(got, want) < 1e-6);
});

test('the head is tied: the loss gradient reaches the embedding through both the lookup and the head', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 1, vocab_size: 11 });
  const B = 2, T = 4;
  const x = Int32Array.from([1, 2, 3, 4, 1, 2, 3, 4]);
  const { grads } = tf.variableGrads(() => tf.sum(lm.logitsAt(lm.forward({ ids: x, batch: B, time: T }), Int32Array.from([0, 1]), Int32Array.from([3, 3]))) as tf.Scalar);
  const g = grads[lm.embedding.name]!.arraySync() as number[][];
  // Row 9 never appears as an input token, so its gradient comes from the head alone: non-zero means the head is E.
  assert.ok(g[9]!.some((v) => v !== 0), 'no head gradient on an unused token row');
});

test('ln_f is applied to the last block output: (r − mean)/√(var + 1e-5), weight 1, bias 0', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 16, n_layers: 2, vocab_size: 11 });
  let r: Tensor | null = null;
  const h = lm.forward({ ids: ids(2, 6, 11), batch: 2, time: 6, hooks: { record: (l, s, x) => { if (l === 1 && s === 'block_output') r = tf.keep(x.clone()); } } });
  const { mean, variance } = tf.moments(r!, 2, true);
  const want = tf.div(tf.sub(r!, mean), tf.sqrt(tf.add(variance, 1e-5)));
  assert.ok(maxAbsDiff(h, want) < 1e-4, `differs by ${maxAbsDiff(h, want)}`);
});

test('position embeddings: without them, a sequence of one repeated token gives the same state at every position', () => {
  const T = 6, same = new Int32Array(T).fill(3);
  const nope = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 11, pos_emb: false });
  const h0 = nope.forward({ ids: same, batch: 1, time: T });
  assert.ok(maxAbsDiff(h0, tf.tile(tf.slice(h0, [0, 0, 0], [1, 1, 8]), [1, T, 1])) < 1e-6);
  const pe = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 11, pos_emb: true, n_positions: 8 });
  const h1 = pe.forward({ ids: same, batch: 1, time: T });
  assert.ok(maxAbsDiff(h1, tf.tile(tf.slice(h1, [0, 0, 0], [1, 1, 8]), [1, T, 1])) > 1e-3);
  assert.throws(() => pe.forward({ ids: new Int32Array(9).fill(1), batch: 1, time: 9 }), /9 tokens, but n_positions is 8/);
});

test('forward and logitsAt reject bad input with messages that name it', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 1, vocab_size: 11 });
  assert.throws(() => lm.forward({ ids: Int32Array.from([1, 11]), batch: 1, time: 2 }), /token id 11 at \(0, 1\) is outside \[0, 11\)/);
  assert.throws(() => lm.forward({ ids: Int32Array.from([1, 2, 3]), batch: 2, time: 2 }), /3 ids for batch 2 × time 2/);
  const h = lm.forward({ ids: Int32Array.from([1, 2]), batch: 1, time: 2 });
  assert.throws(() => lm.logitsAt(h, Int32Array.from([0]), Int32Array.from([2])), /cell \(0, 2\) is outside \(1, 2\)/);
  assert.throws(() => new LanguageModel({ mixer: 'nope' as 'h3', d_model: 8, n_layers: 1, vocab_size: 11 }), /unknown mixer 'nope'/);
});

test('init (architectures.md §1.6): embeddings N(0, 0.02), fc2/out_proj N(0, 0.02/√(2n)), norms 1 and 0', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 64, n_layers: 3, vocab_size: 500, pos_emb: true, n_positions: 64 });
  const std = (n: string) => Math.sqrt(tf.moments(lm.params.get(n)).variance.dataSync()[0]!);
  const near = (a: number, b: number) => Math.abs(a / b - 1) < 0.05;
  assert.ok(near(std('backbone.embeddings.word_embeddings.weight'), 0.02));
  assert.ok(near(std('backbone.embeddings.position_embeddings.weight'), 0.02));
  assert.ok(near(std('backbone.layers.1.state_mixer.fc1.weight'), 0.02));
  assert.ok(near(std('backbone.layers.1.state_mixer.fc2.weight'), 0.02 / Math.sqrt(6)));
  for (const [n, v] of lm.params.vars) {
    const vals = Array.from(v.dataSync());
    if (/norm\d?\.weight$|ln_f\.weight$/.test(n)) assert.ok(vals.every((x) => x === 1), n);
    if (/\.bias$/.test(n)) assert.ok(vals.every((x) => x === 0), n);
  }
});

test('the same seed gives the same weights; another seed different ones', () => {
  const cfg = { mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 11 } as const;
  const a = new LanguageModel({ ...cfg, seed: 3 }), b = new LanguageModel({ ...cfg, seed: 3 }), c = new LanguageModel({ ...cfg, seed: 4 });
  for (const [n, v] of a.params.vars) {
    assert.equal(maxAbsDiff(v, b.params.get(n)), 0, n);
    if (n.endsWith('Wqkv.weight')) assert.ok(maxAbsDiff(v, c.params.get(n)) > 0, n);
  }
});

test('block-level sites are recorded in order, per layer, with (B, T, d) tensors (MLP sites only in TransformerBlocks)', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 11 });
  const seen: string[] = [];
  lm.forward({ ids: ids(2, 3, 11), batch: 2, time: 3, hooks: { record: (l, s, x) => { assert.deepEqual(x.shape, [2, 3, 8]); seen.push(`${l}:${s}`); } } });
  const order = ['block_input', 'mixer_input', 'mixer_output', 'mlp_input', 'mlp_output', 'block_output'];
  assert.deepEqual(seen, [...order.map((s) => `0:${s}`), ...order.map((s) => `1:${s}`)]);
});

test('mixer registry: every kind either builds or fails with a clear "not implemented yet" message', () => {
  assert.ok(registeredMixers().includes('attention'));
  for (const k of MIXER_KINDS) {
    if (registeredMixers().includes(k)) assert.equal(typeof mixerFactory(k), 'function');
    else assert.throws(() => mixerFactory(k), new RegExp(`mixer '${k}' is not implemented yet`));
  }
});
