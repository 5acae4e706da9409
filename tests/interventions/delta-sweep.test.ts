/**
 * The DeltaNet-specialised passes of the sweep (src/interventions/delta-sweep.ts: changed fronts only, the delta rule
 * in low-rank form from the corrupted states, read-outs through the corrupted steps after a region, tail sites at
 * their cells only) against the general passes through the model (`specialise: false`), on random DeltaNets of
 * several shapes. The plain one-position-per-pass protocol is checked for DeltaNet in sweep-reference.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/models/tf.ts';
import { createLanguageModel } from '../../src/models/lm.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import { buildDataset } from '../../src/data/dataset.ts';
import { loadSplit } from '../../src/train/split.ts';
import { sweep, type Corruption } from '../../src/interventions/sweep.ts';
import { DeltaBlock } from '../../src/interventions/delta-sweep.ts';

await initBackend('cpu');

const dir = mkdtempSync(join(tmpdir(), 'mecheval-delta-sweep-'));
buildDataset({ task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 }, sizes: { train: 32, dev: 16, test: 13 }, seed: 4 }, dir);
const split = loadSplit(dir, 'test');

/** Counts the specialised calls, so that a test cannot pass by never taking the specialised path. */
function counting<T>(f: () => T): { value: T; calls: Record<string, number> } {
  const proto = DeltaBlock.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const calls: Record<string, number> = {};
  const saved = ['readout', 'outputs', 'tailCells'].map((name) => {
    const orig = proto[name]!;
    calls[name] = 0;
    proto[name] = function (this: unknown, ...a: unknown[]) { calls[name]!++; return orig.apply(this, a); };
    return [name, orig] as const;
  });
  try {
    return { value: f(), calls };
  } finally {
    for (const [name, orig] of saved) proto[name] = orig;
  }
}

const CASES: [string, ModelConfig, Corruption, number][] = [
  ['2 layers, d 16, key corruption', { mixer: 'delta_net', d_model: 16, n_layers: 2, vocab_size: 35, n_positions: 16 }, 'key', 64],
  ['3 layers, value corruption, chunks of 5', { mixer: 'delta_net', d_model: 16, n_layers: 3, vocab_size: 35, n_positions: 16 }, 'value', 5],
  ['1 layer', { mixer: 'delta_net', d_model: 16, n_layers: 1, vocab_size: 35, n_positions: 16 }, 'key', 64],
  ['no short conv (d_conv 0)', { mixer: 'delta_net', d_model: 16, n_layers: 2, vocab_size: 35, n_positions: 16, d_conv: 0 }, 'key', 64],
  ['d_conv 2, odd head size (d 18, 2 heads of 9)', { mixer: 'delta_net', d_model: 18, n_layers: 2, vocab_size: 35, n_positions: 16, d_conv: 2 }, 'key', 64],
  ['3 heads, d_conv 3', { mixer: 'delta_net', d_model: 24, n_layers: 2, vocab_size: 35, n_positions: 16, d_conv: 3, delta_heads: 3 }, 'value', 7],
] as [string, ModelConfig, Corruption, number][];

// The specialised path sums the delta rule in another order (low rank, in float64) and batches rows differently, so
// it agrees up to rounding; 1e-5 on p and on the logit.
const TOL = 1e-5;

for (const [name, cfg, corruption, chunk] of CASES) {
  test(`DeltaNet sweep: the specialised passes equal the general ones (${name})`, () => {
    const lm = createLanguageModel({ ...cfg, seed: 17 });
    // Larger weights than the init, so that patches move p(answer) visibly and the state matters.
    for (const v of lm.params.vars.values()) v.assign(v.mul(4));
    const general = sweep(lm, split, { corruption, chunk, specialise: false });
    const { value: fast, calls } = counting(() => sweep(lm, split, { corruption, chunk }));
    assert.ok(calls.readout! > 0, 'the specialised last block was used');
    if (cfg.n_layers > 1) {
      assert.ok(calls.outputs! > 0, 'the specialised earlier blocks were used');
      assert.ok(calls.tailCells! > 0, 'the specialised tail cells were used');
    }
    assert.equal(fast.patches.length, general.patches.length);
    let moved = 0;
    for (let k = 0; k < fast.patches.length; k++) {
      const a = fast.patches[k]!, b = general.patches[k]!;
      assert.equal(`${a.layer}:${a.site}:${a.position}`, `${b.layer}:${b.site}:${b.position}`);
      for (let i = 0; i < fast.n; i++) {
        assert.ok(Math.abs(a.pRestored[i]! - b.pRestored[i]!) <= TOL, `${a.site}@${a.layer} ${a.position} example ${i} p: ${a.pRestored[i]} vs ${b.pRestored[i]}`);
        assert.ok(Math.abs(a.logitRestored[i]! - b.logitRestored[i]!) <= TOL, `${a.site}@${a.layer} ${a.position} example ${i} logit: ${a.logitRestored[i]} vs ${b.logitRestored[i]}`);
        if (Math.abs(b.pRestored[i]! - general.pCorr[i]!) > 1e-4) moved++;
      }
    }
    assert.ok(moved > 0, 'some patch moved p(answer), so the comparison means something');
    lm.dispose();
  });
}

test('DeltaNet sweep: the specialised passes are used only while their per-chunk arrays fit the memory budget', () => {
  const fake = (d_model: number) => ({ cfg: { mixer: 'delta_net', d_model, n_layers: 2, delta_heads: 2, d_conv: 4 }, params: { vars: new Map() } }) as unknown as Parameters<typeof DeltaBlock.covers>[0];
  assert.equal(DeltaBlock.covers(fake(64), 64, 9), true); // the default study: ~26 MB
  assert.equal(DeltaBlock.covers(fake(256), 64, 37), false); // paper size, d 256: ~1.6 GB, the general passes instead
  const attention = { cfg: { mixer: 'attention', d_model: 64, n_layers: 2, delta_heads: 2, d_conv: null }, params: { vars: new Map() } };
  assert.equal(DeltaBlock.covers(attention as unknown as Parameters<typeof DeltaBlock.covers>[0], 64, 9), false);
});
