/**
 * @module dataset — builds every split of a dataset and writes it: `<split>.safetensors` + `meta.json`
 * (+ `grammar.safetensors` for ATR). This is the library function the dataset stage calls; it knows nothing of the
 * engine. Same params ⇒ byte-identical files: all randomness comes from the seeds, tensors are written in sorted
 * order (io/safetensors.ts) and meta.json is canonical JSON (sorted keys, fixed indentation).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors, type Tensor, i32 } from '../io/safetensors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { rngFor } from './rng.ts';
import { SplitBuffer, splitTensors, splitStats, POSITIONS, round4 } from './examples.ts';
import { generateAr } from './ar.ts';
import { generateAtr, type AtrRejections } from './atr.ts';
import { makeGrammar, describeGrammar, type Grammar } from './pcfg.ts';
import { type Vocab, arVocab, atrVocab, FIRST } from './vocab.ts';
import {
  type DatasetParams, type ResolvedDatasetParams, type ResolvedAtr, type SplitName,
  checkDatasetParams, splitNames, SPLITS,
} from './params.ts';

/** Bumped whenever the files' layout or meaning changes (readers check it). */
export const DATASET_FORMAT = 'mecheval.dataset/1';

export interface GeneratedDataset {
  params: ResolvedDatasetParams;
  vocab: Vocab;
  splits: Partial<Record<SplitName, SplitBuffer>>;
  grammar?: Grammar;
  rejected: Partial<Record<SplitName, AtrRejections>>;
  width: number; // Lmax: the longest document over all splits; every split is padded to it
}

export interface DatasetSummary {
  dir: string;
  files: string[];                                   // written, relative to dir, sorted
  task: 'ar' | 'atr';
  vocabSize: number;
  width: number;
  splits: Partial<Record<SplitName, { n: number; meanLength: number }>>;
}

/** Generates every split in memory. `progress(done, total)` counts documents over all splits. */
export function generateDataset(params: DatasetParams, progress?: (step: number, total: number) => void): GeneratedDataset {
  const p = checkDatasetParams(params);
  const names = splitNames(p);
  const total = names.reduce((s, n) => s + p.sizes[n]!, 0);
  let before = 0;
  const splits: GeneratedDataset['splits'] = {};
  const rejected: GeneratedDataset['rejected'] = {};
  let grammar: Grammar | undefined;
  let vocab: Vocab;

  const task = p.task;
  if (task.kind === 'atr') {
    grammar = makeGrammar({
      numTerminals: task.numTerminals, numNonterminals: task.numNonterminals, maxRhsLen: task.maxRhsLen,
      maxRules: task.maxRules, maxDepth: task.maxDepth, terminalWeight: task.terminalWeight,
      rulesInclusive: task.rulesInclusive, depthInclusive: task.depthInclusive, rhsLenInclusive: task.rhsLenInclusive,
      seed: task.grammarSeed,
    });
    vocab = atrVocab(task.numTerminals);
  } else {
    vocab = arVocab(task.numKeys, task.numValues, task.unusedTokens);
  }

  for (const name of names) {
    const spec = {
      n: p.sizes[name]!,
      rng: rngFor(p.seed, SPLITS.indexOf(name)),
      heldOut: name === 'gen' ? 'only' as const : 'exclude' as const,
      maskSeed: p.seed,
      excludeContext: p.corruption.excludeContext,
      progress: progress && ((done: number) => progress(before + done, total)),
    };
    if (task.kind === 'ar') {
      splits[name] = generateAr(task, spec);
    } else {
      const r = generateAtr(grammar!, task, spec);
      splits[name] = r.split;
      rejected[name] = r.rejected;
    }
    before += spec.n;
    progress?.(before, total);
  }
  const width = Math.max(...names.map((n) => splits[n]!.maxLength()));
  return { params: p, vocab, splits, grammar, rejected, width };
}

/** Generates and writes the dataset into `outDir` (created if missing). */
export function buildDataset(params: DatasetParams, outDir: string, progress?: (step: number, total: number) => void): DatasetSummary {
  const d = generateDataset(params, progress);
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const summary: DatasetSummary['splits'] = {};
  for (const [name, s] of Object.entries(d.splits) as [SplitName, SplitBuffer][]) {
    const file = `${name}.safetensors`;
    writeSafetensors(join(outDir, file), splitTensors(s, d.width), { format: DATASET_FORMAT, split: name });
    files.push(file);
    summary[name] = { n: s.n, meanLength: round4(meanLength(s)) };
  }
  if (d.grammar) {
    writeSafetensors(join(outDir, 'grammar.safetensors'), grammarTensors(d.grammar), { format: DATASET_FORMAT });
    files.push('grammar.safetensors');
  }
  writeFileAtomic(join(outDir, 'meta.json'), canonicalJson(datasetMeta(d)) + '\n');
  files.push('meta.json');
  return { dir: outDir, files: files.sort(), task: d.params.task.kind, vocabSize: d.vocab.size, width: d.width, splits: summary };
}

/** Everything a reader needs besides the tensors: config, vocabulary, position meanings, grammar, statistics. */
export function datasetMeta(d: GeneratedDataset): Record<string, unknown> {
  const task = d.params.task;
  const vocab: Record<string, unknown> = { size: d.vocab.size, names: d.vocab.names, pad: 0, bos: 1, eos: 2 };
  if (task.kind === 'ar') {
    vocab.keys = [FIRST, FIRST + task.numKeys]; // half-open id ranges
    vocab.values = [FIRST + task.numKeys, FIRST + task.numKeys + task.numValues];
  } else {
    vocab.terminals = [FIRST, FIRST + task.numTerminals];
  }
  const splits: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(d.splits) as [SplitName, SplitBuffer][]) {
    splits[name] = { file: `${name}.safetensors`, n: s.n, stats: splitStats(s), ...(d.rejected[name] ? { rejected: d.rejected[name] } : {}) };
  }
  const meta: Record<string, unknown> = {
    format: DATASET_FORMAT,
    task: task.kind,
    config: d.params,
    vocab,
    width: d.width,
    splits,
    tensors: Object.fromEntries([
      ...['tokens', 'tokens_key_corrupted', 'tokens_value_corrupted'].map((t) => [t, `int32 [N, ${d.width}], PAD = 0 after lengths[i]`]),
      ...['lengths', 'answers', ...POSITIONS.map((q) => `pos_${q}`)].map((t) => [t, 'int32 [N]']),
    ]),
    positions: POSITION_MEANINGS[task.kind],
    generator: 'pure-rand xoroshiro128+ (one jumped stream per split: train 0, dev 1, test 2, gen 3); see src/data/README.md',
  };
  if (d.grammar) meta.grammar = atrGrammarMeta(d.grammar, task as ResolvedAtr, d.splits);
  return meta;
}

const POSITION_MEANINGS = {
  ar: {
    key: 'in-context key k_q (2q+1) [tinylang query_item_orig]',
    value: 'in-context value v_q (2q+2) [target_item_orig]',
    next_key: 'token after the value (2q+3): the next key, or the divider for the last pair',
    divider: '<eos> before the query (len-4)',
    query: 'final k_q (len-3): the answer is predicted here [query_item]',
    answer: 'final v_q (len-2), after the prediction point [target_item]',
  },
  atr: {
    key: 'in-context child: the rightmost occurrence of its label [query_item_orig]',
    value: 'in-context parent (head) of the child, always right of it [target_item_orig]',
    next_key: 'token after the parent (value+1); the divider when the parent is the root head',
    divider: '<eos> after the sentence (len-4)',
    query: 'child again (len-3): the parent is predicted here [query_item]',
    answer: 'parent again (len-2), after the prediction point [target_item]',
  },
} as const;

function atrGrammarMeta(g: Grammar, task: ResolvedAtr, splits: GeneratedDataset['splits']): Record<string, unknown> {
  // "repeated labels": share of sentence positions whose terminal also occurs elsewhere in that sentence
  let repeated = 0;
  let total = 0;
  const s = splits.train!;
  const count = new Int32Array(task.numTerminals + FIRST);
  for (let i = 0; i < s.n; i++) {
    const doc = s.doc(i);
    const end = s.pos.divider[i]!;
    for (let j = 1; j < end; j++) count[doc[j]!]!++;
    for (let j = 1; j < end; j++) if (count[doc[j]!]! > 1) repeated++;
    for (let j = 1; j < end; j++) count[doc[j]!] = 0;
    total += end - 1;
  }
  return {
    nonterminals: describeGrammar(g),
    headDistributions: 'grammar.safetensors: head_prob [|N|, |Σ|] (F64), plus the rules as flat arrays',
    trainRepeatedLabelFraction: round4(total ? repeated / total : 0),
  };
}

function grammarTensors(g: Grammar): Record<string, Tensor> {
  const N = g.depth.length;
  const T = g.config.numTerminals;
  const f64 = (shape: number[], data: Float64Array): Tensor => ({ dtype: 'F64', shape, data });
  return {
    depth: i32([N], g.depth),
    rule_start: i32([N], g.ruleStart),
    rule_count: i32([N], g.ruleCount),
    rule_prob: f64([g.ruleProb.length], g.ruleProb),
    rhs_start: i32([g.rhsStart.length], g.rhsStart),
    rhs_len: i32([g.rhsLen.length], g.rhsLen),
    rhs: i32([g.rhs.length], g.rhs), // t ≥ 0: terminal t (token id t + 3); −(Y + 1): nonterminal Y
    head_prob: f64([N, T], g.headProb),
  };
}

function meanLength(s: SplitBuffer): number {
  return s.n ? s.offsets[s.n]! / s.n : 0;
}

/** JSON with object keys sorted at every level and 1-space indentation: the same value always gives the same bytes. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v), null, 1);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, sortKeys(o[k])]));
  }
  return v;
}
