/**
 * @module results — everything the report is made from, as one JSON-serialisable record. The report stage gathers it
 * from its upstream stages' outputs (stages/report.ts); the renderers (markdown, HTML) are pure functions of it, so
 * they can be tested on hand-made records without running a study.
 */
import type { AttribRow } from '../interventions/attrib.ts';
import type { MechanismReport } from '../interventions/mechanism.ts';
import type { MetricRow } from '../train/loop.ts';

/** One stage of the study, for provenance: every number in the report names the stages (id + key) it came from. */
export interface StageRef {
  id: string;
  key: string;
  /** Wall time of the run that produced the outputs (from the engine's run cache), if known. */
  ms: number | null;
}

/** Where a run sits in the study's grid: one value per axis. */
export interface RunCoordinates {
  task: string;            // task name in the experiment config, e.g. `ar3`, `atr-easy`
  group: string;           // the run group of the config, e.g. `main`, `mamba-dconv`
  mixer: string;
  d_model: number;
  n_layers: number;
  d_conv: number | null;
  pos_emb: boolean;
  lr: number;
  seed: number;
}

export interface RunResult extends RunCoordinates {
  /** Train stage id, e.g. `train/ar3/attention-d64-L2-lr3e-4-s0`. */
  id: string;
  taskKind: 'ar' | 'atr';
  steps: number;
  /**
   * Optional. Chance accuracy of the task (AR: 1/pairs, a random in-context value), filled in by the report stage
   * from the dataset metadata. When absent the report reads `pairs` from `config.experiment` (src/report/select.ts).
   */
  chance?: number | null;
  /** Optional. A model variant outside the fields above (e.g. `long_conv` for Based with a long conv, finding F6). */
  variant?: string | null;
  train: { stage: StageRef; metrics: MetricRow[] };
  evaluate: { stage: StageRef; split: string; accuracy: number; mean_p_answer: number; n: number };
  intervene: null | {
    stage: StageRef;
    rows: AttribRow[];
    /** Keyed by corruption ('key' | 'value'). */
    mechanism: Record<string, MechanismReport & { analysed: boolean }>;
  };
}

/** Best over learning rate per (task, mixer, d, layers, d_conv, pos_emb), as the paper reports accuracy. */
export interface BestRow {
  task: string;
  mixer: string;
  d_model: number;
  n_layers: number;
  d_conv: number | null;
  pos_emb: boolean;
  /** Optional. RunResult.variant of the runs in this row: best over LR is taken per variant too. */
  variant?: string | null;
  best_lr: number;
  accuracy: number;
  /** Train stage id of the best run (its evaluate/intervene stages follow from it). */
  run: string;
  lrs: { lr: number; accuracy: number }[];
}

export interface StudyResults {
  config: { name: string; description: string; experiment: unknown };
  environment: { backend: string; backendPackage: string; node: string; platform: string; tfjs: string };
  runs: RunResult[];
  best: BestRow[];
  /** Every stage upstream of the report, with keys and wall times. */
  stages: StageRef[];
  /** ISO time the report was built; excluded from nothing, so keep it out of deterministic outputs (see report stage). */
  generatedBy: string;
}
