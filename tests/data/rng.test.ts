import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rngFor, randInt, randFloat, gamma, dirichlet, cumulative, categorical, pairUniform } from '../../src/data/rng.ts';

test('the same seed and stream give the same draws; other streams and seeds differ', () => {
  const draw = (seed: number, stream: number) => { const r = rngFor(seed, stream); return Array.from({ length: 8 }, () => randInt(r, 0, 1e6)); };
  assert.deepEqual(draw(42, 0), draw(42, 0));
  assert.notDeepEqual(draw(42, 0), draw(42, 1));
  assert.notDeepEqual(draw(42, 0), draw(43, 0));
});

test('randInt covers [lo, hi] uniformly and never leaves it', () => {
  const r = rngFor(1);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 50_000; i++) counts[randInt(r, 0, 4)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 400, `bucket count ${c} is far from 10000`);
});

test('randFloat is in [0, 1) with mean 1/2', () => {
  const r = rngFor(2);
  let s = 0;
  for (let i = 0; i < 100_000; i++) { const u = randFloat(r); assert.ok(u >= 0 && u < 1); s += u; }
  assert.ok(Math.abs(s / 100_000 - 0.5) < 0.005);
});

test('gamma(shape) has mean and variance = shape (shape < 1 uses the boost)', () => {
  for (const shape of [0.5, 1, 3]) {
    const r = rngFor(3);
    const n = 200_000;
    let s = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const x = gamma(r, shape); assert.ok(x >= 0); s += x; s2 += x * x; }
    const mean = s / n, variance = s2 / n - mean * mean;
    assert.ok(Math.abs(mean - shape) < 0.02 * Math.max(1, shape), `shape ${shape}: mean ${mean}`);
    assert.ok(Math.abs(variance - shape) < 0.05 * Math.max(1, shape), `shape ${shape}: variance ${variance}`);
  }
  assert.throws(() => gamma(rngFor(0), 0), /shape must be > 0, got 0/);
});

test('Dirichlet(1) sums to 1 and each coordinate has mean 1/k', () => {
  const r = rngFor(4);
  const k = 4;
  const mean = new Float64Array(k);
  for (let i = 0; i < 20_000; i++) {
    const p = dirichlet(r, 1, k);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    for (let j = 0; j < k; j++) mean[j]! += p[j]! / 20_000;
  }
  for (const m of mean) assert.ok(Math.abs(m - 1 / k) < 0.01, `coordinate mean ${m}`);
});

test('categorical follows its probabilities, also on a segment of a longer cdf', () => {
  const r = rngFor(5);
  const cdf = new Float64Array([...cumulative(new Float64Array([0.5, 0.5])), ...cumulative(new Float64Array([0.1, 0, 0.9]))]);
  const counts = [0, 0, 0];
  for (let i = 0; i < 30_000; i++) counts[categorical(r, cdf, 2, 3)]!++;
  assert.equal(counts[1], 0, 'a zero-probability outcome was drawn');
  assert.ok(Math.abs(counts[0]! / 30_000 - 0.1) < 0.01 && Math.abs(counts[2]! / 30_000 - 0.9) < 0.01, `counts ${counts}`);
});

test('pairUniform is a fixed function of (seed, a, b) with a uniform marginal', () => {
  assert.equal(pairUniform(7, 3, 4), pairUniform(7, 3, 4));
  assert.notEqual(pairUniform(7, 3, 4), pairUniform(7, 4, 3));
  let held = 0;
  for (let a = 0; a < 200; a++) for (let b = 0; b < 200; b++) if (pairUniform(9, a, b) < 0.2) held++;
  assert.ok(Math.abs(held / 40_000 - 0.2) < 0.01, `held-out share ${held / 40_000}`);
});
