/**
 * @module pcfg — the random right-headed PCFG behind ATR (paper-setup.md §2.1; arXiv 2505.15105v2 §3 and App. A;
 * tinylang `tinylang/language/pcfg.py`).
 *
 * A grammar is drawn once from its own seed and shared by every model (and every split):
 *   1. each nonterminal X gets a depth score d(X) ∈ {1 … d_max}; a rule for X may only use nonterminals Y with
 *      d(Y) > d(X), so there is no recursion and trees are at most d_max levels deep;
 *   2. each X gets 1 … R_max rules; a right-hand side has 1 … L_max − 1 symbols, each drawn from the allowed
 *      nonterminals (weight 1 each) ∪ TERMINAL (weight r_Σ); a TERMINAL slot becomes a fixed, uniformly random
 *      terminal baked into the rule;
 *   3. rule probabilities ~ Dirichlet(1, …, 1) per X;
 *   4. each X has its own head distribution over Σ ~ Dirichlet(1, …, 1).
 * Expanding X picks a rule, expands its RHS left to right, then samples a head terminal from X's head distribution
 * and places it at the RIGHT end: yield(X → α₁…α_k) = yield(α₁) … yield(α_k) head_X. The head is the parent of every
 * terminal directly in the RHS and of the heads of the nonterminal children; the root's head has no parent.
 *
 * Storage is flat typed arrays (no per-rule objects) because sampling 100k (10, 8192) documents must take seconds.
 */
import { type Rng, rngFor, randInt, randFloat, dirichlet, cumulative, categorical } from './rng.ts';

export interface PcfgConfig {
  numTerminals: number;    // |Σ|: 20 or 8192 in the paper
  numNonterminals: number; // |N| = 40
  maxRhsLen: number;       // L_max: an RHS has 1 … L_max − 1 symbols before the head is appended
  maxRules: number;        // R_max = 5
  maxDepth: number;        // d_max = 10
  terminalWeight: number;  // r_Σ = 20: weight of the TERMINAL choice against 1 per allowed nonterminal
  /** GUESS: the rule count is randint(1, R_max) in the reference; numpy's upper bound is exclusive (1 … R_max − 1),
   *  the issue text says 1 … R_max. true = inclusive (1 … R_max). */
  rulesInclusive: boolean;
  /** GUESS: depth scores: the spec says {1 … d_max}; numpy's randint(1, d_max) would give 1 … d_max − 1. */
  depthInclusive: boolean;
  /** RHS lengths 1 … L_max − 1 (false: the spec, numpy's exclusive randint(1, L_max)) or 1 … L_max (true). The spec is
   *  explicit, but the measured easy-grammar statistics (§2.2) sit at the centre of our grammars' spread only with
   *  true; see src/data/README.md. */
  rhsLenInclusive: boolean;
  seed: number;            // the grammar's own seed (paper: 42)
}

export interface Grammar {
  config: PcfgConfig;
  depth: Int32Array;      // [|N|] depth score of each nonterminal
  ruleStart: Int32Array;  // [|N|] index of X's first rule
  ruleCount: Int32Array;  // [|N|] number of rules of X
  ruleProb: Float64Array; // [R] rule probabilities, X's rules contiguous
  ruleCdf: Float64Array;  // [R] cumulative per nonterminal segment
  rhsStart: Int32Array;   // [R] offset of the rule's RHS in `rhs`
  rhsLen: Int32Array;     // [R]
  rhs: Int32Array;        // symbols: t ≥ 0 is terminal t; −(Y + 1) is nonterminal Y
  headProb: Float64Array; // [|N| · |Σ|] head distribution of each nonterminal
  headCdf: Float64Array;  // [|N| · |Σ|]
}

/** Draws the grammar. Draw order follows tinylang: depths, then all rules, then rule probabilities, then heads. */
export function makeGrammar(config: PcfgConfig): Grammar {
  const { numTerminals: T, numNonterminals: N, maxRhsLen, maxRules, maxDepth, terminalWeight } = config;
  const rng = rngFor(config.seed);

  const depth = new Int32Array(N);
  for (let x = 0; x < N; x++) depth[x] = randInt(rng, 1, config.depthInclusive ? maxDepth : maxDepth - 1);

  const ruleStart = new Int32Array(N);
  const ruleCount = new Int32Array(N);
  const rhsStartL: number[] = [];
  const rhsLenL: number[] = [];
  const rhsL: number[] = [];
  for (let x = 0; x < N; x++) {
    const allowed: number[] = [];
    for (let y = 0; y < N; y++) if (depth[y]! > depth[x]!) allowed.push(y);
    const k = randInt(rng, 1, config.rulesInclusive ? maxRules : maxRules - 1);
    ruleStart[x] = rhsStartL.length;
    ruleCount[x] = k;
    for (let r = 0; r < k; r++) {
      const len = randInt(rng, 1, config.rhsLenInclusive ? maxRhsLen : maxRhsLen - 1);
      rhsStartL.push(rhsL.length);
      rhsLenL.push(len);
      for (let i = 0; i < len; i++) {
        // TERMINAL has weight r_Σ, each allowed nonterminal weight 1 (independent draws, so repeats are possible).
        const u = randFloat(rng) * (terminalWeight + allowed.length);
        if (u < terminalWeight) rhsL.push(randInt(rng, 0, T - 1));
        else rhsL.push(-(allowed[Math.min(allowed.length - 1, Math.floor(u - terminalWeight))]! + 1));
      }
    }
  }

  const R = rhsStartL.length;
  const ruleProb = new Float64Array(R);
  const ruleCdf = new Float64Array(R);
  for (let x = 0; x < N; x++) {
    const p = dirichlet(rng, 1, ruleCount[x]!);
    ruleProb.set(p, ruleStart[x]!);
    ruleCdf.set(cumulative(p), ruleStart[x]!);
  }

  const headProb = new Float64Array(N * T);
  const headCdf = new Float64Array(N * T);
  for (let x = 0; x < N; x++) {
    const p = dirichlet(rng, 1, T);
    headProb.set(p, x * T);
    headCdf.set(cumulative(p), x * T);
  }

  return {
    config, depth, ruleStart, ruleCount, ruleProb, ruleCdf,
    rhsStart: Int32Array.from(rhsStartL), rhsLen: Int32Array.from(rhsLenL), rhs: Int32Array.from(rhsL),
    headProb, headCdf,
  };
}

/** Human-readable rules for meta.json: `{ name: "nt3", depth, rules: [{ rhs: "t5 nt7 HEAD", prob }] }`. */
export function describeGrammar(g: Grammar): { name: string; depth: number; rules: { rhs: string; prob: number }[] }[] {
  const out = [];
  for (let x = 0; x < g.depth.length; x++) {
    const rules = [];
    for (let r = g.ruleStart[x]!; r < g.ruleStart[x]! + g.ruleCount[x]!; r++) {
      const rhs: string[] = [];
      for (let i = 0; i < g.rhsLen[r]!; i++) {
        const s = g.rhs[g.rhsStart[r]! + i]!;
        rhs.push(s >= 0 ? `t${s}` : `nt${-s - 1}`);
      }
      rhs.push('HEAD'); // the head terminal, drawn from this nonterminal's head distribution at expansion time
      rules.push({ rhs: rhs.join(' '), prob: g.ruleProb[r]! });
    }
    out.push({ name: `nt${x}`, depth: g.depth[x]!, rules });
  }
  return out;
}

/**
 * Samples derivation trees into reusable buffers. After `sample()` returns n > 0, `label[0..n)` holds the yield
 * (terminal indices) and `parent[i]` the position of i's parent (−1 for the root's head, which is always at n − 1).
 */
export class TreeSampler {
  readonly label: Int32Array;
  readonly parent: Int32Array;
  private readonly pending: Int32Array; // positions waiting for the head of the expansion that emitted them
  private top = 0;
  private n = 0;
  private readonly cap: number;

  /** Yields with `yieldLimit` or more terminals are rejected (tinylang MAX_LENGTH = 1024). */
  constructor(private readonly g: Grammar, readonly yieldLimit: number) {
    this.cap = yieldLimit - 1;
    this.label = new Int32Array(this.cap);
    this.parent = new Int32Array(this.cap);
    // each open expansion holds at most L_max − 1 pending children, and at most d_max + 1 expansions are open
    this.pending = new Int32Array((g.config.maxDepth + 2) * g.config.maxRhsLen);
  }

  /** One tree from a uniformly random start nonterminal; returns the yield length, or −1 if it hit the limit. */
  sample(rng: Rng): number {
    this.n = 0;
    this.top = 0;
    const root = randInt(rng, 0, this.g.depth.length - 1);
    const h = this.expand(rng, root);
    if (h < 0) return -1;
    this.parent[h] = -1;
    return this.n;
  }

  private emit(t: number): number {
    if (this.n >= this.cap) return -1;
    this.label[this.n] = t;
    return this.n++;
  }

  /** Expands nonterminal x; returns the position of its head, or −1 once the yield limit is hit. */
  private expand(rng: Rng, x: number): number {
    const g = this.g;
    const r = g.ruleStart[x]! + categorical(rng, g.ruleCdf, g.ruleStart[x]!, g.ruleCount[x]!);
    const base = this.top;
    const end = g.rhsStart[r]! + g.rhsLen[r]!;
    for (let i = g.rhsStart[r]!; i < end; i++) {
      const s = g.rhs[i]!;
      const pos = s >= 0 ? this.emit(s) : this.expand(rng, -s - 1);
      if (pos < 0) return -1;
      this.pending[this.top++] = pos;
    }
    const T = g.config.numTerminals;
    const head = this.emit(categorical(rng, g.headCdf, x * T, T));
    if (head < 0) return -1;
    for (let i = base; i < this.top; i++) this.parent[this.pending[i]!] = head;
    this.top = base;
    return head;
  }
}
