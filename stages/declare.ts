/**
 * @module stages/declare — how each stage kind is declared to the engine: id, params + schema, inputs, outputs,
 * resources, cost, env facts, and which body runs it.
 *
 * Why a separate file: a stage's key hashes its body module and every local module that module imports. The bodies
 * (stages/dataset.ts, train.ts, …) import the engine only for types (type-only imports are not part of the code
 * digest), so editing the build engine does not retrain every model; the declarations, which do import the engine,
 * live here, outside every body's import graph.
 */
import { fn, stage, type Stage } from '../src/engine/index.ts';
import type { DatasetParams } from '../schemas/types/dataset.ts';
import type { TrainStageParams } from '../schemas/types/train-stage.ts';
import type { EvaluateStageParams } from '../schemas/types/evaluate-stage.ts';
import type { InterveneStageParams } from '../schemas/types/intervene-stage.ts';
import { loadSchema } from '../schemas/index.ts';
import { splitNames, resolveDatasetParams } from '../src/data/params.ts';
import { CHECKPOINT_FILE } from '../src/models/checkpoint.ts';
import { probeBackend } from '../src/models/probe.ts';
import type { AggregateParams, RunCoords } from './aggregate.ts';
import type { ReportParams, ReportRun } from './report.ts';

const body = (name: string): URL => new URL(`./${name}.ts`, import.meta.url);

/** Environment facts for stages whose bytes depend on the TF.js backend (tfjs-backends.md: weights differ across backends). */
export const mlEnv = { ml_backend: () => ({ ...probeBackend() }) };

export function datasetStage(id: string, params: DatasetParams): Stage<DatasetParams> {
  const splits = splitNames(resolveDatasetParams(params));
  return stage({
    id,
    params,
    schema: loadSchema('dataset'),
    outputs: [...splits.map((s) => `${s}.safetensors`), ...(params.task.kind === 'atr' ? ['grammar.safetensors'] : []), 'meta.json'],
    run: fn(body('dataset'), 'run'),
    show: fn(body('dataset'), 'show'),
    cost: 'cheap',
    description: `${params.task.kind.toUpperCase()} dataset`,
  });
}

/**
 * ms per training step at the default study's size (d 64, L 11, batch 32, wasm; `npm run bench -- train`, 2026-11-29).
 * Only a scheduling hint for a cold store (expectedSeconds: the longest train → intervene chain starts first); once a
 * stage has run, the engine orders by its measured duration instead.
 */
const MS_PER_STEP: Record<string, number> = { attention: 55, base_conv: 37, based: 34, mamba: 128, delta_net: 115, h3: 93, hyena: 72 };

export function trainStage(id: string, params: TrainStageParams, data: Stage): Stage<TrainStageParams> {
  return stage({
    id,
    params,
    schema: loadSchema('train-stage'),
    inputs: { data },
    outputs: [CHECKPOINT_FILE, 'metrics.jsonl'],
    // metrics.jsonl carries wall times: kept with the checkpoint, but not part of what downstream stages or verify compare
    volatile: ['metrics.jsonl'],
    run: fn(body('train'), 'run'),
    resources: { cpu: 1 },
    cost: 'expensive',
    expectedSeconds: ((params.train.steps ?? 1000) * (MS_PER_STEP[params.model.mixer] ?? 60) * ((params.train.batch_size ?? 32) / 32)) / 1000,
    env: mlEnv,
    description: `train ${params.model.mixer} d${params.model.d_model} lr ${params.train.lr}`,
  });
}

export function evaluateStage(id: string, params: EvaluateStageParams, model: Stage, data: Stage): Stage<EvaluateStageParams> {
  return stage({
    id,
    params,
    schema: 'schemas/evaluate-stage.schema.json',
    inputs: { model, data },
    outputs: ['predictions.safetensors', 'metrics.json'],
    run: fn(body('evaluate'), 'run'),
    resources: { cpu: 1 },
    cost: 'cheap',
    env: mlEnv,
  });
}

export function interveneStage(id: string, params: InterveneStageParams, model: Stage, data: Stage): Stage<InterveneStageParams> {
  return stage({
    id,
    params,
    schema: 'schemas/intervene-stage.schema.json',
    inputs: { model, data },
    outputs: ['attrib.json', 'attrib_examples.safetensors', 'mechanism.json'],
    run: fn(body('intervene'), 'run'),
    resources: { cpu: 1 },
    cost: 'cheap',
    expectedSeconds: 10,
    env: mlEnv,
  });
}

const AGGREGATE_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['runs'],
  properties: {
    runs: {
      type: 'array', minItems: 1,
      items: {
        type: 'object', additionalProperties: false,
        required: ['input', 'run', 'task', 'group', 'mixer', 'd_model', 'n_layers', 'd_conv', 'pos_emb', 'lr', 'seed'],
        properties: {
          input: { type: 'string' }, run: { type: 'string' }, task: { type: 'string' }, group: { type: 'string' }, mixer: { type: 'string' },
          d_model: { type: 'integer' }, n_layers: { type: 'integer' }, d_conv: { type: ['integer', 'null'] }, pos_emb: { type: 'boolean' },
          lr: { type: 'number' }, seed: { type: 'integer' },
        },
      },
    },
  },
};

export function aggregateStage(id: string, runs: { coords: Omit<RunCoords, 'input'>; evaluate: Stage }[]): Stage<AggregateParams> {
  const inputs: Record<string, Stage> = {};
  const coords = runs.map((r, i) => {
    const input = `eval${i}`;
    inputs[input] = r.evaluate;
    return { input, ...r.coords };
  });
  return stage({ id, params: { runs: coords }, schema: AGGREGATE_SCHEMA, inputs, outputs: ['table.json'], run: fn(body('aggregate'), 'run'), cost: 'cheap' });
}

export function reportStage(id: string, config: ReportParams['config'], aggregate: Stage, runs: ReportRun[]): Stage<ReportParams> {
  const inputs: Record<string, Stage> = { aggregate };
  const params: ReportParams = {
    config,
    runs: runs.map((r, i) => {
      inputs[`train${i}`] = r.train;
      inputs[`eval${i}`] = r.evaluate;
      if (r.intervene) inputs[`iv${i}`] = r.intervene;
      return { ...r.coords, inputs: { train: `train${i}`, evaluate: `eval${i}`, intervene: r.intervene ? `iv${i}` : null } };
    }),
  };
  return stage({
    id, params, inputs,
    schema: { type: 'object', required: ['config', 'runs'], properties: { config: { type: 'object' }, runs: { type: 'array' } } },
    outputs: ['results.json', 'report.md', 'index.html'],
    volatile: ['report.md', 'index.html'],
    run: fn(body('report'), 'run'),
    cost: 'cheap',
    env: mlEnv,
  });
}
