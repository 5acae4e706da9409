import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { registeredMixers } from '../../src/models/mixers.ts';
import type { MixerKind } from '../../src/models/config.ts';
import { CHECKPOINT_FILE, loadCheckpoint, loadStateDict, readCheckpointConfig, saveCheckpoint, stateDict, stateDictEntries } from '../../src/models/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

interface Fixture { config: { d_model: number; vocab_size: number; n_positions: number; n_layers: number; pos_emb: boolean; delta_heads: number }; keys: Record<string, [string, number[]][]> }
const fixture = JSON.parse(readFileSync(new URL('./fixtures/tinylang-state-dict.json', import.meta.url), 'utf8')) as Fixture;
const fixtureModel = (mixer: MixerKind) => new LanguageModel({ mixer, ...fixture.config });
const dir = mkdtempSync(join(tmpdir(), 'mecheval-ckpt-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

for (const mixer of registeredMixers()) {
  test(`${mixer}: state-dict keys, order and shapes equal the tinylang list (state-dict.md §6.1, fixture at d=16, V=37, P=24)`, () => {
    const lm = fixtureModel(mixer);
    const got = stateDictEntries(lm).map((e) => [e.name, e.shape]);
    assert.deepEqual(got, fixture.keys[mixer]);
    lm.dispose();
  });

  test(`${mixer}: save → load round trip is bit-exact, and the loaded model computes the same function`, () => {
    const lm = fixtureModel(mixer);
    // Move every value off its init so a loader that re-initialises instead of loading cannot pass.
    for (const v of lm.params.vars.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 5)));
    const path = join(dir, `${mixer}-${CHECKPOINT_FILE}`);
    saveCheckpoint(lm, path);
    const back = loadCheckpoint(path);
    assert.deepEqual(back.cfg, lm.cfg);
    for (const [n, v] of lm.params.vars) {
      assert.deepEqual(Buffer.from((back.params.get(n).dataSync() as Float32Array).buffer), Buffer.from((v.dataSync() as Float32Array).buffer), n);
    }
    const ids = Int32Array.from({ length: 2 * 7 }, (_, i) => (i * 5) % fixture.config.vocab_size);
    const a = lm.forward({ ids, batch: 2, time: 7 }).dataSync(), b = back.forward({ ids, batch: 2, time: 7 }).dataSync();
    assert.deepEqual(Array.from(b), Array.from(a));
    lm.dispose(); back.dispose();
  });
}

test('tinylang variants (state-dict.md §6.1): NoPE drops the position table; d_conv = k resizes the short convs', () => {
  const keysOf = (cfg: Partial<Fixture['config']> & { mixer: MixerKind; d_conv?: number }) => {
    const lm = new LanguageModel({ ...fixture.config, ...cfg });
    const out = stateDictEntries(lm).map((e) => [e.name, e.shape] as [string, number[]]);
    lm.dispose();
    return out;
  };
  const d = fixture.config.d_model;
  const withShapes = (mixer: string, change: (name: string, shape: number[]) => number[] | null) =>
    fixture.keys[mixer]!.flatMap(([n, s]) => { const t = change(n, s); return t ? [[n, t] as [string, number[]]] : []; });
  // ar_32_nope: key 1 (position_embeddings) is absent, nothing else changes.
  for (const mixer of registeredMixers()) {
    assert.deepEqual(keysOf({ mixer, pos_emb: false }), withShapes(mixer, (n, s) => (n.includes('position_embeddings') ? null : s)), mixer);
  }
  // mamba d_conv ∈ {1, 2, 3}: conv1d.weight [2d, 1, k]; d_conv = 0 (MambaWithoutConv) keeps conv1d with width 4.
  for (const k of [0, 1, 2, 3]) {
    assert.deepEqual(keysOf({ mixer: 'mamba', d_conv: k }), withShapes('mamba', (n, s) => (n.endsWith('conv1d.weight') ? [2 * d, 1, k === 0 ? 4 : k] : s)), `mamba d_conv=${k}`);
  }
  // based (ar_32_based_ablation2) d_conv = k: layer 0's conv.conv.weight is [d, 1, k].
  assert.deepEqual(keysOf({ mixer: 'based', d_conv: 2 }), withShapes('based', (n, s) => (n.endsWith('conv.conv.weight') ? [d, 1, 2] : s)));
  // base_conv d_conv = k: both layers become the short-conv form.
  const bc = keysOf({ mixer: 'base_conv', d_conv: 2 });
  const short = fixture.keys.base_conv!.filter(([n]) => n.startsWith('backbone.layers.0.sequence_mixer.'));
  assert.deepEqual(bc.filter(([n]) => n.startsWith('backbone.layers.1.sequence_mixer.')),
    short.map(([n, s]) => [n.replace('layers.0', 'layers.1'), n.endsWith('conv.conv.weight') ? [d, 1, 2] : s]));
});

test('the file: sorted safetensors, F32, lm_head.weight a copy of the embedding, config metadata with the required fields', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 13, n_positions: 10, pos_emb: true });
  const path = join(dir, 'attn.safetensors');
  saveCheckpoint(lm, path);
  const { tensors, metadata } = readSafetensors(path);
  assert.deepEqual(Object.keys(tensors).sort(), stateDictEntries(lm).map((e) => e.name).sort());
  assert.ok(Object.values(tensors).every((t) => t.dtype === 'F32'));
  assert.deepEqual(Array.from(tensors['lm_head.weight']!.data as Float32Array), Array.from(tensors['backbone.embeddings.word_embeddings.weight']!.data as Float32Array));
  assert.equal(metadata.format, 'pt');
  const cfg = JSON.parse(metadata.config!) as Record<string, unknown>;
  for (const k of ['mixer', 'd_model', 'n_layers', 'n_heads', 'vocab_size', 'n_positions', 'pos_emb', 'd_conv']) assert.ok(k in cfg, `config lacks ${k}`);
  assert.equal(cfg.mixer, 'attention');
  assert.equal(cfg.pos_emb, true);
  assert.equal(cfg.d_conv, null);
  assert.deepEqual(readCheckpointConfig(path), lm.cfg);
});

test('loading is strict: missing, unexpected, mis-shaped and mis-typed keys are refused, naming the key', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 8, n_layers: 2, vocab_size: 13 });
  const sd = () => stateDict(lm);
  const drop = sd(); delete drop['lm_head.weight'];
  assert.throws(() => loadStateDict(lm, drop), /missing key\(s\): 'lm_head\.weight'/);
  const extra = sd(); extra['backbone.layers.0.sequence_mixer.Wqkv.bias'] = { dtype: 'F32', shape: [24], data: new Float32Array(24) };
  assert.throws(() => loadStateDict(lm, extra), /unexpected key\(s\): 'backbone\.layers\.0\.sequence_mixer\.Wqkv\.bias'/);
  const shape = sd(); shape['backbone.layers.1.state_mixer.fc1.weight'] = { dtype: 'F32', shape: [8, 32], data: new Float32Array(256) };
  assert.throws(() => loadStateDict(lm, shape), /size mismatch for 'backbone\.layers\.1\.state_mixer\.fc1\.weight': the checkpoint has \[8,32\], the model .* has \[32,8\]/);
  const dtype = sd(); dtype['backbone.ln_f.bias'] = { dtype: 'I32', shape: [8], data: new Int32Array(8) };
  assert.throws(() => loadStateDict(lm, dtype), /'backbone\.ln_f\.bias' has dtype I32/);
});

test('aliases: like PyTorch, the later key (lm_head.weight) wins over the embedding key', () => {
  const lm = new LanguageModel({ mixer: 'attention', d_model: 4, n_layers: 1, vocab_size: 5 });
  const sd = stateDict(lm);
  sd['lm_head.weight'] = { dtype: 'F32', shape: [5, 4], data: new Float32Array(20).fill(0.5) };
  loadStateDict(lm, sd);
  assert.ok(Array.from(lm.embedding.dataSync()).every((v) => v === 0.5));
});

test('a file without config metadata is refused with a clear message', () => {
  const path = join(dir, 'bare.safetensors');
  const lm = new LanguageModel({ mixer: 'attention', d_model: 4, n_layers: 1, vocab_size: 5 });
  writeSafetensors(path, stateDict(lm));
  assert.throws(() => loadCheckpoint(path), /no __metadata__\.config; not a mecheval model checkpoint/);
});
