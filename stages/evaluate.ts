/**
 * @module stages/evaluate — score the `model` input on one split of the `data` input: per-example predictions in
 * dataset order (predictions.safetensors) and the summary (metrics.json).
 */
import { join } from 'node:path';
import type { StageContext } from '../src/engine/index.ts';
import type { EvaluateStageParams } from '../schemas/types/evaluate-stage.ts';
import { loadCheckpoint, CHECKPOINT_FILE } from '../src/models/index.ts';
import { loadSplit } from '../src/train/split.ts';
import { evaluate } from '../src/train/evaluate.ts';
import { writeSafetensors, f32, i32 } from '../src/io/safetensors.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { startBackend } from './common.ts';

export async function run(ctx: StageContext<EvaluateStageParams>): Promise<void> {
  await startBackend(ctx);
  const model = loadCheckpoint(join(ctx.inputs.model!, CHECKPOINT_FILE));
  const split = loadSplit(ctx.inputs.data!, ctx.params.split);
  const ev = evaluate(model, split, { limit: ctx.params.limit ?? undefined });
  writeSafetensors(join(ctx.outDir, 'predictions.safetensors'), {
    predicted: i32([ev.n], ev.predicted),
    p_answer: f32([ev.n], ev.pAnswer),
    correct: i32([ev.n], ev.correct),
  }, { split: ctx.params.split });
  writeFileAtomic(join(ctx.outDir, 'metrics.json'),
    JSON.stringify({ accuracy: ev.accuracy, mean_p_answer: ev.meanPAnswer, n: ev.n, split: ctx.params.split }, null, 2) + '\n');
  ctx.log(`${ctx.params.split}: accuracy ${(ev.accuracy * 100).toFixed(1)}% over ${ev.n}, mean p(answer) ${ev.meanPAnswer.toFixed(3)}`);
}
