/**
 * @module atr — Associative Treecall documents from the PCFG (paper-setup.md §2.2; arXiv 2505.15105v2 §3).
 *
 *   <bos> t … t <eos> child parent <eos>
 *
 * Only PARENT queries are made, so no query-type token appears. A (child, parent) edge of the derivation is eligible
 * when the child is the RIGHTMOST occurrence of its label in the sentence (tinylang `unambiguous_queries`: the label
 * then names one position, so the parent is well defined). Sampling is parent-first (tinylang `sample_first =
 * "target"`): a parent node uniformly among the nodes with an eligible child, then one of its eligible children
 * uniformly, which weights each edge inversely by its parent's child count.
 *
 * Rejected and redrawn (§2.1): yields with `yieldLimit` or more terminals, yields shorter than 3, and sentences with
 * no eligible query (under the split's held-out rule).
 *
 * Positions, mapped onto AR's names (the key is what the query refers back to, the value what must be retrieved):
 *   key      1 + c   the in-context child        [query_item_orig]
 *   value    1 + p   the in-context parent       [target_item_orig]; always right of the key (p > c)
 *   next_key 2 + p   the token after the parent (the divider when the parent is the root's head, the last terminal)
 *   divider  n + 1   the <eos> after the sentence
 *   query    n + 2   the child again; the parent is predicted here [query_item]
 *   answer   n + 3   the parent again (after the prediction point; a control) [target_item]
 *
 * Held-out pairs (v2 §5.3, tinylang `pcfg_train_test_split`): a fixed fraction of (parent-label, child-label) pairs
 * is never queried in train/dev/test and is the only thing queried in `gen` (the paper calls that split "test").
 *
 * Counterfactuals: the key (child) or the value (parent) is replaced by another terminal, uniform over the other
 * |Σ| − 1 (the paper: the new terminal may also occur elsewhere in the sentence). With `excludeContext` it is drawn from the terminals absent from the sentence; when
 * every terminal occurs (small |Σ|, long sentence) it falls back to any other terminal, and the collision rate in
 * meta.json counts those cases.
 */
import { type Rng, randInt, isHeldOutPair } from './rng.ts';
import { SplitBuffer, type SplitSpec } from './examples.ts';
import { type Grammar, TreeSampler } from './pcfg.ts';
import { BOS, EOS, terminalId } from './vocab.ts';

export interface AtrOptions {
  heldOutFraction: number; // fraction of (parent-label, child-label) pairs reserved for `gen`; 0 = none
  yieldLimit: number;      // reject sentences with this many terminals or more (tinylang: 1024)
  /** GUESS: tinylang's `no_start_queries` (default true in pcfg.py) drops children of the root's head from the
   *  eligible queries; the spec lists every edge as eligible. true = drop them. */
  excludeRootChildren: boolean;
}

export interface AtrRejections { tooLong: number; tooShort: number; noQuery: number }

const MAX_REDRAWS = 100_000;

/**
 * The eligible (child, parent) edges of one sentence, and the parent-first draw among them. Buffers are reused
 * across sentences; `seen` is stamped per sentence instead of cleared, so |Σ| = 8192 costs nothing per document.
 */
export class ParentFirstQuery {
  private readonly seen: Int32Array;      // seen[t] === stamp ⇔ terminal t occurs in the current sentence
  private stamp = 0;
  private readonly eligible: Uint8Array;  // eligible[c] ⇔ (c, parent[c]) may be queried
  private readonly childCount: Int32Array; // eligible children per parent position
  private readonly parents: Int32Array;   // distinct parents with an eligible child, in order of first appearance
  private numParents = 0;
  /** Distinct terminals in the last scanned sentence. */
  distinct = 0;

  constructor(numTerminals: number, capacity: number) {
    this.seen = new Int32Array(numTerminals);
    this.eligible = new Uint8Array(capacity);
    this.childCount = new Int32Array(capacity);
    this.parents = new Int32Array(capacity);
  }

  /**
   * Marks the edges whose child is the rightmost occurrence of its label and that `accept(child, parent)` keeps.
   * Returns the number of parents with at least one eligible child (0: the sentence has no query).
   */
  scan(label: Int32Array, parent: Int32Array, n: number, accept: (c: number, p: number) => boolean): number {
    const { seen, eligible, childCount, parents } = this;
    const stamp = ++this.stamp;
    this.distinct = 0;
    for (let j = n - 1; j >= 0; j--) { // right to left: the first sighting of a label is its rightmost occurrence
      const t = label[j]!;
      const rightmost = seen[t] !== stamp;
      if (rightmost) { seen[t] = stamp; this.distinct++; }
      const p = parent[j]!;
      eligible[j] = rightmost && p >= 0 && accept(j, p) ? 1 : 0;
      childCount[j] = 0;
    }
    let np = 0;
    for (let c = 0; c < n; c++) {
      if (!eligible[c]) continue;
      const p = parent[c]!;
      if (childCount[p] === 0) parents[np++] = p;
      childCount[p]!++;
    }
    return (this.numParents = np);
  }

  /** Parent-first: a parent uniformly among those with an eligible child, then one of its eligible children
   *  uniformly. Returns the child's position; its parent is parent[child]. Call after scan() returned > 0. */
  pick(rng: Rng, parent: Int32Array): number {
    const p = this.parents[randInt(rng, 0, this.numParents - 1)]!;
    let k = randInt(rng, 0, this.childCount[p]! - 1);
    for (let c = 0; c < p; c++) if (this.eligible[c] && parent[c] === p && k-- === 0) return c;
    throw new Error(`atr: parent ${p} lost its eligible children (internal error)`);
  }

  /** Whether terminal t occurs in the last scanned sentence. */
  occurs(t: number): boolean {
    return this.seen[t] === this.stamp;
  }
}

export function generateAtr(g: Grammar, opts: AtrOptions, spec: SplitSpec): { split: SplitBuffer; rejected: AtrRejections } {
  const T = g.config.numTerminals;
  const sampler = new TreeSampler(g, opts.yieldLimit);
  const { label, parent } = sampler;
  const query = new ParentFirstQuery(T, opts.yieldLimit);
  const out = new SplitBuffer(spec.n, spec.n * 24);
  const rejected: AtrRejections = { tooLong: 0, tooShort: 0, noQuery: 0 };
  const rng = spec.rng;
  const wantHeld = spec.heldOut === 'only';
  let n = 0;
  const accept = (c: number, p: number): boolean =>
    !(opts.excludeRootChildren && p === n - 1) &&
    isHeldOutPair(spec.maskSeed, opts.heldOutFraction, label[p]!, label[c]!) === wantHeld;

  for (let i = 0; i < spec.n; i++) {
    for (let attempt = 0; ; attempt++) {
      if (attempt === MAX_REDRAWS) {
        throw new Error(`atr: no acceptable sentence in ${MAX_REDRAWS} draws (rejected ${JSON.stringify(rejected)}; ` +
          `heldOutFraction = ${opts.heldOutFraction}, yieldLimit = ${opts.yieldLimit})`);
      }
      n = sampler.sample(rng);
      if (n < 0) { rejected.tooLong++; continue; }
      if (n < 3) { rejected.tooShort++; continue; }
      if (query.scan(label, parent, n, accept) === 0) { rejected.noQuery++; continue; }
      break;
    }
    const c = query.pick(rng, parent);
    const p = parent[c]!;

    const len = n + 5;
    const at = out.reserve(len);
    const t = out.tokens;
    t[at] = BOS;
    for (let j = 0; j < n; j++) t[at + 1 + j] = terminalId(label[j]!);
    t[at + n + 1] = EOS;
    t[at + n + 2] = terminalId(label[c]!);
    t[at + n + 3] = terminalId(label[p]!);
    t[at + n + 4] = EOS;

    out.answers[i] = terminalId(label[p]!);
    out.pos.key[i] = 1 + c;
    out.pos.value[i] = 1 + p;
    out.pos.next_key[i] = 2 + p;
    out.pos.divider[i] = n + 1;
    out.pos.query[i] = n + 2;
    out.pos.answer[i] = n + 3;
    const avoid = spec.excludeContext && query.distinct < T; // when every terminal occurs, no replacement avoids them
    out.keyCorrupted[i] = terminalId(corrupt(rng, T, label[c]!, avoid, query));
    out.valueCorrupted[i] = terminalId(corrupt(rng, T, label[p]!, avoid, query));
    out.commit(len);
    if (spec.progress && (i + 1) % 1024 === 0) spec.progress(i + 1);
  }
  return { split: out, rejected };
}

/** Another terminal than `orig`: uniform over the other |Σ| − 1, or (excludeContext) over those absent from the sentence. */
function corrupt(rng: Rng, T: number, orig: number, excludeContext: boolean, sentence: ParentFirstQuery): number {
  for (;;) {
    const r = randInt(rng, 0, T - 2);
    const t = r >= orig ? r + 1 : r;
    if (!excludeContext || !sentence.occurs(t)) return t;
  }
}
