/**
 * @module loop — the training loop (paper-setup.md §4): fixed data order, AdamW, warm-up + decay, cross-entropy of the
 * full-vocabulary logits at the query position only; periodic dev evaluation; resumable scratch checkpoints.
 *
 * Determinism: everything that varies between steps (batch rows, lr) is a function of the step number, and the
 * optimizer moments are saved with the weights, so a run resumed from step k ends with the same weights, bit for
 * bit, as an uninterrupted run on the same backend.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tf, type Tensor2D, type Tensor3D } from '../models/tf.ts';
import type { ParamStore } from '../models/params.ts';
import type { Hooks } from '../models/sites.ts';
import { readSafetensors, writeSafetensors, type Tensor as StTensor } from '../io/safetensors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { TrainConfig } from '../../schemas/types/train.ts';
import { AdamW } from './optimizer.ts';
import { lrAt, type ScheduleConfig } from './schedule.ts';
import { batchTokens, gatherInt, type Split } from './split.ts';
import { evaluate } from './evaluate.ts';
import { epochOrder } from './order.ts';

export type { TrainConfig };

/** What the loop needs of a model (src/models/lm.ts provides it). */
export interface TrainableLM {
  readonly params: ParamStore;
  forward(input: { ids: Int32Array; batch: number; time: number; hooks?: Hooks }): Tensor3D;
  logitsAt(hidden: Tensor3D, rows: Int32Array, positions: Int32Array): Tensor2D;
}

export interface MetricRow {
  step: number;
  loss: number;
  lr: number;
  dev_accuracy?: number;
  dev_mean_p_answer?: number;
  wall_s: number;
}

export interface TrainIO {
  /** Per-stage-key directory outside the store for resumable checkpoints; none = not resumable. */
  scratchDir?: string;
  progress?: (step: number, total: number, info?: string) => void;
  log?: (msg: string) => void;
  signal?: AbortSignal;
  /** Test hook: called after each step (e.g. to simulate a kill at step k). */
  afterStep?: (step: number) => void;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly lastFinite: number | null) {
    super(`loss is not finite at step ${step} (last finite loss: ${lastFinite === null ? 'none' : lastFinite.toPrecision(6)}); ` +
      'lower the learning rate or check the data; nothing was cached');
  }
}

/** Defaults filled in; `epochs` becomes steps = epochs · floor(nTrain / batch_size). */
export function resolveTrainConfig(c: TrainConfig, nTrain: number): Required<Omit<TrainConfig, 'epochs'>> & { steps: number } {
  const batch = c.batch_size ?? 32;
  if ((c.steps === undefined) === (c.epochs === undefined)) {
    throw new Error(`train config: give exactly one of /steps and /epochs (got ${c.steps === undefined ? 'neither' : 'both'})`);
  }
  return {
    lr: c.lr, steps: c.steps ?? c.epochs! * Math.floor(nTrain / batch),
    batch_size: batch,
    warmup_fraction: c.warmup_fraction ?? 0.1,
    decay: c.decay ?? 'cosine',
    weight_decay: c.weight_decay ?? 0,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
    order: c.order ?? 'fixed',
    data_seed: c.data_seed ?? 0,
    eval_every: c.eval_every ?? 200,
    eval_examples: c.eval_examples ?? 320,
    checkpoint_every: c.checkpoint_every ?? 500,
    early_stop_accuracy: c.early_stop_accuracy ?? null,
  };
}

/** Cross-entropy of the V-way logits at each row's query position against its answer (mean over the batch). */
export function answerLoss(model: TrainableLM, ids: Int32Array, batch: number, time: number, positions: Int32Array, answers: Int32Array): tf.Scalar {
  const hidden = model.forward({ ids, batch, time });
  const rows = Int32Array.from({ length: batch }, (_, i) => i);
  const logits = model.logitsAt(hidden, rows, positions); // (B, V)
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(tf.tensor1d(answers, 'int32'), logits.shape[1]).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), 1))) as tf.Scalar;
}

const CKPT = 'resume.safetensors';

interface Resume { step: number; metrics: MetricRow[] }

function saveResume(dir: string, model: TrainableLM, opt: AdamW, step: number, metrics: MetricRow[]): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, StTensor> = {};
  const put = (key: string, shape: number[], data: Float32Array) => { tensors[key] = { dtype: 'F32', shape, data }; };
  const shapeOf = (name: string) => model.params.vars.get(name)?.shape ?? [];
  for (const [name, v] of model.params.vars) put(`param/${name}`, v.shape, v.dataSync() as Float32Array);
  for (const [name, m] of opt.state.m) put(`adam_m/${name}`, shapeOf(name), m);
  for (const [name, v] of opt.state.v) put(`adam_v/${name}`, shapeOf(name), v);
  writeSafetensors(join(dir, CKPT), tensors, { step: String(step), optimizer_step: String(opt.state.step), metrics: JSON.stringify(metrics) });
}

function loadResume(dir: string, model: TrainableLM, opt: AdamW): Resume | null {
  const path = join(dir, CKPT);
  if (!existsSync(path)) return null;
  const { tensors, metadata } = readSafetensors(path);
  for (const [name, v] of model.params.vars) {
    const t = tensors[`param/${name}`];
    if (!t) throw new Error(`${path}: no saved value for parameter '${name}'; delete the scratch dir to start over`);
    v.assign(tf.tensor(t.data as Float32Array, t.shape, 'float32'));
  }
  for (const [key, t] of Object.entries(tensors)) {
    const [kind, ...rest] = key.split('/');
    const name = rest.join('/');
    if (kind === 'adam_m') opt.state.m.set(name, Float32Array.from(t.data as Float32Array));
    if (kind === 'adam_v') opt.state.v.set(name, Float32Array.from(t.data as Float32Array));
  }
  opt.state.step = Number(metadata.optimizer_step);
  return { step: Number(metadata.step), metrics: JSON.parse(metadata.metrics ?? '[]') as MetricRow[] };
}

/**
 * Train `model` in place. Returns the metric rows (one per evaluation, plus a loss row every `log` steps).
 * The caller writes the final checkpoint; the scratch checkpoint is removed after success.
 */
export function train(model: TrainableLM, data: Split, dev: Split | null, config: TrainConfig, io: TrainIO = {}): MetricRow[] {
  const c = resolveTrainConfig(config, data.n);
  if (data.n < c.batch_size) throw new Error(`train split has ${data.n} examples, fewer than batch_size ${c.batch_size}`);
  const sched: ScheduleConfig = { lr: c.lr, totalSteps: c.steps, warmupFraction: c.warmup_fraction, decay: c.decay };
  const opt = new AdamW({ beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weight_decay });
  const batchesPerEpoch = Math.floor(data.n / c.batch_size);
  const t0 = Date.now();
  let metrics: MetricRow[] = [];
  let start = 0;
  if (io.scratchDir) {
    const r = loadResume(io.scratchDir, model, opt);
    if (r) {
      start = r.step;
      metrics = r.metrics;
      io.log?.(`resuming from scratch checkpoint at step ${start}/${c.steps}`);
    }
  }
  const trainable = [...model.params.vars.values()];
  let lastFinite: number | null = null;
  let order: Int32Array | null = null;
  let orderEpoch = -1;
  for (let step = start; step < c.steps; step++) {
    if (io.signal?.aborted) throw new Error('training cancelled');
    const epoch = Math.floor(step / batchesPerEpoch);
    if (c.order === 'shuffle' && epoch !== orderEpoch) {
      order = epochOrder(data.n, c.data_seed, epoch);
      orderEpoch = epoch;
    }
    const b = step % batchesPerEpoch;
    const rows = Int32Array.from({ length: c.batch_size }, (_, i) => (order ? order[b * c.batch_size + i]! : b * c.batch_size + i));
    const { ids, batch, time } = batchTokens(data, data.tokens, rows);
    const positions = gatherInt(data.pos.query, rows);
    const answers = gatherInt(data.answers, rows);
    const lr = lrAt(sched, step);
    const { value, grads } = tf.variableGrads(() => answerLoss(model, ids, batch, time, positions, answers), trainable);
    const loss = value.dataSync()[0]!;
    value.dispose();
    if (!Number.isFinite(loss)) {
      for (const g of Object.values(grads)) g.dispose();
      opt.dispose();
      throw new NonFiniteLossError(step, lastFinite);
    }
    lastFinite = loss;
    opt.apply(model.params.vars, grads, lr);
    for (const g of Object.values(grads)) g.dispose();
    const done = step + 1;
    const isEval = dev !== null && ((c.eval_every > 0 && done % c.eval_every === 0) || done === c.steps);
    const row: MetricRow = { step: done, loss, lr, wall_s: (Date.now() - t0) / 1000 };
    if (isEval) {
      const ev = evaluate(model, dev!, { limit: c.eval_examples });
      row.dev_accuracy = ev.accuracy;
      row.dev_mean_p_answer = ev.meanPAnswer;
    }
    if (isEval || done % Math.max(1, Math.floor(c.steps / 100)) === 0) metrics.push(row);
    io.progress?.(done, c.steps, `loss ${loss.toFixed(4)}${row.dev_accuracy !== undefined ? ` dev acc ${(row.dev_accuracy * 100).toFixed(1)}%` : ''}`);
    if (io.scratchDir && c.checkpoint_every > 0 && done % c.checkpoint_every === 0 && done < c.steps) {
      saveResume(io.scratchDir, model, opt, done, metrics);
    }
    io.afterStep?.(done);
    if (c.early_stop_accuracy !== null && row.dev_accuracy !== undefined && row.dev_accuracy >= c.early_stop_accuracy && done < c.steps) {
      io.log?.(`early stop at step ${done}/${c.steps}: dev accuracy ${(row.dev_accuracy * 100).toFixed(1)}% ≥ ${(c.early_stop_accuracy * 100).toFixed(1)}%`);
      break;
    }
  }
  opt.dispose();
  if (io.scratchDir) rmSync(join(io.scratchDir, CKPT), { force: true });
  return metrics;
}

/** metrics.jsonl: one JSON object per line. */
export function writeMetrics(path: string, rows: MetricRow[]): void {
  writeFileAtomic(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

export function readMetrics(path: string): MetricRow[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MetricRow);
}
