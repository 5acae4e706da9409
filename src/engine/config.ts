/**
 * @module config — engine settings that are about *where* a pipeline runs, not *what* it computes.
 *
 * They live in `mecheval.config.json` beside the pipeline (its root), never in the pipeline
 * declaration: moving a study from a laptop to a cluster must not touch the code that enters
 * the keys. Command-line flags override the file. Example:
 *
 *   { "executor": "slurm", "cache": "/shared/mecheval-cache", "sharedStore": true,
 *     "slurm": { "partition": "gpu", "account": "lab", "mem": "8G", "time": "02:00:00",
 *                "stages": { "train/**": { "mem": "32G", "time": "12:00:00" } } } }
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EngineError } from './errors.ts';

export type ExecutorName = 'local' | 'slurm';

export interface SlurmStageSettings {
  partition?: string;
  account?: string;
  /** `--mem`, e.g. "4G" */
  mem?: string;
  /** `--time` for stages without a timeoutMs, e.g. "01:00:00" */
  time?: string;
  /** further sbatch arguments, e.g. ["--qos=short"] */
  extraArgs?: string[];
}

export interface SlurmSettings extends SlurmStageSettings {
  /** most jobs submitted at once (default 64) */
  maxJobs?: number;
  /** squeue poll interval in ms (default 1000) */
  pollMs?: number;
  /** node binary on the compute nodes (default: this engine's) */
  node?: string;
  /** per-stage overrides, by stage-id glob; later entries win */
  stages?: Record<string, SlurmStageSettings>;
}

export interface EngineConfig {
  executor?: ExecutorName;
  /** store directory, relative to the pipeline root or absolute */
  cache?: string;
  /** coordinate with other engines on the store (per-key claims); default: true with slurm */
  sharedStore?: boolean;
  slurm?: SlurmSettings;
}

export const CONFIG_FILE = 'mecheval.config.json';

const KEYS = ['executor', 'cache', 'sharedStore', 'slurm'];
const SLURM_KEYS = ['partition', 'account', 'mem', 'time', 'extraArgs', 'maxJobs', 'pollMs', 'node', 'stages'];

function bad(file: string, what: string): EngineError {
  return new EngineError({ code: 'usage', message: `${file}: ${what}`, fields: { file }, hint: `see README "Running on Slurm" for the settings of ${CONFIG_FILE}` });
}

/** The config beside the pipeline, or {} when there is none. `cache` comes back absolute. */
export function loadEngineConfig(root: string): EngineConfig {
  const file = join(root, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  let c: EngineConfig;
  try {
    c = JSON.parse(text) as EngineConfig;
  } catch (e) {
    throw bad(file, `not JSON (${(e as Error).message})`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad(file, 'expected an object');
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) throw bad(file, `unknown setting ${JSON.stringify(k)} (known: ${KEYS.join(', ')})`);
  if (c.executor !== undefined && c.executor !== 'local' && c.executor !== 'slurm') throw bad(file, `executor must be "local" or "slurm", got ${JSON.stringify(c.executor)}`);
  if (c.cache !== undefined && typeof c.cache !== 'string') throw bad(file, 'cache must be a path');
  if (c.sharedStore !== undefined && typeof c.sharedStore !== 'boolean') throw bad(file, 'sharedStore must be true or false');
  if (c.slurm !== undefined) {
    if (typeof c.slurm !== 'object' || c.slurm === null) throw bad(file, 'slurm must be an object');
    for (const k of Object.keys(c.slurm)) if (!SLURM_KEYS.includes(k)) throw bad(file, `unknown slurm setting ${JSON.stringify(k)} (known: ${SLURM_KEYS.join(', ')})`);
  }
  return { ...c, ...(c.cache !== undefined ? { cache: resolve(root, c.cache) } : {}) };
}
