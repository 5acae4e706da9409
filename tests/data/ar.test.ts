import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateAr, arLength, type ArConfig } from '../../src/data/ar.ts';
import type { SplitBuffer } from '../../src/data/examples.ts';
import { rngFor, isHeldOutPair } from '../../src/data/rng.ts';
import { BOS, EOS } from '../../src/data/vocab.ts';

const make = (cfg: ArConfig, n: number, heldOut: 'exclude' | 'only' = 'exclude', excludeContext = false): SplitBuffer =>
  generateAr(cfg, { n, rng: rngFor(11, heldOut === 'only' ? 3 : 0), heldOut, maskSeed: 11, excludeContext });

/** Checks every invariant of issue 3 on every document; returns nothing, fails on the first violation. */
function checkAr(s: SplitBuffer, cfg: ArConfig, excludeContext: boolean): void {
  const { pairs: n, numKeys: K, numValues: V } = cfg;
  const isKey = (t: number) => t >= 3 && t < 3 + K;
  const isValue = (t: number) => t >= 3 + K && t < 3 + K + V;
  for (let i = 0; i < s.n; i++) {
    const d = s.doc(i);
    const at = `document ${i}`;
    assert.equal(d.length, arLength(n), at);
    assert.equal(d[0], BOS, at);
    assert.equal(d[2 * n + 1], EOS, at);
    assert.equal(d[2 * n + 4], EOS, at);
    const keys = new Set<number>();
    const values = new Set<number>();
    for (let j = 0; j < n; j++) {
      assert.ok(isKey(d[1 + 2 * j]!), `${at}: slot ${1 + 2 * j} is not a key`);
      assert.ok(isValue(d[2 + 2 * j]!), `${at}: slot ${2 + 2 * j} is not a value`);
      keys.add(d[1 + 2 * j]!);
      values.add(d[2 + 2 * j]!);
    }
    assert.equal(keys.size, n, `${at}: repeated key`);
    assert.equal(values.size, n, `${at}: repeated value`);
    // the answer is the value paired with the query key
    const qk = d[2 * n + 2]!;
    const j = [...Array(n).keys()].find((j) => d[1 + 2 * j] === qk);
    assert.ok(j !== undefined, `${at}: query key ${qk} is not in the context`);
    assert.equal(s.answers[i], d[2 + 2 * j], at);
    assert.equal(d[2 * n + 3], s.answers[i], at);
    // positions
    assert.equal(s.pos.key[i], 2 * j + 1, at);
    assert.equal(s.pos.value[i], 2 * j + 2, at);
    assert.equal(s.pos.next_key[i], 2 * j + 3, at);
    assert.equal(s.pos.divider[i], 2 * n + 1, at);
    assert.equal(s.pos.query[i], 2 * n + 2, at);
    assert.equal(s.pos.answer[i], 2 * n + 3, at);
    // counterfactuals: another id of the same kind
    const kc = s.keyCorrupted[i]!;
    const vc = s.valueCorrupted[i]!;
    assert.ok(isKey(kc) && kc !== qk, `${at}: key corruption ${kc}`);
    assert.ok(isValue(vc) && vc !== s.answers[i], `${at}: value corruption ${vc}`);
    if (excludeContext) {
      assert.ok(!keys.has(kc), `${at}: key corruption ${kc} collides with the context`);
      assert.ok(!values.has(vc), `${at}: value corruption ${vc} collides with the context`);
    }
  }
}

test('AR invariants at the default study size (3 pairs, 16 + 16)', () => {
  const cfg = { pairs: 3, numKeys: 16, numValues: 16, heldOutFraction: 0 };
  checkAr(make(cfg, 2000), cfg, false);
});

test('AR invariants at the paper size (16 pairs, 4096 + 4096) and when pairs use the whole vocabulary', () => {
  const paper = { pairs: 16, numKeys: 4096, numValues: 4096, heldOutFraction: 0 };
  checkAr(make(paper, 500), paper, false);
  const full = { pairs: 8, numKeys: 8, numValues: 8, heldOutFraction: 0 };
  checkAr(make(full, 500), full, false);
});

test('AR: excludeContext corruptions never collide with the document; the default does (as in the paper)', () => {
  const cfg = { pairs: 3, numKeys: 16, numValues: 16, heldOutFraction: 0 };
  checkAr(make(cfg, 2000, 'exclude', true), cfg, true);
  const s = make(cfg, 2000);
  let collisions = 0;
  for (let i = 0; i < s.n; i++) if (s.doc(i).subarray(1, 7).includes(s.keyCorrupted[i]!)) collisions++;
  // P(collision) = 2/15 for 3 pairs of 16 keys: the paper's corruption does not avoid the other keys
  assert.ok(Math.abs(collisions / s.n - 2 / 15) < 0.03, `collision rate ${collisions / s.n}`);
});

test('AR: the query pair is uniform over the pairs and the key/value draws are uniform', () => {
  const cfg = { pairs: 4, numKeys: 16, numValues: 16, heldOutFraction: 0 };
  const s = make(cfg, 8000);
  const q = [0, 0, 0, 0];
  const keyCount = new Array(16).fill(0);
  for (let i = 0; i < s.n; i++) {
    q[(s.pos.key[i]! - 1) / 2]!++;
    for (let j = 0; j < 4; j++) keyCount[s.doc(i)[1 + 2 * j]! - 3]++;
  }
  for (const c of q) assert.ok(Math.abs(c - 2000) < 200, `query slot counts ${q}`);
  for (const c of keyCount) assert.ok(Math.abs(c - 2000) < 200, `key counts ${keyCount}`);
});

test('AR held-out pairs: never queried in train, always queried in gen', () => {
  const cfg = { pairs: 3, numKeys: 16, numValues: 16, heldOutFraction: 0.2 };
  const queried = (s: SplitBuffer, i: number) => isHeldOutPair(11, 0.2, s.doc(i)[s.pos.key[i]!]! - 3, s.answers[i]! - 3 - 16);
  const train = make(cfg, 2000);
  const gen = make(cfg, 500, 'only');
  checkAr(train, cfg, false);
  checkAr(gen, cfg, false);
  for (let i = 0; i < train.n; i++) assert.equal(queried(train, i), false, `train document ${i} queries a held-out pair`);
  for (let i = 0; i < gen.n; i++) assert.equal(queried(gen, i), true, `gen document ${i} queries a seen pair`);
  // held-out pairs may still sit in the context of training documents (only the query is restricted)
  let inContext = 0;
  for (let i = 0; i < train.n; i++) {
    const d = train.doc(i);
    for (let j = 0; j < 3; j++) if (isHeldOutPair(11, 0.2, d[1 + 2 * j]! - 3, d[2 + 2 * j]! - 19)) inContext++;
  }
  assert.ok(inContext > 0);
});

test('AR: an impossible held-out split fails with a message naming the fraction', () => {
  // with 1 pair over a 2 × 2 vocabulary and a tiny fraction, a held-out pair may not exist at all
  const cfg = { pairs: 1, numKeys: 2, numValues: 2, heldOutFraction: 1e-9 };
  assert.throws(() => make(cfg, 1, 'only'), /heldOutFraction = 1e-9/);
});
