/** @module data — the public surface of the task generators (re-exports only). See README.md. */
export { buildDataset, generateDataset, datasetMeta, canonicalJson, DATASET_FORMAT } from './dataset.ts';
export type { DatasetSummary, GeneratedDataset } from './dataset.ts';
export { showDataset } from './show.ts';
export type { ShowOptions } from './show.ts';
export {
  validateDatasetParams, checkDatasetParams, resolveDatasetParams, formatIssues, splitNames,
  SPLITS, TASK_PRESETS, PAPER_SIZES, AR_DEFAULTS, ATR_DEFAULTS, CORRUPTION_DEFAULTS,
} from './params.ts';
export type { DatasetParams, ArTask, AtrTask, SplitSizes, ParamIssue, ResolvedDatasetParams, SplitName } from './params.ts';
export { POSITIONS } from './examples.ts';
export type { Position } from './examples.ts';
