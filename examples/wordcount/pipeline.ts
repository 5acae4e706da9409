/**
 * A small honest example pipeline: generate two corpora (a matrix over `seed`), count words in each
 * with a shell command, and summarise the counts in a Markdown report.
 *
 *   corpus/seed=1 ─▶ count/seed=1 ─┐
 *   corpus/seed=2 ─▶ count/seed=2 ─┴▶ report/summary
 */
import { stage, fn, cmd, sh, matrix, matrixId, pipeline } from '../../src/engine/index.ts';
import type { CorpusParams, SummaryParams } from './stages.ts';

const stages = new URL('./stages.ts', import.meta.url);
const seeds = [1, 2] as const;

const corpora = matrix({ seed: seeds }, (v) =>
  stage<CorpusParams>({
    id: matrixId('corpus', v),
    params: { seed: v.seed, words: 600 },
    schema: {
      type: 'object',
      properties: { seed: { type: 'integer', minimum: 0 }, words: { type: 'integer', minimum: 1 } },
      required: ['seed', 'words'],
      additionalProperties: false,
    },
    outputs: ['text.txt'],
    run: fn(stages, 'corpus'),
    show: fn(stages, 'showCorpus'),
  }),
);

const counts = corpora.map((c) =>
  stage({
    id: c.id.replace(/^corpus/, 'count'),
    inputs: { corpus: c },
    outputs: ['counts.txt'],
    // Every ${…} is quoted by zx: paths and params are single shell words, never code.
    run: cmd(({ inputs, outDir }) => sh`tr -s ' ' '\n' < ${inputs.corpus}/text.txt | LC_ALL=C sort | uniq -c | LC_ALL=C sort -k1,1nr -k2,2 > ${outDir}/counts.txt`),
  }),
);

const report = stage<SummaryParams>({
  id: 'report/summary',
  params: { top: 3 },
  schema: { type: 'object', properties: { top: { type: 'integer', minimum: 1 } }, required: ['top'], additionalProperties: false },
  inputs: Object.fromEntries(counts.map((c, i) => [`seed${seeds[i]}`, c])),
  outputs: ['summary.md'],
  run: fn(stages, 'summary'),
});

export default pipeline({ name: 'wordcount', stages: [corpora, counts, report], defaultTargets: ['report/**'] });
