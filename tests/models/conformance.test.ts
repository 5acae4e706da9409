/**
 * One conformance suite for every registered mixer (style.md §4.6), run through the whole language model:
 * causality, identity patches at every site, cell-local patches, backend agreement (cpu here, wasm in a child
 * process), gradients for every parameter, and parameter counts against the formulas of state-dict.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tf, type Tensor, type Tensor3D } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { registeredMixers, MIXER_KINDS } from '../../src/models/mixers.ts';
import { resolveModelConfig, type MixerKind, type ModelConfig } from '../../src/models/config.ts';
import { stateDictEntries } from '../../src/models/checkpoint.ts';
import { BUFFER_KEY, modelCounts } from '../../src/models/count.ts';
import type { Patch, SiteName } from '../../src/models/sites.ts';
import { probe, PROBE_B, PROBE_T, type ProbeResult } from './lm-probe.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

/** Mixer-internal sites each mixer must expose (issue 4), somewhere in its layers. */
const MIXER_SITES_OF: Record<MixerKind, SiteName[]> = {
  attention: [], h3: [],
  base_conv: ['conv_output'], based: ['conv_output'],
  mamba: ['conv_input', 'conv_output', 'ssm_output', 'gate'],
  delta_net: ['q_conv', 'k_conv', 'v_conv'],
  hyena: ['short_filter_output'],
};

/** State-dict tensors that PyTorch never trains (state-dict.md §7): BaseConv's frozen z, Hyena's buffers. */
const NOT_TRAINED = /\.conv\.pos_emb\.z$|\.pos_emb\.t$|\.modulation\.deltas$/;

const B = 3, T = 9, V = 37;
const config = (mixer: MixerKind): ModelConfig => ({ mixer, d_model: 16, n_layers: 2, vocab_size: V, n_positions: 24, pos_emb: true, seed: 1 });
const tokens = (seed: number) => Int32Array.from({ length: B * T }, (_, i) => (i * 11 + seed * 5 + 3) % V);
const data = (t: Tensor) => t.dataSync() as Float32Array;
const bitsEqual = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

type Recorded = Map<string, { layer: number; site: SiteName; x: Tensor3D }>;
function recordAll(lm: LanguageModel, ids: Int32Array): { hidden: Float32Array; sites: Recorded } {
  const sites: Recorded = new Map();
  const hidden = data(lm.forward({ ids, batch: B, time: T, hooks: { record: (layer, site, x) => {
    const key = `${layer}:${site}`;
    assert.ok(!sites.has(key), `site ${key} is recorded twice in one pass`);
    sites.set(key, { layer, site, x: tf.keep(x.clone()) });
  } } }));
  return { hidden, sites };
}

/** Patch one cell set of one site with given values (n, C) taken from a (B, T, C) source. */
function patchFrom(layer: number, site: SiteName, src: Tensor3D, cells: [number, number][]): Patch {
  const rows = Int32Array.from(cells.map((c) => c[0])), positions = Int32Array.from(cells.map((c) => c[1]));
  const C = src.shape[2];
  const values = tf.gather(src.reshape([B * T, C]), tf.tensor1d(cells.map(([b, t]) => b * T + t), 'int32')) as tf.Tensor2D;
  return { layer, site, rows, positions, values };
}

for (const mixer of registeredMixers()) {
  test(`${mixer}: the whole LM is causal (changing token t changes nothing before t, something at or after t)`, () => {
    const lm = new LanguageModel(config(mixer));
    const ids = tokens(1);
    const h0 = data(lm.forward({ ids, batch: B, time: T }));
    const D = lm.cfg.d_model;
    for (const t of [0, 4, T - 1]) {
      const changed = ids.slice();
      for (let b = 0; b < B; b++) changed[b * T + t] = (changed[b * T + t]! + 1) % V;
      const h1 = data(lm.forward({ ids: changed, batch: B, time: T }));
      let before = 0, after = 0;
      for (let b = 0; b < B; b++) for (let s = 0; s < T; s++) for (let c = 0; c < D; c++) {
        const i = (b * T + s) * D + c, diff = Math.abs(h1[i]! - h0[i]!);
        if (s < t) before = Math.max(before, diff); else after = Math.max(after, diff);
      }
      assert.equal(before, 0, `token ${t} changed an earlier state by ${before}`);
      assert.ok(after > 0, `token ${t} changed nothing`);
    }
    lm.dispose();
  });

  test(`${mixer}: every site is exposed, and patching a site with its own value changes nothing, bit for bit`, () => {
    const lm = new LanguageModel(config(mixer));
    const ids = tokens(2);
    const { hidden, sites } = recordAll(lm, ids);
    const names = new Set([...sites.values()].map((s) => s.site));
    for (const s of MIXER_SITES_OF[mixer]) assert.ok(names.has(s), `mixer site '${s}' is never recorded`);
    for (let l = 0; l < lm.cfg.n_layers; l++) {
      const block: SiteName[] = mixer === 'mamba' ? ['block_input', 'mixer_input', 'mixer_output', 'block_output']
        : ['block_input', 'mixer_input', 'mixer_output', 'mlp_input', 'mlp_output', 'block_output'];
      for (const s of block) assert.ok(sites.has(`${l}:${s}`), `block site ${l}:${s} is not recorded`);
    }
    const cells: [number, number][] = [[0, 0], [1, 4], [2, T - 1], [0, 5]];
    const all: Patch[] = [];
    for (const { layer, site, x } of sites.values()) {
      const p = patchFrom(layer, site, x, cells);
      all.push(p);
      const h = data(lm.forward({ ids, batch: B, time: T, hooks: { patches: [p] } }));
      assert.ok(bitsEqual(h, hidden), `identity patch at ${layer}:${site} changed the output`);
    }
    assert.ok(bitsEqual(data(lm.forward({ ids, batch: B, time: T, hooks: { patches: all } })), hidden), 'identity patches at all sites at once changed the output');
    for (const s of sites.values()) s.x.dispose();
    lm.dispose();
  });

  test(`${mixer}: a patch at cell (row 1, t = 4) changes that row from t on, and nothing before t or in other rows`, () => {
    const lm = new LanguageModel(config(mixer));
    const base = recordAll(lm, tokens(3));
    const source = recordAll(lm, tokens(4)); // an interchange: values from another input
    const D = lm.cfg.d_model;
    for (const [key, { layer, site }] of base.sites) {
      const p = patchFrom(layer, site, source.sites.get(key)!.x, [[1, 4]]);
      const h = data(lm.forward({ ids: tokens(3), batch: B, time: T, hooks: { patches: [p] } }));
      let outside = 0, at = 0;
      for (let b = 0; b < B; b++) for (let s = 0; s < T; s++) for (let c = 0; c < D; c++) {
        const i = (b * T + s) * D + c, diff = Math.abs(h[i]! - base.hidden[i]!);
        if (b === 1 && s >= 4) at = Math.max(at, diff); else outside = Math.max(outside, diff);
      }
      assert.equal(outside, 0, `patch at ${key} leaked outside row 1, t ≥ 4 (by ${outside})`);
      assert.ok(at > 0, `patch at ${key} had no effect: the site's return value is not used`);
    }
    lm.dispose();
  });

  test(`${mixer}: cpu and wasm agree within 1e-5 (outputs, logits, loss, gradients)`, () => {
    const here = probe(config(mixer));
    const script = fileURLToPath(new URL('./lm-probe.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, 'wasm', JSON.stringify(config(mixer))], { encoding: 'utf8', maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, `wasm probe failed: ${r.stderr}`);
    const there = JSON.parse(r.stdout) as ProbeResult;
    assert.equal(here.backend, 'cpu');
    assert.equal(there.backend, 'wasm');
    const maxDiff = (a: number[], b: number[]) => { assert.equal(a.length, b.length); return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0); };
    assert.equal(here.hidden.length, PROBE_B * PROBE_T * 16);
    assert.ok(maxDiff(here.hidden, there.hidden) < 1e-5, `hidden states differ by ${maxDiff(here.hidden, there.hidden)}`);
    assert.ok(maxDiff(here.logits, there.logits) < 1e-5, `logits differ by ${maxDiff(here.logits, there.logits)}`);
    assert.ok(Math.abs(here.loss - there.loss) < 1e-5, `loss ${here.loss} vs ${there.loss}`);
    assert.deepEqual(Object.keys(there.grads), Object.keys(here.grads));
    for (const [n, g] of Object.entries(here.grads)) {
      const d = maxDiff(g, there.grads[n]!);
      assert.ok(d < 1e-5, `gradient of ${n} differs by ${d}`);
    }
  });

  test(`${mixer}: every parameter gets a finite gradient from the answer loss`, () => {
    const lm = new LanguageModel(config(mixer));
    const target = tf.oneHot(tf.tensor1d([1, 2, 3], 'int32'), V);
    const vars = [...lm.params.vars.values()].filter((v) => v.trainable);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(target,
      lm.logitsAt(lm.forward({ ids: tokens(5), batch: B, time: T }), Int32Array.from([0, 1, 2]), Int32Array.from([T - 1, T - 1, 2]))) as tf.Scalar, vars);
    for (const [name, v] of lm.params.vars) {
      if (!v.trainable) continue;
      const g = grads[v.name];
      if (NOT_TRAINED.test(name)) { assert.equal(g, undefined, `${name} is frozen in PyTorch but gets a gradient`); continue; }
      assert.ok(g, `no gradient for ${name}`);
      assert.ok(Array.from(g.dataSync()).every(Number.isFinite), `non-finite gradient for ${name}`);
    }
    lm.dispose();
  });

  test(`${mixer}: parameter count and state-dict key count equal the formulas of state-dict.md`, () => {
    for (const extra of [{}, { pos_emb: false, n_layers: 3, d_model: 32 }]) {
      const lm = new LanguageModel({ ...config(mixer), ...extra });
      const want = modelCounts(lm.cfg);
      let inStore = 0;
      for (const v of lm.params.vars.values()) inStore += v.size;
      const keys = stateDictEntries(lm);
      assert.equal(keys.length, want.keys, `${keys.length} state-dict keys, the formula says ${want.keys}`);
      // The store holds the parameters and the persistent buffers (both are state-dict keys); aliases
      // (lm_head.weight, Hyena's .3/.5.freq) are not in the store.
      const buffers = keys.filter((k) => BUFFER_KEY.test(k.name)).reduce((a, k) => a + k.shape.reduce((x, y) => x * y, 1), 0);
      assert.equal(buffers, want.buffers, 'buffer elements');
      assert.equal(inStore, want.params + want.buffers, `store holds ${inStore} values, the formulas say ${want.params} + ${want.buffers}`);
      assert.equal(lm.paramCount(), want.params, `paramCount ${lm.paramCount()}, the formula says ${want.params}`);
      lm.dispose();
    }
  });
}

test('count formulas reproduce the checksums of state-dict.md §9 (tinylang ar_32: V = 8196, P = 1024, 2 layers)', () => {
  const table: Partial<Record<MixerKind, [number[], number]>> = {
    attention: [[154016, 320320, 689792, 1576192, 3938816], 27],
    base_conv: [[155952, 317984, 669696, 1483712, 3554112], 32],
    based: [[153040, 315808, 670528, 1496704, 3616000], 29],
    h3: [[268864, 550016, 1149184, 2494976, 5776384], 55],
    hyena: [[180000, 348864, 723456, 1620096, 4003200], 61],
    mamba: [[154304, 315008, 655616, 1413632, 3236864], 25],
  };
  const hyenaBuffers = [2080, 2112, 2176, 2304, 2560];
  for (const [mixer, [counts, keys]] of Object.entries(table) as [MixerKind, [number[], number]][]) {
    [16, 32, 64, 128, 256].forEach((d, i) => {
      const c = modelCounts(resolveModelConfig({ mixer, d_model: d, n_layers: 2, vocab_size: 8196, n_positions: 1024, pos_emb: true }));
      assert.equal(c.params, counts[i], `${mixer} d=${d}`);
      assert.equal(c.keys, keys, `${mixer} keys`);
      assert.equal(c.buffers, mixer === 'hyena' ? hyenaBuffers[i] : 0, `${mixer} d=${d} buffers`);
    });
  }
  // delta_net is not in §9; its appendix gives 39 keys for 2 layers with position embeddings.
  assert.equal(modelCounts(resolveModelConfig({ mixer: 'delta_net', d_model: 64, n_layers: 2, vocab_size: 8196, pos_emb: true })).keys, 39);
  assert.equal(MIXER_KINDS.length, 7);
});
