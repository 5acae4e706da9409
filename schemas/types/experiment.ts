/* Generated from schemas/experiment.schema.json by `npm run gen:types`. Do not edit by hand. */

export type Mixer = 'attention' | 'base_conv' | 'based' | 'mamba' | 'delta_net' | 'h3' | 'hyena';
/**
 * One list for every mixer, or per mixer with an optional `default` entry.
 */
export type PerMixerNumbers =
  | [number, ...number[]]
  | {
      /**
       * @minItems 1
       */
      [k: string]: [number, ...number[]] | undefined;
    };
export type PerMixerInteger =
  | number
  | {
      [k: string]: number | undefined;
    };

/**
 * A study as configuration: tasks, the model/training grid per run group, evaluation, interventions and the report. `npm run pipeline -- report --config NAME|FILE` builds its DAG (configs/<name>.json are the built-in ones). Start a config file with "$schema": "../schemas/experiment.schema.json" for editor completion.
 */
export interface Experiment {
  $schema?: string;
  /**
   * Names the lock file (pipeline.<name>.lock.json) and the report.
   */
  name: string;
  description?: string;
  /**
   * Task name → dataset params (schemas/dataset.schema.json). The name becomes part of stage ids: dataset/<name>, train/<name>/….
   */
  tasks: {
    [k: string]: DatasetParams | undefined;
  };
  /**
   * Run groups. Each expands to one train stage per combination of its axes (mixers × d_model × n_layers × d_conv × lr × seeds). Identical combinations from two groups are built once.
   *
   * @minItems 1
   */
  groups: [Group, ...Group[]];
  train?: TrainDefaults;
  evaluate?: Evaluate;
  /**
   * Interchange interventions on each final checkpoint (paper-setup.md §5).
   */
  intervene?: {
    split?: 'dev' | 'test' | 'gen';
    n?: number;
    /**
     * @minItems 1
     */
    corruptions?: ['key' | 'value', ...('key' | 'value')[]];
  };
}
/**
 * Parameters of the dataset stage: which task (AR or ATR) and its settings, how many documents per split, and the seed. Spec: shared/reference/paper-setup.md §1, §2, §5.1. Constraints a schema cannot express (pairs ≤ vocabulary, gen size iff held-out pairs, …) are checked by validateDatasetParams in src/data/params.ts. Optional task fields carry no JSON `default` keyword, because ajv ignores defaults inside oneOf (and refuses them in strict mode with useDefaults); each description ends with its default, resolveDatasetParams applies it, and meta.json records the resolved values.
 */
export interface DatasetParams {
  /**
   * The task, discriminated by `kind`.
   */
  task: ArTask | AtrTask;
  sizes: SplitSizes;
  /**
   * Seed of the document streams (one independent xoroshiro128+ stream per split, so changing one split's size leaves the others unchanged) and of the held-out pair mask. The ATR grammar has its own seed (task.grammarSeed). Paper: 42.
   */
  seed: number;
  corruption?: Corruption;
}
/**
 * Associative Recall: <bos> k1 v1 … kn vn <eos> kq vq <eos> (paper-setup.md §1). Paper: 16 pairs, 4096 + 4096. Default CPU study (calibration.md): 3 pairs, 16 + 16.
 */
export interface ArTask {
  kind: 'ar';
  /**
   * Key–value pairs per document (the paper's "32" counts KV tokens: 16 pairs). Every document has exactly this many.
   */
  pairs: number;
  /**
   * Size of the key vocabulary (ids 3 … 3+numKeys−1).
   */
  numKeys: number;
  /**
   * Size of the value vocabulary (ids after the keys), disjoint from the keys.
   */
  numValues: number;
  /**
   * Fraction of all (key, value) pairs never queried in train/dev/test and queried only in the `gen` split (tinylang ar_train_test_split: 0.2). 0 = no gen split. Default: 0.
   */
  heldOutFraction?: number;
  /**
   * Extra never-used ids appended to the vocabulary. The paper's AR vocabulary has one (8196 = 3 + 4096 + 4096 + 1, from tinylang's -100 entry); calibration.md uses none (V = 2·numKeys + 3). Default: 0.
   */
  unusedTokens?: number;
}
/**
 * Associative Treecall on a random right-headed PCFG, PARENT queries only (paper-setup.md §2). Paper settings: easy (maxRhsLen 5, numTerminals 20), medium (10, 20), and the numTerminals 8192 variants.
 */
export interface AtrTask {
  kind: 'atr';
  /**
   * |Σ|: number of terminals (paper: 20 or 8192).
   */
  numTerminals: number;
  /**
   * L_max: a right-hand side has 1 … L_max−1 symbols before the head is appended (paper: 5 easy, 10 medium).
   */
  maxRhsLen: number;
  /**
   * |N| (paper: 40). Default: 40.
   */
  numNonterminals?: number;
  /**
   * R_max: rules per nonterminal (paper: 5). Default: 5.
   */
  maxRules?: number;
  /**
   * d_max: depth scores are drawn from 1 … d_max (paper: 10). Default: 10.
   */
  maxDepth?: number;
  /**
   * r_Σ: weight of choosing a terminal for an RHS slot, against weight 1 per allowed nonterminal (paper: 20). Default: 20.
   */
  terminalWeight?: number;
  /**
   * Seed of the grammar, drawn once and shared by every split and model (paper: 42). Default: 42.
   */
  grammarSeed?: number;
  /**
   * Sentences with this many terminals or more are rejected and redrawn (tinylang: 1024). A smaller value caps the document length (documents have yield + 5 tokens); that is a deviation from the paper. Default: 1024.
   */
  yieldLimit?: number;
  /**
   * Fraction of (parent-label, child-label) pairs never queried in train/dev/test and queried only in the `gen` split (v2 §5.3: 0.2 on the easy grammar; the paper calls that split "test"). 0 = no gen split. Default: 0.
   */
  heldOutFraction?: number;
  /**
   * GUESS: rules per nonterminal are 1 … R_max (true, as issue 3 states) or 1 … R_max−1 (false, numpy's exclusive randint(1, R_max)). Default: true.
   */
  rulesInclusive?: boolean;
  /**
   * GUESS: depth scores are 1 … d_max (true, as paper-setup.md §2.1 states) or 1 … d_max−1 (false, numpy's exclusive randint(1, d_max)). Default: true.
   */
  depthInclusive?: boolean;
  /**
   * Right-hand sides have 1 … L_max−1 symbols before the head (false: paper-setup.md §2.1, numpy's exclusive randint(1, L_max)) or 1 … L_max (true). The measured easy-grammar statistics of §2.2 fit true better; see src/data/README.md. Default: false.
   */
  rhsLenInclusive?: boolean;
  /**
   * GUESS: drop edges whose parent is the root's head from the eligible queries (tinylang's no_start_queries). The spec makes every edge eligible (false), which also matches the measured child→parent distances better. Default: false.
   */
  excludeRootChildren?: boolean;
}
/**
 * Documents per split. Paper: train 100032 (= 3126 batches × 32), dev 320, test 320. `gen` is required exactly when the task holds out pairs.
 */
export interface SplitSizes {
  train: number;
  dev: number;
  test: number;
  /**
   * Documents whose query is a held-out pair.
   */
  gen?: number;
}
/**
 * How the key/value counterfactuals pick the replacement token (§5.1).
 */
export interface Corruption {
  /**
   * false (the paper): uniform over every other id of the same kind (AR key/value vocabulary, ATR terminals), collisions with tokens already in the document allowed. true: only ids absent from the document (ATR falls back to any other terminal when all occur).
   */
  excludeContext?: boolean;
}
/**
 * `evaluate` overrides the top-level one for this group's runs (e.g. split 'gen' for the held-out-pair runs of finding F9).
 */
export interface Group {
  /**
   * Label used by the report (e.g. main, mamba-dconv).
   */
  name: string;
  /**
   * A key of `tasks`.
   */
  task: string;
  /**
   * @minItems 1
   */
  mixers: [Mixer, ...Mixer[]];
  /**
   * @minItems 1
   */
  d_model: [number, ...number[]];
  /**
   * @minItems 1
   */
  n_layers?: [number, ...number[]];
  /**
   * Short-conv widths (null = the mixer's default); the Mamba ablation sweeps 0–4; -1 = BaseConv/Based with the implicit long convolution (finding F6).
   *
   * @minItems 1
   */
  d_conv?: [number | null, ...(number | null)[]];
  lr: PerMixerNumbers;
  steps: PerMixerInteger;
  /**
   * Model-initialisation seeds: an ordinary axis of the grid.
   *
   * @minItems 1
   */
  seeds?: [number, ...number[]];
  /**
   * Learned position embedding. The paper's headline numbers: attention with PE, every other mixer without.
   */
  pos_emb?: true | false | 'attention-only';
  /**
   * Extra model settings for every run of the group (schemas/model.schema.json fields other than mixer, d_model, n_layers, vocab_size, d_conv, pos_emb, seed).
   */
  model?: {
    n_heads?: number;
    n_positions?: number;
    d_state?: number;
    expand?: number;
    dt_rank?: number | null;
    feature_dim?: number;
    h3_d_state?: number | null;
    hyena_filter_order?: number;
    delta_heads?: number;
    mlp_hidden_mult?: number;
  };
  train?: TrainDefaults;
  /**
   * Run the intervention sweep on this group's checkpoints.
   */
  intervene?: boolean;
  evaluate?: Evaluate;
}
/**
 * Training settings shared by the runs (schemas/train.schema.json fields other than lr and steps).
 */
export interface TrainDefaults {
  batch_size?: number;
  warmup_fraction?: number;
  decay?: 'cosine' | 'linear';
  weight_decay?: number;
  order?: 'fixed' | 'shuffle';
  data_seed?: number;
  eval_every?: number;
  eval_examples?: number;
  checkpoint_every?: number;
  early_stop_accuracy?: number | null;
}
/**
 * Evaluation of each final checkpoint (the evaluate stage): which split, and how many of its examples (null = all).
 */
export interface Evaluate {
  split?: 'dev' | 'test' | 'gen';
  limit?: number | null;
}
