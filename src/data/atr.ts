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
 * |Σ| − 1 (the paper; the new terminal may occur elsewhere in the sentence, which can even make the query label's
 * rightmost occurrence move). With `excludeContext` it is drawn from the terminals absent from the sentence; when
 * every terminal occurs (small |Σ|, long sentence) it falls back to any other terminal, and the collision rate in
 * meta.json counts those cases.
 */
import { type Rng, randInt } from './rng.ts';
import { SplitBuffer, type SplitSpec } from './examples.ts';
import { type Grammar, TreeSampler } from './pcfg.ts';
import { BOS, EOS, terminalId } from './vocab.ts';
import { isHeldOutPair } from './ar.ts';

export interface AtrOptions {
  heldOutFraction: number; // fraction of (parent-label, child-label) pairs reserved for `gen`; 0 = none
  yieldLimit: number;      // reject sentences with this many terminals or more (tinylang: 1024)
  /** GUESS: tinylang's `no_start_queries` (default true in pcfg.py) drops children of the root's head from the
   *  eligible queries; the spec lists every edge as eligible. true = drop them. */
  excludeRootChildren: boolean;
}

export interface AtrRejections { tooLong: number; tooShort: number; noQuery: number }

const MAX_REDRAWS = 100_000;

export function generateAtr(g: Grammar, opts: AtrOptions, spec: SplitSpec): { split: SplitBuffer; rejected: AtrRejections } {
  const T = g.config.numTerminals;
  const sampler = new TreeSampler(g, opts.yieldLimit);
  const { label, parent } = sampler;
  const cap = opts.yieldLimit;
  const out = new SplitBuffer(spec.n, spec.n * 24);
  const rejected: AtrRejections = { tooLong: 0, tooShort: 0, noQuery: 0 };
  const rng = spec.rng;

  const seen = new Int32Array(T);           // seen[t] === stamp ⇔ t occurs in the current sentence
  let stamp = 0;
  const rightmost = new Uint8Array(cap);
  const childCount = new Int32Array(cap);   // eligible children per parent position
  const parents = new Int32Array(cap);      // distinct parents with an eligible child, in order of first appearance
  const wantHeld = spec.heldOut === 'only';

  for (let i = 0; i < spec.n; i++) {
    let n = 0;
    let np = 0;
    let distinct = 0;
    for (let attempt = 0; ; attempt++) {
      if (attempt === MAX_REDRAWS) {
        throw new Error(`atr: no acceptable sentence in ${MAX_REDRAWS} draws (rejected ${JSON.stringify(rejected)}; ` +
          `heldOutFraction = ${opts.heldOutFraction}, yieldLimit = ${opts.yieldLimit})`);
      }
      n = sampler.sample(rng);
      if (n < 0) { rejected.tooLong++; continue; }
      if (n < 3) { rejected.tooShort++; continue; }
      // rightmost occurrence of each label, scanning from the right
      stamp++;
      distinct = 0;
      for (let j = n - 1; j >= 0; j--) {
        const t = label[j]!;
        rightmost[j] = seen[t] === stamp ? 0 : 1;
        if (seen[t] !== stamp) { seen[t] = stamp; distinct++; }
      }
      np = 0;
      for (let j = 0; j < n; j++) childCount[j] = 0;
      for (let c = 0; c < n; c++) {
        const p = parent[c]!;
        if (p < 0 || !rightmost[c]) continue;
        if (opts.excludeRootChildren && p === n - 1) continue;
        if (isHeldOutPair(spec.maskSeed, opts.heldOutFraction, label[p]!, label[c]!) !== wantHeld) continue;
        if (childCount[p] === 0) parents[np++] = p;
        childCount[p]!++;
      }
      if (np === 0) { rejected.noQuery++; continue; }
      break;
    }

    // parent-first: a parent uniformly, then its k-th eligible child (same filters as above, in position order)
    const p = parents[randInt(rng, 0, np - 1)]!;
    let k = randInt(rng, 0, childCount[p]! - 1);
    let c = -1;
    for (let j = 0; j < p; j++) {
      if (parent[j] !== p || !rightmost[j]) continue;
      if (isHeldOutPair(spec.maskSeed, opts.heldOutFraction, label[p]!, label[j]!) !== wantHeld) continue;
      if (k-- === 0) { c = j; break; }
    }

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
    const full = distinct === T; // every terminal occurs: no collision-free replacement exists
    out.keyCorrupted[i] = terminalId(corrupt(rng, T, label[c]!, spec.excludeContext && !full, seen, stamp));
    out.valueCorrupted[i] = terminalId(corrupt(rng, T, label[p]!, spec.excludeContext && !full, seen, stamp));
    out.commit(len);
    if (spec.progress && (i + 1) % 1024 === 0) spec.progress(i + 1);
  }
  return { split: out, rejected };
}

/** Another terminal than `orig`: uniform over the other |Σ| − 1, or (excludeContext) over those absent from the sentence. */
function corrupt(rng: Rng, T: number, orig: number, excludeContext: boolean, seen: Int32Array, stamp: number): number {
  for (;;) {
    const r = randInt(rng, 0, T - 2);
    const t = r >= orig ? r + 1 : r;
    if (!excludeContext || seen[t] !== stamp) return t;
  }
}
