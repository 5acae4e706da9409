/**
 * Learning checks (issue 5) and mechanism checks on trained models (issue 6), on small AR tasks where the
 * architecture escapes the chance plateau quickly (calibration.md): Mamba in well under a minute, Attention in 2–3
 * minutes on 2 cores (its plateau is long; see below).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/models/tf.ts';
import { createLanguageModel, type ModelConfig } from '../../src/models/index.ts';
import { buildDataset } from '../../src/data/dataset.ts';
import { loadSplit } from '../../src/train/split.ts';
import { train, type TrainConfig } from '../../src/train/loop.ts';
import { evaluate } from '../../src/train/evaluate.ts';
import { sweep } from '../../src/interventions/sweep.ts';
import { attribTable } from '../../src/interventions/attrib.ts';
import { callMechanism } from '../../src/interventions/mechanism.ts';

await initBackend('wasm');

const tmp = mkdtempSync(join(tmpdir(), 'mecheval-learn-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function task(pairs: number, keys: number, steps: number, batch: number, seed = 7, dev = 128) {
  const dir = join(tmp, `ar-${pairs}-${keys}-${steps}-${seed}`);
  buildDataset({ task: { kind: 'ar', pairs, numKeys: keys, numValues: keys }, sizes: { train: steps * batch, dev, test: 256 }, seed }, dir);
  return { train: loadSplit(dir, 'train'), dev: loadSplit(dir, 'dev'), test: loadSplit(dir, 'test') };
}

function trainOn(model: Omit<ModelConfig, 'vocab_size'>, keys: number, data: ReturnType<typeof task>, cfg: TrainConfig) {
  const lm = createLanguageModel({ ...model, vocab_size: 3 + 2 * keys, n_positions: 64 });
  train(lm, data.train, data.dev, { eval_every: 0, checkpoint_every: 0, ...cfg });
  return lm;
}

test('Mamba (d_conv 4) learns 2-pair AR (8 + 8) to ≥ 95% and retrieves directly at the query', () => {
  const data = task(2, 8, 300, 32);
  const lm = trainOn({ mixer: 'mamba', d_model: 64, n_layers: 2 }, 8, data, { lr: 3e-3, steps: 300 });
  const ev = evaluate(lm, data.test);
  assert.ok(ev.accuracy >= 0.95, `test accuracy ${(ev.accuracy * 100).toFixed(1)}% after 300 steps (chance 50%)`);
  const t = attribTable(sweep(lm, data.test, { limit: 128, sites: [{ layer: 1, site: 'block_input' }] }));
  const m = callMechanism(t, 2);
  assert.equal(m.call, 'direct_retrieval', JSON.stringify(m.evidence));
});

/*
 * Attention sits on a chance plateau on AR for thousands of steps, and escapes only at a high learning rate and for
 * some initialisations (calibration.md; checked in PyTorch with the same initial weights and data, whose loss curve
 * ours matches digit for digit). Of seeds 0–9 at d = 32 (PyTorch twin, first 3,000 steps of the 10,000-step schedule),
 * seed 0 leaves the plateau first (≈ 2,250) and reaches 100 % dev accuracy at step 3,500, where early stopping ends the
 * run; seeds 7 and 8 leave it ≈ 2,750, seed 3 ≈ 3,500, the other six stay on it past 3,000. 3 pairs, not 2: with 2 pairs the query's own state partly encodes the
 * answer and the value position restores only ≈ 0.87 (calibration.md saw the same mix at n = 2).
 */
test('Attention learns 3-pair AR (8 + 8) to ≥ 95% and stores the association at the value (induction, Attrib ≥ 0.9)', () => {
  const data = task(3, 8, 6000, 32, 1, 320);
  const lm = trainOn({ mixer: 'attention', d_model: 32, n_layers: 2, pos_emb: true, seed: 0 }, 8, data,
    { lr: 1e-3, steps: 10000, eval_every: 250, eval_examples: 320, early_stop_accuracy: 0.99 });
  const ev = evaluate(lm, data.test);
  assert.ok(ev.accuracy >= 0.95, `test accuracy ${(ev.accuracy * 100).toFixed(1)}% (chance 33%)`);
  const t = attribTable(sweep(lm, data.test, { limit: 256, sites: [{ layer: 1, site: 'block_input' }] }));
  const value = t.rows.find((r) => r.position === 'value')!;
  const all = t.rows.map((r) => `${r.position} ${r.attrib?.toFixed(2)}`).join(', ');
  assert.ok(t.analysed && value.attrib! >= 0.9, `layer-1 block input: ${all} (gap ${t.gap.toFixed(3)})`);
  assert.equal(callMechanism(t, 2).call, 'induction');
});
