import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lrAt, warmupSteps, type ScheduleConfig } from '../../src/train/schedule.ts';

const paper: ScheduleConfig = { lr: 1e-3, totalSteps: 50016, warmupFraction: 0.1, decay: 'cosine' };

test('warm-up is int(10% of steps): 5001 of the paper\'s 50,016 AR steps', () => {
  assert.equal(warmupSteps(paper), 5001);
});

test('cosine schedule matches hand-computed values (HF get_cosine_schedule_with_warmup)', () => {
  const c: ScheduleConfig = { lr: 1, totalSteps: 100, warmupFraction: 0.1, decay: 'cosine' };
  assert.equal(lrAt(c, 0), 0); // HF: the first update uses lr 0
  assert.equal(lrAt(c, 5), 0.5);
  assert.equal(lrAt(c, 10), 1);
  // progress (55 − 10)/90 = 0.5 → 0.5·(1 + cos(π/2)) = 0.5
  assert.ok(Math.abs(lrAt(c, 55) - 0.5) < 1e-12);
  // progress 0.25 → 0.5·(1 + cos(π/4)) = 0.853553…
  assert.ok(Math.abs(lrAt(c, 32.5) - 0.8535533905932737) < 1e-12);
  assert.equal(lrAt(c, 100), 0);
});

test('linear decay after warm-up (HF get_linear_schedule_with_warmup)', () => {
  const c: ScheduleConfig = { lr: 2, totalSteps: 20, warmupFraction: 0.1, decay: 'linear' };
  assert.equal(lrAt(c, 1), 1);
  assert.equal(lrAt(c, 2), 2);
  assert.equal(lrAt(c, 11), 1); // (20 − 11)/18 · 2
  assert.equal(lrAt(c, 20), 0);
});
