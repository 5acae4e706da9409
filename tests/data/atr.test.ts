import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateAtr, ParentFirstQuery, type AtrOptions } from '../../src/data/atr.ts';
import { makeGrammar, type PcfgConfig, type Grammar } from '../../src/data/pcfg.ts';
import { splitStats, type SplitBuffer } from '../../src/data/examples.ts';
import { rngFor, isHeldOutPair } from '../../src/data/rng.ts';
import { BOS, EOS } from '../../src/data/vocab.ts';

const cfg = (numTerminals: number, maxRhsLen: number, seed = 42): PcfgConfig => ({
  numTerminals, numNonterminals: 40, maxRhsLen, maxRules: 5, maxDepth: 10, terminalWeight: 20,
  rulesInclusive: true, depthInclusive: true, rhsLenInclusive: false, seed,
});
const OPTS: AtrOptions = { heldOutFraction: 0, yieldLimit: 1024, excludeRootChildren: false };
const make = (g: Grammar, n: number, opts: Partial<AtrOptions> = {}, heldOut: 'exclude' | 'only' = 'exclude', excludeContext = false) =>
  generateAtr(g, { ...OPTS, ...opts }, { n, rng: rngFor(5, heldOut === 'only' ? 3 : 0), heldOut, maskSeed: 5, excludeContext });

function checkAtr(s: SplitBuffer, T: number, yieldLimit: number, excludeContext: boolean): void {
  const isTerminal = (t: number) => t >= 3 && t < 3 + T;
  for (let i = 0; i < s.n; i++) {
    const d = s.doc(i);
    const at = `document ${i}`;
    const n = d.length - 5; // sentence length
    assert.ok(n >= 3 && n < yieldLimit, `${at}: sentence of ${n} terminals`);
    assert.equal(d[0], BOS, at);
    assert.equal(d[n + 1], EOS, at);
    assert.equal(d[n + 4], EOS, at);
    for (let j = 1; j <= n; j++) assert.ok(isTerminal(d[j]!), `${at}: token ${d[j]} at ${j}`);
    const c = s.pos.key[i]!;
    const p = s.pos.value[i]!;
    assert.ok(c >= 1 && p <= n, at);
    assert.ok(p > c, `${at}: parent at ${p} is not right of the child at ${c}`);
    for (let j = c + 1; j <= n; j++) assert.notEqual(d[j], d[c], `${at}: child ${d[c]} at ${c} is not the rightmost occurrence (again at ${j})`);
    assert.equal(d[n + 2], d[c], `${at}: query token is not the child`);
    assert.equal(d[n + 3], d[p], `${at}: answer token is not the parent`);
    assert.equal(s.answers[i], d[p], at);
    assert.deepEqual([s.pos.next_key[i], s.pos.divider[i], s.pos.query[i], s.pos.answer[i]], [p + 1, n + 1, n + 2, n + 3], at);
    const kc = s.keyCorrupted[i]!;
    const vc = s.valueCorrupted[i]!;
    assert.ok(isTerminal(kc) && kc !== d[c], `${at}: key corruption ${kc}`);
    assert.ok(isTerminal(vc) && vc !== d[p], `${at}: value corruption ${vc}`);
    if (excludeContext) {
      const ctx = d.subarray(1, n + 1);
      if (new Set(ctx).size < T) { // a collision-free replacement exists
        assert.ok(!ctx.includes(kc), `${at}: key corruption collides`);
        assert.ok(!ctx.includes(vc), `${at}: value corruption collides`);
      }
    }
  }
}

test('ATR invariants on the easy, medium and |Σ| = 8192 grammars', () => {
  for (const [T, L] of [[20, 5], [20, 10], [8192, 5], [8192, 10]] as const) {
    const { split } = make(makeGrammar(cfg(T, L)), 1500);
    checkAtr(split, T, 1024, false);
  }
});

test('parent-first sampling: a parent uniformly, then one of its eligible (rightmost-occurrence) children', () => {
  // sentence "a b c a d e f" (positions 0..6); tree: 0, 1, 2 → 4 and 3, 4, 5 → 6; 6 is the root head.
  // Position 0 is not the rightmost "a", so the eligible children are 1, 2 (parent 4) and 3, 4, 5 (parent 6):
  // parent-first gives 1/4, 1/4, 1/6, 1/6, 1/6, where a uniform draw over edges would give 1/5 each.
  const label = Int32Array.from([0, 1, 2, 0, 3, 4, 5]);
  const parent = Int32Array.from([4, 4, 4, 6, 6, 6, -1]);
  const q = new ParentFirstQuery(8, 16);
  assert.equal(q.scan(label, parent, 7, () => true), 2);
  assert.equal(q.distinct, 6);
  const rng = rngFor(9);
  const counts = new Array(7).fill(0);
  const N = 60_000;
  for (let i = 0; i < N; i++) counts[q.pick(rng, parent)]++;
  const expect = [0, 1 / 4, 1 / 4, 1 / 6, 1 / 6, 1 / 6, 0];
  for (let c = 0; c < 7; c++) assert.ok(Math.abs(counts[c] / N - expect[c]!) < 0.01, `child ${c}: ${counts[c] / N} vs ${expect[c]}`);
  // the filter removes edges; a sentence with none left has no query
  assert.equal(q.scan(label, parent, 7, (_c, p) => p === 4), 1);
  for (let i = 0; i < 100; i++) assert.ok([1, 2].includes(q.pick(rng, parent)));
  assert.equal(q.scan(label, parent, 7, () => false), 0);
});

test('ATR: parents are heads (never the first terminal); the root head is the parent in some documents only', () => {
  // A head is appended after a non-empty RHS, so the first terminal of a sentence can never be a parent.
  const g = makeGrammar(cfg(20, 5));
  const { split } = make(g, 3000);
  let firstIsParent = 0;
  for (let i = 0; i < split.n; i++) if (split.pos.value[i] === 1) firstIsParent++;
  assert.equal(firstIsParent, 0, 'the first terminal can never be a head (heads are rightmost in their expansion)');
  // the root head (last terminal) is a parent in some documents, an inner head in others
  let rootParent = 0;
  for (let i = 0; i < split.n; i++) if (split.pos.value[i] === split.pos.divider[i]! - 1) rootParent++;
  assert.ok(rootParent > 0 && rootParent < split.n, `root head is the parent in ${rootParent} of ${split.n}`);
});

test('ATR rejection: yields at or over yieldLimit and shorter than 3 are redrawn and counted', () => {
  const g = makeGrammar(cfg(20, 10));
  const { split, rejected } = make(g, 1000, { yieldLimit: 16 });
  checkAtr(split, 20, 16, false);
  assert.ok(rejected.tooLong > 0, `no over-long sentence was rejected: ${JSON.stringify(rejected)}`);
  assert.ok(rejected.tooShort > 0, `no short sentence was rejected: ${JSON.stringify(rejected)}`);
});

test('ATR excludeRootChildren drops the root head as a parent', () => {
  const { split } = make(makeGrammar(cfg(20, 5)), 2000, { excludeRootChildren: true });
  checkAtr(split, 20, 1024, false);
  for (let i = 0; i < split.n; i++) assert.notEqual(split.pos.value[i], split.pos.divider[i]! - 1, `document ${i}`);
});

test('ATR excludeContext corruptions avoid the sentence when they can', () => {
  const { split } = make(makeGrammar(cfg(20, 5)), 2000, {}, 'exclude', true);
  checkAtr(split, 20, 1024, true);
});

test('ATR held-out (parent-label, child-label) pairs: never queried in train, always in gen', () => {
  const g = makeGrammar(cfg(20, 5));
  const held = (s: SplitBuffer, i: number) => isHeldOutPair(5, 0.2, s.answers[i]! - 3, s.doc(i)[s.pos.key[i]!]! - 3);
  const train = make(g, 2000, { heldOutFraction: 0.2 }).split;
  const gen = make(g, 500, { heldOutFraction: 0.2 }, 'only').split;
  checkAtr(train, 20, 1024, false);
  checkAtr(gen, 20, 1024, false);
  for (let i = 0; i < train.n; i++) assert.equal(held(train, i), false, `train document ${i}`);
  for (let i = 0; i < gen.n; i++) assert.equal(held(gen, i), true, `gen document ${i}`);
});

test('easy-grammar statistics are in line with the measured table (§2.2: mean 19.9, median 14, p90 36; distance 2.5 / 2)', () => {
  // The table comes from one numpy-drawn grammar; ours are drawn by another PRNG, so no single grammar can match it.
  // Over 16 grammar seeds the table's values must fall inside the spread of ours, and our typical grammar must be
  // of the same size (a wrong RHS length range or a missing head moves these well outside).
  const means: number[] = [], medians: number[] = [], p90s: number[] = [], dist: number[] = [];
  for (let seed = 30; seed < 46; seed++) {
    const st = splitStats(make(makeGrammar(cfg(20, 5, seed)), 400).split) as { length: { mean: number; median: number; p90: number }; keyValueDistance: { mean: number } };
    means.push(st.length.mean); medians.push(st.length.median); p90s.push(st.length.p90); dist.push(st.keyValueDistance.mean);
  }
  const mid = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1]!;
  const within = (a: number[], v: number, what: string) =>
    assert.ok(Math.min(...a) <= v * 1.1 && v * 0.9 <= Math.max(...a), `${what}: table ${v} outside our grammars' range ${Math.min(...a)}–${Math.max(...a)}`);
  within(means, 19.9, 'mean length');
  within(medians, 14, 'median length');
  within(p90s, 36, 'p90 length');
  within(dist, 2.5, 'mean child→parent distance');
  assert.ok(mid(means) > 12 && mid(means) < 22, `typical mean length ${mid(means)}`);
  assert.ok(mid(dist) > 1.7 && mid(dist) < 3, `typical distance ${mid(dist)}`);
});
