/**
 * Learning checks (issue 5) and a mechanism check on a trained model (issue 6), sized to run in about a minute each
 * on 2 cores: small AR tasks where the architecture escapes the chance plateau quickly (calibration.md).
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

function task(pairs: number, keys: number, steps: number, batch: number) {
  const dir = join(tmp, `ar-${pairs}-${keys}-${steps}`);
  buildDataset({ task: { kind: 'ar', pairs, numKeys: keys, numValues: keys }, sizes: { train: steps * batch, dev: 128, test: 256 }, seed: 7 }, dir);
  return { train: loadSplit(dir, 'train'), dev: loadSplit(dir, 'dev'), test: loadSplit(dir, 'test') };
}

function trainOn(model: Omit<ModelConfig, 'vocab_size'>, keys: number, data: ReturnType<typeof task>, cfg: TrainConfig) {
  const lm = createLanguageModel({ ...model, vocab_size: 3 + 2 * keys, n_positions: 32 });
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
