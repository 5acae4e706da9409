/**
 * @module ar — Associative Recall documents (paper-setup.md §1; tinylang `tinylang/language/ar.py`).
 *
 *   <bos> k_1 v_1 … k_n v_n <eos> k_q v_q <eos>
 *
 * Keys and values come from disjoint vocabularies and are drawn without replacement within a document, each
 * independently; key i is paired with value i. One query pair q is drawn uniformly (among the eligible pairs, see
 * held-out below); the model must predict v_q at the position of the final k_q.
 *
 * Positions (BOS at 0; tinylang probing-schema names in brackets):
 *   key      2q+1   the in-context k_q            [query_item_orig]
 *   value    2q+2   the in-context v_q            [target_item_orig]
 *   next_key 2q+3   the token after the value: k_{q+1}, or the divider when q is the last pair
 *   divider  2n+1   the <eos> before the query     [divider]
 *   query    2n+2   the final k_q; the prediction is made here [query_item]
 *   answer   2n+3   the final v_q (after the prediction point; a control) [target_item]
 *
 * Held-out pairs (tinylang `ar_train_test_split`, used by `ar_gen`): a fixed fraction of all (key, value) pairs is
 * never queried in train/dev/test and is the only thing queried in `gen`. Held-out pairs may still appear in the
 * context of any split, as in tinylang, which only restricts the query. A document with no eligible pair is redrawn.
 *
 * Counterfactuals (§5.1): the key counterfactual replaces the in-context k_q by another key id, the value
 * counterfactual replaces the in-context v_q by another value id, both uniform over the rest of their vocabulary.
 * By default (as in the paper) the replacement may collide with a key/value already in the document; with
 * `excludeContext` it is drawn only from ids absent from the document.
 */
import { type Rng, randInt, isHeldOutPair } from './rng.ts';
import { SplitBuffer, type SplitSpec } from './examples.ts';
import { BOS, EOS, keyId, valueId } from './vocab.ts';

export interface ArConfig {
  pairs: number;           // n: key–value pairs per document (paper: 16, i.e. "32" KV tokens)
  numKeys: number;         // K: key vocabulary (paper: 4096)
  numValues: number;       // V: value vocabulary (paper: 4096)
  heldOutFraction: number; // fraction of (key, value) pairs reserved for the `gen` split; 0 = no gen split
}

/** Redraws allowed per document before we conclude the held-out mask makes the split impossible. */
const MAX_REDRAWS = 100_000;

export const arLength = (pairs: number): number => 2 * pairs + 5; // bos, n pairs, eos, k_q, v_q, eos

export function generateAr(cfg: ArConfig, spec: SplitSpec): SplitBuffer {
  const { pairs: n, numKeys: K, numValues: V, heldOutFraction: f } = cfg;
  const len = arLength(n);
  const out = new SplitBuffer(spec.n, spec.n * len);
  // Persistent permutations: a partial Fisher–Yates over the first n slots draws n distinct ids uniformly in O(n),
  // whatever order the previous document left behind; slots n… then hold exactly the ids absent from the document.
  const keys = Int32Array.from({ length: K }, (_, i) => i);
  const values = Int32Array.from({ length: V }, (_, i) => i);
  const eligible = new Int32Array(n);
  const rng = spec.rng;

  for (let i = 0; i < spec.n; i++) {
    let m = 0;
    for (let attempt = 0; m === 0; attempt++) {
      if (attempt === MAX_REDRAWS) {
        throw new Error(`ar: no document with an eligible query pair in ${MAX_REDRAWS} draws ` +
          `(heldOutFraction = ${f}, split queries ${spec.heldOut === 'only' ? 'held-out' : 'non-held-out'} pairs)`);
      }
      partialShuffle(rng, keys, n);
      partialShuffle(rng, values, n);
      m = 0;
      for (let j = 0; j < n; j++) {
        const held = isHeldOutPair(spec.maskSeed, f, keys[j]!, values[j]!);
        if (held === (spec.heldOut === 'only')) eligible[m++] = j;
      }
    }
    const q = eligible[randInt(rng, 0, m - 1)]!; // uniform over the eligible pairs (all n without a held-out mask)

    const at = out.reserve(len);
    const t = out.tokens;
    t[at] = BOS;
    for (let j = 0; j < n; j++) {
      t[at + 1 + 2 * j] = keyId(keys[j]!);
      t[at + 2 + 2 * j] = valueId(K, values[j]!);
    }
    t[at + 2 * n + 1] = EOS;
    t[at + 2 * n + 2] = keyId(keys[q]!);
    t[at + 2 * n + 3] = valueId(K, values[q]!);
    t[at + len - 1] = EOS;

    out.answers[i] = valueId(K, values[q]!);
    out.pos.key[i] = 2 * q + 1;
    out.pos.value[i] = 2 * q + 2;
    out.pos.next_key[i] = 2 * q + 3;
    out.pos.divider[i] = 2 * n + 1;
    out.pos.query[i] = 2 * n + 2;
    out.pos.answer[i] = 2 * n + 3;
    out.keyCorrupted[i] = keyId(corrupt(rng, keys, n, q, spec.excludeContext));
    out.valueCorrupted[i] = valueId(K, corrupt(rng, values, n, q, spec.excludeContext));
    out.commit(len);
    if (spec.progress && (i + 1) % 1024 === 0) spec.progress(i + 1);
  }
  return out;
}

/** Puts a uniformly random ordered n-subset of `ids` into ids[0..n). */
function partialShuffle(rng: Rng, ids: Int32Array, n: number): void {
  const last = ids.length - 1;
  for (let j = 0; j < n; j++) {
    const r = randInt(rng, j, last);
    const tmp = ids[j]!;
    ids[j] = ids[r]!;
    ids[r] = tmp;
  }
}

/**
 * Another id for slot q of the document in ids[0..n): uniform over every other id (the paper; collisions with the
 * rest of the document allowed), or with `excludeContext` uniform over the ids absent from the document (ids[n..]).
 */
function corrupt(rng: Rng, ids: Int32Array, n: number, q: number, excludeContext: boolean): number {
  if (excludeContext) return ids[randInt(rng, n, ids.length - 1)]!;
  const orig = ids[q]!;
  const r = randInt(rng, 0, ids.length - 2);
  return r >= orig ? r + 1 : r;
}
