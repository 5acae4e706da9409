/**
 * @module stages/dataset — the dataset stage: AR or ATR documents, one `<split>.safetensors` per split + meta.json
 * (src/data/README.md). Thin adapter: validate, call src/data, report progress.
 */
import type { ShowContext, StageContext } from '../src/engine/index.ts';
import type { DatasetParams } from '../schemas/types/dataset.ts';
import { buildDataset } from '../src/data/dataset.ts';
import { checkDatasetParams, resolveDatasetParams } from '../src/data/params.ts';
import { showDataset } from '../src/data/show.ts';
import { arVocab, atrVocab } from '../src/data/vocab.ts';

export async function run(ctx: StageContext<DatasetParams>): Promise<void> {
  checkDatasetParams(ctx.params);
  const s = buildDataset(ctx.params, ctx.outDir, (step, total) => ctx.progress(step, total));
  ctx.log(`${s.task} dataset: vocab ${s.vocabSize}, width ${s.width}, ` +
    Object.entries(s.splits).map(([k, v]) => `${k} ${v!.n}`).join(', '));
}

export function show(ctx: ShowContext<DatasetParams>): string {
  return showDataset(ctx.outDir, ctx.n ?? 3);
}

/** Vocabulary size the dataset will have: what every model trained on it must use as vocab_size. */
export function datasetVocabSize(p: DatasetParams): number {
  const t = resolveDatasetParams(p).task;
  return t.kind === 'ar' ? arVocab(t.numKeys, t.numValues, t.unusedTokens).size : atrVocab(t.numTerminals).size;
}
