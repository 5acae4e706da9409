/**
 * @module stages/train — train one model on the `data` input's train split (dev split for periodic evaluation).
 * Outputs the checkpoint (PyTorch state-dict names, src/models/checkpoint.ts) and metrics.jsonl. Resumable: the loop
 * keeps its scratch checkpoint in ctx.scratchDir, which the engine keys by the stage key and deletes on success.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageContext } from '../src/engine/index.ts';
import type { TrainStageParams } from '../schemas/types/train-stage.ts';
import { createLanguageModel, saveCheckpoint, CHECKPOINT_FILE } from '../src/models/index.ts';
import { loadSplit } from '../src/train/split.ts';
import { train, writeMetrics } from '../src/train/loop.ts';
import { startBackend } from './common.ts';

export async function run(ctx: StageContext<TrainStageParams>): Promise<void> {
  await startBackend(ctx);
  const data = ctx.inputs.data!;
  const meta = JSON.parse(readFileSync(join(data, 'meta.json'), 'utf8')) as { vocab: { size: number } };
  if (ctx.params.model.vocab_size !== meta.vocab.size) {
    throw new Error(`stage '${ctx.id}': params /model/vocab_size is ${ctx.params.model.vocab_size} but the dataset's vocabulary has ${meta.vocab.size} tokens`);
  }
  const model = createLanguageModel(ctx.params.model);
  const rows = train(model, loadSplit(data, 'train'), loadSplit(data, 'dev'), ctx.params.train, {
    scratchDir: ctx.scratchDir,
    progress: (s, t, info) => ctx.progress(s, t, info),
    log: (m) => ctx.log(m),
    signal: ctx.signal,
  });
  saveCheckpoint(model, join(ctx.outDir, CHECKPOINT_FILE));
  writeMetrics(join(ctx.outDir, 'metrics.jsonl'), rows);
  const last = rows.at(-1);
  if (last) ctx.log(`final loss ${last.loss.toFixed(4)}, dev accuracy ${((last.dev_accuracy ?? NaN) * 100).toFixed(1)}%`);
}
