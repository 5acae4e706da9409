/**
 * @module stages/study — the study as code: an experiment config (schemas/experiment.schema.json) expands to the DAG
 *   dataset/<task> → train/<task>/<run> → evaluate/<task>/<run>, intervene/<task>/<run> → aggregate → report
 * Run ids name every axis: `attention-d64-L2-pe-lr3e-4-s0`, `mamba-d64-L2-k0-nope-lr3e-3-s0` (k = d_conv).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { EngineError, pipeline, type Pipeline, type Stage } from '../src/engine/index.ts';
import type { Experiment, Group, Mixer } from '../schemas/types/experiment.ts';
import type { TrainStageParams } from '../schemas/types/train-stage.ts';
import { loadSchema } from '../schemas/index.ts';
import { datasetVocabSize } from './dataset.ts';
import { datasetStage, trainStage, evaluateStage, interveneStage, aggregateStage, reportStage } from './declare.ts';
import type { RunCoords } from './aggregate.ts';
import type { ReportRun } from './report.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUILTIN_CONFIGS = ['default', 'smoke', 'cpu-full', 'paper'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Loading and checking a config

function invalid(file: string, pointer: string, message: string, hint?: string): EngineError {
  return new EngineError({ code: 'params_invalid', message: `${file}: ${pointer || '/'} ${message}`, fields: { file, pointer: pointer || '/' }, ...(hint ? { hint } : {}) });
}

/** Resolve `--config NAME|FILE` to a file: a built-in name → configs/<name>.json, anything else a path. */
export function configFile(nameOrFile: string | undefined, cwd = process.cwd()): string {
  const n = nameOrFile ?? 'default';
  if ((BUILTIN_CONFIGS as readonly string[]).includes(n)) return join(ROOT, 'configs', `${n}.json`);
  const f = isAbsolute(n) ? n : resolve(cwd, n);
  if (!existsSync(f)) {
    throw new EngineError({ code: 'usage', message: `--config ${JSON.stringify(n)} is neither a built-in config nor a file`, fields: { config: n }, hint: `built-in configs: ${BUILTIN_CONFIGS.join(', ')}` });
  }
  return f;
}

let validator: ReturnType<Ajv.default['compile']> | undefined;

/** Parse and validate an experiment file; every problem is reported with its JSON pointer. */
export function loadExperiment(file: string): Experiment {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw invalid(file, '', `is not valid JSON: ${(e as Error).message}`);
  }
  validator ??= new Ajv.default({ allErrors: true, strict: false }).compile(loadSchema('experiment'));
  if (!validator(raw)) {
    const lines = validator.errors!.map((e) => `  ${e.instancePath || '/'}: ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
    throw new EngineError({ code: 'params_invalid', message: `${file}: the experiment config does not match schemas/experiment.schema.json:\n${lines.join('\n')}`, fields: { file } });
  }
  const x = raw as Experiment;
  x.groups.forEach((g, i) => {
    if (!x.tasks[g.task]) throw invalid(file, `/groups/${i}/task`, `names task ${JSON.stringify(g.task)}, which is not in /tasks`, `tasks: ${Object.keys(x.tasks).join(', ')}`);
    for (const m of g.mixers) {
      if (perMixer(g.lr, m) === undefined) throw invalid(file, `/groups/${i}/lr`, `has no entry for mixer '${m}' and no 'default'`);
      if (perMixer(g.steps, m) === undefined) throw invalid(file, `/groups/${i}/steps`, `has no entry for mixer '${m}' and no 'default'`);
    }
    // The 'gen' split exists only for tasks that hold pairs out (src/data/README.md); say so before any stage runs.
    const split = g.evaluate?.split ?? x.evaluate?.split;
    if (split === 'gen' && !((x.tasks[g.task]!.task.heldOutFraction ?? 0) > 0)) {
      const at = g.evaluate?.split ? `/groups/${i}/evaluate/split` : '/evaluate/split';
      throw invalid(file, at, `is 'gen', but task ${JSON.stringify(g.task)} (group ${JSON.stringify(g.name)}) holds no pairs out`, `set /tasks/${g.task}/task/heldOutFraction > 0, or evaluate this group on 'test'`);
    }
  });
  return x;
}

function perMixer<T>(v: T[] | T | Record<string, T | undefined>, m: Mixer): T | undefined {
  if (Array.isArray(v) || typeof v !== 'object' || v === null) return v as T;
  const o = v as Record<string, T | undefined>;
  return o[m] ?? o.default;
}

// ---------------------------------------------------------------------------------------------------------------
// Expanding the grid

/** `1e-3`, `3e-4`, `1.5e-3`: exponent form, so every lr reads the same way in ids. */
export function fmtLr(lr: number): string {
  return lr.toExponential().replace('e-', 'e-').replace('e+', 'e');
}

export interface Run extends Omit<RunCoords, 'input'> {
  steps: number;
  params: TrainStageParams;
  intervene: boolean;
  /** The evaluate stage's settings: the group's `evaluate`, else the experiment's. */
  evaluate: { split: 'dev' | 'test' | 'gen'; limit: number | null };
}

export function expandGroup(x: Experiment, g: Group): Run[] {
  const ds = x.tasks[g.task]!;
  const vocab = datasetVocabSize(ds);
  const runs: Run[] = [];
  const ev = { ...x.evaluate, ...g.evaluate };
  const evaluate = { split: ev.split ?? 'test', limit: ev.limit ?? null } as const;
  for (const mixer of g.mixers) {
    const lrs = perMixer(g.lr, mixer) as number[];
    const steps = perMixer(g.steps, mixer) as number;
    for (const d of g.d_model) for (const L of g.n_layers ?? [2]) for (const k of g.d_conv ?? [null]) for (const lr of lrs) for (const seed of g.seeds ?? [0]) {
      const pe = g.pos_emb === undefined || g.pos_emb === 'attention-only' ? mixer === 'attention' : g.pos_emb;
      const name = `${mixer}-d${d}-L${L}${k === null ? '' : k === -1 ? '-klong' : `-k${k}`}-${pe ? 'pe' : 'nope'}-lr${fmtLr(lr)}-s${seed}`;
      runs.push({
        run: `train/${g.task}/${name}`, task: g.task, group: g.name, mixer, d_model: d, n_layers: L, d_conv: k, pos_emb: pe, lr, seed, steps,
        intervene: g.intervene ?? true,
        evaluate,
        params: {
          model: { ...g.model, mixer, d_model: d, n_layers: L, vocab_size: vocab, pos_emb: pe, d_conv: k, seed },
          train: { ...x.train, ...g.train, lr, steps },
        },
      });
    }
  }
  return runs;
}

export function studyPipeline(x: Experiment): Pipeline {
  const datasets = new Map<string, Stage>();
  for (const [name, params] of Object.entries(x.tasks)) datasets.set(name, datasetStage(`dataset/${name}`, params!));
  const runs = new Map<string, Run>();
  for (const g of x.groups) {
    for (const r of expandGroup(x, g)) {
      const prev = runs.get(r.run);
      if (prev && JSON.stringify([prev.params, prev.evaluate]) !== JSON.stringify([r.params, r.evaluate])) {
        throw new EngineError({ code: 'duplicate_stage', message: `two groups declare run ${r.run} with different settings (groups '${prev.group}' and '${r.group}')`, fields: { stage: r.run } });
      }
      if (!prev) runs.set(r.run, r);
      else if (r.intervene) prev.intervene = true;
    }
  }
  const stages: Stage[] = [...datasets.values()];
  const reportRuns: ReportRun[] = [];
  const aggregateRuns: Parameters<typeof aggregateStage>[1] = [];
  const iv = { split: x.intervene?.split ?? 'test', n: x.intervene?.n ?? 320, corruptions: x.intervene?.corruptions ?? ['key'] } as const;
  for (const r of runs.values()) {
    const data = datasets.get(r.task)!;
    const tail = r.run.slice('train/'.length);
    const train = trainStage(r.run, r.params, data);
    const evaluate = evaluateStage(`evaluate/${tail}`, r.evaluate, train, data);
    const intervene = r.intervene ? interveneStage(`intervene/${tail}`, { ...iv, corruptions: [...iv.corruptions] }, train, data) : null;
    stages.push(train, evaluate, ...(intervene ? [intervene] : []));
    const { params: _p, intervene: _i, evaluate: _e, steps, ...coords } = r;
    aggregateRuns.push({ coords, evaluate });
    reportRuns.push({ coords: { ...coords, steps, taskKind: x.tasks[r.task]!.task.kind }, train, evaluate, intervene });
  }
  const aggregate = aggregateStage('aggregate', aggregateRuns);
  const report = reportStage('report', { name: x.name, description: x.description ?? '', experiment: x }, aggregate, reportRuns);
  stages.push(aggregate, report);
  return pipeline({ name: `study:${x.name}`, stages, root: ROOT, lockFile: x.name === 'default' ? 'pipeline.lock.json' : `pipeline.${x.name}.lock.json`, defaultTargets: ['report'] });
}
