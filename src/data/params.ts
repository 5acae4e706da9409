/**
 * @module params — the dataset stage's parameters: defaults, presets and the checks a JSON Schema cannot express.
 *
 * The type comes from schemas/dataset.schema.json (one definition; `npm run gen:types`). The engine validates the
 * shape with ajv; `validateDatasetParams` adds the semantic constraints (pairs ≤ vocabulary, a gen size exactly when
 * pairs are held out, …) and repeats the basic range checks so the library is safe to call on its own. Every issue
 * names its field as a JSON pointer, e.g. `/task/pairs`.
 */
import type { DatasetParams, ArTask, AtrTask, SplitSizes } from '../../schemas/types/dataset.ts';

export type { DatasetParams, ArTask, AtrTask, SplitSizes };

/** Split names in stream order: split i draws from the seed's stream i (see rng.ts), so sizes never shift streams. */
export const SPLITS = ['train', 'dev', 'test', 'gen'] as const;
export type SplitName = (typeof SPLITS)[number];

/** Defaults of the optional fields. The schema states them in each description ("Default: 40."; a `default` keyword
 *  inside oneOf is ignored by ajv) and tests/data/params.test.ts checks that the two agree. */
export const AR_DEFAULTS = { heldOutFraction: 0, unusedTokens: 0 } as const;
export const ATR_DEFAULTS = {
  numNonterminals: 40, // |N|, v2 Table 3b
  maxRules: 5,         // R_max
  maxDepth: 10,        // d_max
  terminalWeight: 20,  // r_Σ
  grammarSeed: 42,     // the paper's single seed
  yieldLimit: 1024,    // tinylang MAX_LENGTH
  heldOutFraction: 0,
  rulesInclusive: true,       // GUESS, see the schema
  depthInclusive: true,       // GUESS
  rhsLenInclusive: false,     // the spec; the measured statistics hint at true (README.md)
  excludeRootChildren: false, // GUESS
} as const;
export const CORRUPTION_DEFAULTS = { excludeContext: false } as const;

export type ResolvedAr = Required<ArTask>;
export type ResolvedAtr = Required<AtrTask>;
export interface ResolvedDatasetParams {
  task: ResolvedAr | ResolvedAtr;
  sizes: SplitSizes;
  seed: number;
  corruption: { excludeContext: boolean };
}

/** Fills every optional field with its default, so meta.json records the full configuration actually used. */
export function resolveDatasetParams(p: DatasetParams): ResolvedDatasetParams {
  const task = p.task.kind === 'ar' ? { ...AR_DEFAULTS, ...p.task } : { ...ATR_DEFAULTS, ...p.task };
  return {
    task: task as ResolvedAr | ResolvedAtr,
    sizes: { ...p.sizes },
    seed: p.seed,
    corruption: { ...CORRUPTION_DEFAULTS, ...p.corruption },
  };
}

/** Splits this dataset has, in stream order: `gen` only when pairs are held out. */
export function splitNames(p: ResolvedDatasetParams): SplitName[] {
  return p.task.heldOutFraction > 0 ? [...SPLITS] : ['train', 'dev', 'test'];
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

export interface ParamIssue {
  path: string;    // JSON pointer to the offending field, e.g. "/task/pairs"
  message: string; // says the value received and what is allowed
}

/** Every problem with `params`, or [] when they are usable. Never throws, whatever it is given. */
export function validateDatasetParams(params: unknown): ParamIssue[] {
  const issues: ParamIssue[] = [];
  const bad = (path: string, message: string): void => { issues.push({ path, message }); };
  if (!isObject(params)) return [{ path: '', message: `dataset params must be an object, got ${show(params)}` }];

  const int = (path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) { bad(path, `must be an integer, got ${show(v)}`); return false; }
    if (v < min || v > max) { bad(path, `must be in [${min}, ${max}], got ${v}`); return false; }
    return true;
  };
  const frac = (path: string, v: unknown): void => {
    if (v === undefined) return;
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) bad(path, `must be a number in [0, 1), got ${show(v)}`);
  };
  const bool = (path: string, v: unknown): void => {
    if (v !== undefined && typeof v !== 'boolean') bad(path, `must be true or false, got ${show(v)}`);
  };

  int('/seed', params.seed, 0, 2147483647);

  const sizes = params.sizes;
  if (!isObject(sizes)) bad('/sizes', `must be an object {train, dev, test[, gen]}, got ${show(sizes)}`);
  else {
    for (const s of ['train', 'dev', 'test'] as const) int(`/sizes/${s}`, sizes[s], 1);
    if (sizes.gen !== undefined) int('/sizes/gen', sizes.gen, 1);
  }

  const c = params.corruption;
  if (c !== undefined && !isObject(c)) bad('/corruption', `must be an object, got ${show(c)}`);
  const excludeContext = isObject(c) && c.excludeContext === true;
  if (isObject(c)) bool('/corruption/excludeContext', c.excludeContext);

  const task = params.task;
  if (!isObject(task)) return [...issues, { path: '/task', message: `must be an object with kind "ar" or "atr", got ${show(task)}` }];
  let heldOut: unknown = task.heldOutFraction;
  if (task.kind === 'ar') {
    const pairs = int('/task/pairs', task.pairs, 1) ? task.pairs as number : undefined;
    const K = int('/task/numKeys', task.numKeys, 2) ? task.numKeys as number : undefined;
    const V = int('/task/numValues', task.numValues, 2) ? task.numValues as number : undefined;
    if (pairs !== undefined && K !== undefined && pairs > K) {
      bad('/task/pairs', `${pairs} pairs need ${pairs} distinct keys, but numKeys is ${K}`);
    }
    if (pairs !== undefined && V !== undefined && pairs > V) {
      bad('/task/pairs', `${pairs} pairs need ${pairs} distinct values, but numValues is ${V}`);
    }
    if (excludeContext && pairs !== undefined && K !== undefined && V !== undefined && (pairs >= K || pairs >= V)) {
      bad('/corruption/excludeContext', `needs a key and a value absent from every document, but pairs = ${pairs} ` +
        `uses all of numKeys = ${K} or numValues = ${V}`);
    }
    frac('/task/heldOutFraction', task.heldOutFraction);
    if (task.unusedTokens !== undefined) int('/task/unusedTokens', task.unusedTokens, 0);
    if (pairs !== undefined && isObject(sizes) && typeof sizes.train === 'number' && sizes.train * (2 * pairs + 5) > 2 ** 31 - 1) {
      bad('/sizes/train', `${sizes.train} documents of ${2 * pairs + 5} tokens exceed one int32 tensor (2^31 − 1 elements)`);
    }
    unknownKeys(task, ['kind', 'pairs', 'numKeys', 'numValues', 'heldOutFraction', 'unusedTokens'], '/task', bad);
  } else if (task.kind === 'atr') {
    int('/task/numTerminals', task.numTerminals, 2);
    int('/task/maxRhsLen', task.maxRhsLen, 2);
    if (task.numNonterminals !== undefined) int('/task/numNonterminals', task.numNonterminals, 1);
    const rulesInclusive = task.rulesInclusive ?? ATR_DEFAULTS.rulesInclusive;
    const depthInclusive = task.depthInclusive ?? ATR_DEFAULTS.depthInclusive;
    // numpy-style exclusive bounds need R_max ≥ 2 / d_max ≥ 2 to leave a non-empty range
    if (task.maxRules !== undefined) int('/task/maxRules', task.maxRules, rulesInclusive ? 1 : 2);
    if (task.maxDepth !== undefined) int('/task/maxDepth', task.maxDepth, depthInclusive ? 1 : 2);
    if (task.terminalWeight !== undefined && !(typeof task.terminalWeight === 'number' && task.terminalWeight > 0 && Number.isFinite(task.terminalWeight))) {
      bad('/task/terminalWeight', `must be a finite number > 0, got ${show(task.terminalWeight)}`);
    }
    if (task.grammarSeed !== undefined) int('/task/grammarSeed', task.grammarSeed, 0, 2147483647);
    if (task.yieldLimit !== undefined) int('/task/yieldLimit', task.yieldLimit, 4);
    frac('/task/heldOutFraction', task.heldOutFraction);
    bool('/task/rulesInclusive', task.rulesInclusive);
    bool('/task/depthInclusive', task.depthInclusive);
    bool('/task/excludeRootChildren', task.excludeRootChildren);
    bool('/task/rhsLenInclusive', task.rhsLenInclusive);
    unknownKeys(task, ['kind', 'numTerminals', 'maxRhsLen', 'numNonterminals', 'maxRules', 'maxDepth', 'terminalWeight',
      'grammarSeed', 'yieldLimit', 'heldOutFraction', 'rulesInclusive', 'depthInclusive', 'excludeRootChildren',
      'rhsLenInclusive'], '/task', bad);
  } else {
    bad('/task/kind', `must be "ar" or "atr", got ${show(task.kind)}`);
    heldOut = undefined;
  }

  if (isObject(sizes) && (task.kind === 'ar' || task.kind === 'atr')) {
    const holds = typeof heldOut === 'number' && heldOut > 0;
    if (holds && sizes.gen === undefined) {
      bad('/sizes/gen', `is required when task.heldOutFraction > 0 (got ${heldOut}): it is the size of the held-out split`);
    }
    if (!holds && sizes.gen !== undefined) {
      bad('/sizes/gen', `is only meaningful with task.heldOutFraction > 0 (got ${show(heldOut ?? 0)}); remove it or hold out pairs`);
    }
  }
  unknownKeys(params, ['task', 'sizes', 'seed', 'corruption'], '', bad);
  return issues;
}

/** One message listing every issue, for a thrown Error. */
export function formatIssues(issues: ParamIssue[]): string {
  return `invalid dataset params:\n${issues.map((i) => `  ${i.path || '/'}: ${i.message}`).join('\n')}`;
}

/** Throws with every issue listed unless `params` are valid; returns them resolved. */
export function checkDatasetParams(params: DatasetParams): ResolvedDatasetParams {
  const issues = validateDatasetParams(params);
  if (issues.length > 0) throw new Error(formatIssues(issues));
  return resolveDatasetParams(params);
}

function unknownKeys(o: Record<string, unknown>, known: string[], at: string, bad: (p: string, m: string) => void): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) bad(`${at}/${k}`, `is not a known field (known: ${known.join(', ')})`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
}

// ---------------------------------------------------------------------------------------------------------------
// Presets: the paper's settings (paper-setup.md §1.1, §2.1) and the CPU-scale ones (§10.1, calibration.md).

export const PAPER_SIZES: SplitSizes = { train: 100_032, dev: 320, test: 320 }; // 3126 batches × 32; 5 × 64 eval

export const TASK_PRESETS = {
  /** ar_32: 16 pairs, 4096 + 4096, vocab 8196 including tinylang's one unused id. */
  'ar-paper': { kind: 'ar', pairs: 16, numKeys: 4096, numValues: 4096, unusedTokens: 1 },
  /** ar_gen: ar_32 with 20% of (key, value) pairs held out for the gen split. */
  'ar-paper-gen': { kind: 'ar', pairs: 16, numKeys: 4096, numValues: 4096, unusedTokens: 1, heldOutFraction: 0.2 },
  /** calibration.md's default CPU study: 3 pairs, 16 + 16 (V = 35, L = 11). */
  'ar-default': { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 },
  /** §10.1 AR-mini: 8 pairs, 128 + 128 (V = 259, L = 21). */
  'ar-mini': { kind: 'ar', pairs: 8, numKeys: 128, numValues: 128 },
  /** pcfg_easy = pcfg_5_20 (the easy/medium naming is a GUESS in the spec, consistent with v2). */
  'atr-easy': { kind: 'atr', numTerminals: 20, maxRhsLen: 5 },
  /** pcfg_medium = pcfg_10_20. */
  'atr-medium': { kind: 'atr', numTerminals: 20, maxRhsLen: 10 },
  'atr-easy-8192': { kind: 'atr', numTerminals: 8192, maxRhsLen: 5 },
  'atr-medium-8192': { kind: 'atr', numTerminals: 8192, maxRhsLen: 10 },
  /** §10.1 ATR-mini with its optional cap: easy grammar, documents of at most 64 tokens (yield ≤ 59). Rejecting the
   *  longer sentences is a documented deviation from the paper. */
  'atr-easy-cap64': { kind: 'atr', numTerminals: 20, maxRhsLen: 5, yieldLimit: 60 },
  /** pcfg_gen: the easy grammar with 20% of (parent-label, child-label) pairs held out. */
  'atr-easy-gen': { kind: 'atr', numTerminals: 20, maxRhsLen: 5, heldOutFraction: 0.2 },
} as const satisfies Record<string, ArTask | AtrTask>;
