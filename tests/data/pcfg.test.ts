import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeGrammar, TreeSampler, describeGrammar, type PcfgConfig } from '../../src/data/pcfg.ts';
import { rngFor } from '../../src/data/rng.ts';

const EASY: PcfgConfig = {
  numTerminals: 20, numNonterminals: 40, maxRhsLen: 5, maxRules: 5, maxDepth: 10, terminalWeight: 20,
  rulesInclusive: true, depthInclusive: true, rhsLenInclusive: false, seed: 42,
};

test('grammar: depth scores in range, no rule uses a nonterminal of equal or lower depth, sizes in range', () => {
  for (const cfg of [EASY, { ...EASY, maxRhsLen: 10, numTerminals: 8192 }, { ...EASY, rulesInclusive: false, depthInclusive: false, seed: 3 }]) {
    const g = makeGrammar(cfg);
    const dMax = cfg.depthInclusive ? cfg.maxDepth : cfg.maxDepth - 1;
    const rMax = cfg.rulesInclusive ? cfg.maxRules : cfg.maxRules - 1;
    for (let x = 0; x < cfg.numNonterminals; x++) {
      assert.ok(g.depth[x]! >= 1 && g.depth[x]! <= dMax, `nt${x} depth ${g.depth[x]}`);
      assert.ok(g.ruleCount[x]! >= 1 && g.ruleCount[x]! <= rMax, `nt${x} has ${g.ruleCount[x]} rules`);
      let p = 0;
      for (let r = g.ruleStart[x]!; r < g.ruleStart[x]! + g.ruleCount[x]!; r++) {
        p += g.ruleProb[r]!;
        assert.ok(g.rhsLen[r]! >= 1 && g.rhsLen[r]! <= cfg.maxRhsLen - 1, `rule ${r} RHS length ${g.rhsLen[r]}`);
        for (let i = g.rhsStart[r]!; i < g.rhsStart[r]! + g.rhsLen[r]!; i++) {
          const s = g.rhs[i]!;
          if (s >= 0) assert.ok(s < cfg.numTerminals);
          else assert.ok(g.depth[-s - 1]! > g.depth[x]!, `nt${x} (depth ${g.depth[x]}) uses nt${-s - 1} (depth ${g.depth[-s - 1]})`);
        }
      }
      assert.ok(Math.abs(p - 1) < 1e-12, `nt${x} rule probabilities sum to ${p}`);
      let h = 0;
      for (let t = 0; t < cfg.numTerminals; t++) h += g.headProb[x * cfg.numTerminals + t]!;
      assert.ok(Math.abs(h - 1) < 1e-9, `nt${x} head distribution sums to ${h}`);
    }
  }
});

test('grammar: the terminal weight r_Σ sets the terminal share of RHS slots', () => {
  // with weight w against A allowed nonterminals, a slot is a terminal with probability w / (w + A)
  const g = makeGrammar({ ...EASY, numNonterminals: 1, maxRhsLen: 10, maxRules: 200, seed: 5 }); // A = 0: all terminals
  assert.ok(Array.from(g.rhs).every((s) => s >= 0));
  const heavy = makeGrammar({ ...EASY, terminalWeight: 1e9 });
  assert.ok(Array.from(heavy.rhs).every((s) => s >= 0), 'an overwhelming terminal weight still drew a nonterminal');
  const light = makeGrammar({ ...EASY, terminalWeight: 1e-9 });
  const nts = Array.from(light.rhs).filter((s) => s < 0).length;
  const deepest = Math.max(...light.depth);
  // only rules of the deepest nonterminals (no allowed nonterminal) may hold terminals
  let forced = 0;
  for (let x = 0; x < 40; x++) if (light.depth[x] === deepest) for (let r = light.ruleStart[x]!; r < light.ruleStart[x]! + light.ruleCount[x]!; r++) forced += light.rhsLen[r]!;
  assert.equal(light.rhs.length - nts, forced);
});

test('grammar: same seed, same grammar; describeGrammar lists every rule with its head', () => {
  const a = makeGrammar(EASY);
  const b = makeGrammar(EASY);
  assert.deepEqual(a.rhs, b.rhs);
  assert.deepEqual(a.headProb, b.headProb);
  assert.notDeepEqual(makeGrammar({ ...EASY, seed: 43 }).rhs, a.rhs);
  const d = describeGrammar(a);
  assert.equal(d.length, 40);
  assert.equal(d.reduce((s, x) => s + x.rules.length, 0), a.ruleProb.length);
  assert.ok(d.every((x) => x.rules.every((r) => r.rhs.endsWith('HEAD'))));
});

test('trees: heads are rightmost, every non-root node has its parent to its right, fan-out ≤ L_max − 1', () => {
  const g = makeGrammar({ ...EASY, maxRhsLen: 10 });
  const s = new TreeSampler(g, 1024);
  const rng = rngFor(1);
  for (let k = 0; k < 2000; k++) {
    const n = s.sample(rng);
    if (n < 0) continue;
    assert.equal(s.parent[n - 1], -1, 'the root head is not the last terminal');
    const fan = new Int32Array(n);
    for (let i = 0; i < n - 1; i++) {
      assert.ok(s.parent[i]! > i && s.parent[i]! < n, `node ${i} has parent ${s.parent[i]}`);
      fan[s.parent[i]!]!++;
    }
    for (let i = 0; i < n; i++) assert.ok(fan[i]! <= 9, `node ${i} has ${fan[i]} children`);
    for (let i = 0; i < n; i++) assert.ok(s.label[i]! >= 0 && s.label[i]! < 20);
  }
});

test('trees: a yield reaching yieldLimit is rejected (−1), shorter ones are kept', () => {
  const g = makeGrammar({ ...EASY, maxRhsLen: 10 });
  const s = new TreeSampler(g, 8);
  const rng = rngFor(2);
  let rejected = 0;
  for (let k = 0; k < 2000; k++) {
    const n = s.sample(rng);
    if (n < 0) rejected++;
    else assert.ok(n < 8, `kept a yield of ${n} terminals with yieldLimit 8`);
  }
  assert.ok(rejected > 0 && rejected < 2000, `rejected ${rejected} of 2000`);
});
