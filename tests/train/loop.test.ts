import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/models/tf.ts';
import { train, NonFiniteLossError, type TrainConfig } from '../../src/train/loop.ts';
import { evaluate } from '../../src/train/evaluate.ts';
import { toyModel, toySplit } from './toy.ts';

await initBackend('cpu');

const V = 16, D = 8;
const data = toySplit(64, V, 1);
const dev = toySplit(32, V, 2);
const cfg: TrainConfig = { lr: 0.05, steps: 40, batch_size: 8, eval_every: 10, eval_examples: 32, checkpoint_every: 10 };

function weights(m: ReturnType<typeof toyModel>): Float32Array[] {
  return [...m.params.vars.values()].map((v) => v.dataSync() as Float32Array);
}

test('training learns the toy task and logs dev metrics', () => {
  const m = toyModel(V, D);
  const before = evaluate(m, dev).accuracy;
  const rows = train(m, data, dev, { ...cfg, steps: 150, eval_every: 50 });
  const after = evaluate(m, dev).accuracy;
  assert.ok(after > 0.9 && after > before, `dev accuracy ${before} → ${after}`);
  const evals = rows.filter((r) => r.dev_accuracy !== undefined).map((r) => r.step);
  assert.deepEqual(evals, [50, 100, 150]);
});

test('same config, same backend → bit-identical weights (determinism)', () => {
  const a = toyModel(V, D), b = toyModel(V, D);
  train(a, data, dev, cfg);
  train(b, data, dev, cfg);
  assert.deepEqual(weights(a), weights(b));
});

test('a run killed after step 25 resumes from its step-20 scratch checkpoint and ends bit-identical', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'mecheval-resume-'));
  const ref = toyModel(V, D);
  const refRows = train(ref, data, dev, cfg);

  const killed = toyModel(V, D);
  class Killed extends Error {}
  assert.throws(() => train(killed, data, dev, cfg, { scratchDir: scratch, afterStep: (s) => { if (s === 25) throw new Killed(); } }), Killed);
  assert.ok(existsSync(join(scratch, 'resume.safetensors')));

  const resumed = toyModel(V, D, 99); // different init: everything must come from the checkpoint
  const logs: string[] = [];
  const rows = train(resumed, data, dev, cfg, { scratchDir: scratch, log: (m) => logs.push(m) });
  assert.match(logs.join('\n'), /resuming from scratch checkpoint at step 20\/40/);
  assert.deepEqual(weights(resumed), weights(ref));
  assert.deepEqual(rows.map((r) => [r.step, r.loss, r.dev_accuracy]), refRows.map((r) => [r.step, r.loss, r.dev_accuracy]));
  assert.ok(!existsSync(join(scratch, 'resume.safetensors')), 'scratch checkpoint removed after success');
});

test('a non-finite loss stops training with the step and the last finite loss', () => {
  const m = toyModel(V, D);
  assert.throws(() => train(m, data, dev, { ...cfg, lr: 1e30, eval_every: 0 }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError);
    assert.ok(e.step > 0 && e.lastFinite !== null, e.message);
    assert.match(e.message, /not finite at step \d+ \(last finite loss: /);
    return true;
  });
});

test('shuffled order differs from the fixed order but is itself deterministic', () => {
  const f = toyModel(V, D), s1 = toyModel(V, D), s2 = toyModel(V, D);
  train(f, data, null, cfg);
  train(s1, data, null, { ...cfg, order: 'shuffle', data_seed: 3 });
  train(s2, data, null, { ...cfg, order: 'shuffle', data_seed: 3 });
  assert.deepEqual(weights(s1), weights(s2));
  assert.notDeepEqual(weights(f), weights(s1));
});

test('early stopping ends training at the first dev evaluation at or above the threshold, keeping the schedule', () => {
  const m = toyModel(V, D);
  const logs: string[] = [];
  const rows = train(m, data, dev, { ...cfg, steps: 400, eval_every: 10, early_stop_accuracy: 0.9 }, { log: (l) => logs.push(l) });
  const last = rows.at(-1)!;
  assert.ok(last.step < 400, `stopped at ${last.step}`);
  assert.ok(last.dev_accuracy! >= 0.9);
  assert.ok(rows.filter((r) => r.dev_accuracy !== undefined).slice(0, -1).every((r) => r.dev_accuracy! < 0.9), 'no earlier evaluation reached it');
  assert.match(logs.join('\n'), new RegExp(`early stop at step ${last.step}/400`));
  const full = toyModel(V, D);
  const fullRows = train(full, data, dev, { ...cfg, steps: 400, eval_every: 10 });
  assert.equal(fullRows.find((r) => r.step === last.step)!.lr, last.lr, 'same lr schedule as the full run');
});

test('epochs instead of steps: steps = epochs · floor(N / batch_size); exactly one of the two', () => {
  const m = toyModel(V, D);
  const rows = train(m, data, null, { lr: 0.01, epochs: 2, batch_size: 8, eval_every: 0, checkpoint_every: 0 });
  assert.equal(rows.at(-1)!.step, 2 * Math.floor(64 / 8));
  assert.throws(() => train(m, data, null, { lr: 0.01, epochs: 1, steps: 5 }), /exactly one of \/steps and \/epochs \(got both\)/);
  assert.throws(() => train(m, data, null, { lr: 0.01 }), /got neither/);
});
