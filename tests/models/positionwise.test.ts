/**
 * Block.positionwiseFrom: for every listed site, the block's output at position t depends on that site's activation
 * at t only. The intervention sweep relies on it (it patches all positions of such a site in one row), so it is
 * checked here for every mixer and every layer: patching several positions at once gives, at each of them, the
 * block output of patching that position alone, and patching one position leaves every other position's output
 * exactly as it was. A site that mixes tokens afterwards (mixer_input) must fail the same check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { createLanguageModel, type LanguageModel } from '../../src/models/lm.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { Patch, SiteName } from '../../src/models/sites.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const B = 2, T = 8, PATCHED = [1, 4, 6];

const CONFIGS: ModelConfig[] = [
  { mixer: 'attention', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16, pos_emb: true },
  { mixer: 'base_conv', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'based', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'mamba', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'mamba', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16, d_conv: 0 },
  { mixer: 'delta_net', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'h3', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'hyena', d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16 },
] as ModelConfig[];

const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 2) % 12);

/** The residual stream entering `layer` and the width of `site` there, from one plain forward pass. */
function inputs(lm: LanguageModel, layer: number, site: SiteName): { r: Tensor3D; C: number } {
  let r: Tensor3D | null = null, C = 0;
  tf.tidy(() => lm.forward({ ids, batch: B, time: T, hooks: { record: (l, s, x) => {
    if (l === layer && s === 'block_input') r = tf.keep(x.clone());
    if (l === layer && s === site) C = x.shape[2];
  } } }));
  return { r: r!, C };
}

/** Block `layer`'s output (B·T·d floats) with `site` overwritten at `positions` (every row) by fixed random values. */
function blockOut(lm: LanguageModel, layer: number, site: SiteName, r: Tensor3D, C: number, positions: number[]): Float32Array {
  return tf.tidy(() => {
    const n = B * positions.length;
    const patch: Patch = {
      layer, site,
      rows: Int32Array.from({ length: n }, (_, j) => Math.floor(j / positions.length)),
      positions: Int32Array.from({ length: n }, (_, j) => positions[j % positions.length]!),
      values: tf.tensor2d(Float32Array.from({ length: n * C }, (_, j) => {
        const cell = Math.floor(j / C), t = positions[cell % positions.length]!; // the same value for a cell in every call
        return Math.sin(7 * (Math.floor(cell / positions.length) * T + t) + 0.37 * (j % C)) * 1.5;
      }), [n, C]),
    };
    return lm.runBlock(layer, r, { patches: [patch] }).dataSync() as Float32Array;
  });
}

/** Where the position-wise property fails for (layer, site), or null if it holds. */
function violation(lm: LanguageModel, layer: number, site: SiteName): string | null {
  const { r, C } = inputs(lm, layer, site);
  const d = lm.cfg.d_model;
  const none = blockOut(lm, layer, site, r, C, []);
  const all = blockOut(lm, layer, site, r, C, PATCHED);
  for (const p of PATCHED) {
    const one = blockOut(lm, layer, site, r, C, [p]);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) {
      const at = (b * T + t) * d + c;
      const want = t === p ? all[at]! : none[at]!;
      if (!Object.is(one[at], want)) return `patch at ${p} only: output (${b}, ${t}, ${c}) = ${one[at]}, expected ${want}`;
    }
  }
  r.dispose();
  return null;
}

for (const cfg of CONFIGS) {
  test(`${cfg.mixer}${cfg.d_conv === 0 ? ' (d_conv 0)' : ''}: every positionwiseFrom site of every layer acts on its own position only (bit for bit)`, () => {
    const lm = createLanguageModel({ ...cfg, seed: 11 });
    for (let layer = 0; layer < lm.cfg.n_layers; layer++) {
      const sites = [...lm.blocks[layer]!.positionwiseFrom];
      assert.ok(sites.includes('mixer_output') && sites.includes('block_output'), 'the block-level tail sites are listed');
      for (const site of sites) assert.equal(violation(lm, layer, site), null, `${site}@${layer}`);
      // Negative control: the mixer's input feeds a token-mixing op, so the same check must find a violation.
      assert.ok(!lm.positionwiseFrom(layer, 'mixer_input'));
      assert.notEqual(violation(lm, layer, 'mixer_input'), null, `mixer_input@${layer} should mix positions`);
    }
    lm.dispose();
  });
}

test('the declared internal sites: Mamba ssm_output and gate, BaseConv (and Based\'s BaseConv layers) conv_output, DeltaNet q_conv', () => {
  const mam = createLanguageModel({ mixer: 'mamba', d_model: 16, n_layers: 2, vocab_size: 12 });
  assert.ok(mam.positionwiseFrom(0, 'ssm_output') && mam.positionwiseFrom(1, 'gate'));
  assert.ok(!mam.positionwiseFrom(0, 'conv_output') && !mam.positionwiseFrom(0, 'conv_input'));
  const based = createLanguageModel({ mixer: 'based', d_model: 16, n_layers: 2, vocab_size: 12 });
  assert.ok(based.positionwiseFrom(0, 'conv_output'));
  const dn = createLanguageModel({ mixer: 'delta_net', d_model: 16, n_layers: 2, vocab_size: 12 });
  assert.ok(dn.positionwiseFrom(0, 'q_conv') && !dn.positionwiseFrom(0, 'k_conv') && !dn.positionwiseFrom(0, 'v_conv'));
  mam.dispose(); based.dispose(); dn.dispose();
});
