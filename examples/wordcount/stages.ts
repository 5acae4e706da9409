/**
 * Stage bodies of the word-count example. Each is a plain exported function that receives a
 * StageContext and writes its declared outputs into ctx.outDir.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageFn, ShowFn } from '../../src/engine/index.ts';

export interface CorpusParams {
  seed: number;
  words: number;
}

const VOCAB = ['state', 'space', 'model', 'attention', 'recall', 'token', 'key', 'value', 'query', 'layer', 'head', 'scan'];

/** Deterministic pseudo-random text (a 32-bit LCG), one sentence of 12 words per line. */
export const corpus: StageFn<CorpusParams> = async (ctx) => {
  let x = ctx.params.seed >>> 0 || 1;
  const words: string[] = [];
  for (let i = 0; i < ctx.params.words; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    words.push(VOCAB[x % VOCAB.length]!);
    if (i % 50 === 0) ctx.progress(i, ctx.params.words);
  }
  const lines: string[] = [];
  for (let i = 0; i < words.length; i += 12) lines.push(words.slice(i, i + 12).join(' '));
  await writeFile(join(ctx.outDir, 'text.txt'), `${lines.join('\n')}\n`);
  ctx.progress(ctx.params.words, ctx.params.words);
};

/** `pipeline show corpus/seed=1 --n 3` prints the first lines. */
export const showCorpus: ShowFn<CorpusParams> = async (ctx) => {
  const text = await readFile(join(ctx.outDir, 'text.txt'), 'utf8');
  const n = ctx.n ?? 5;
  return [`corpus seed=${ctx.params.seed}, ${ctx.params.words} words; first ${n} lines:`, ...text.split('\n').slice(0, n).map((l, i) => `  ${i + 1}. ${l}`)].join('\n');
};

export interface SummaryParams {
  top: number;
}

/** Reads every `counts` input (`<count> <word>` lines) and writes a Markdown table. */
export const summary: StageFn<SummaryParams> = async (ctx) => {
  const rows: string[] = ['# Word counts', '', '| corpus | top words |', '|---|---|'];
  for (const name of Object.keys(ctx.inputs).sort()) {
    const text = await readFile(join(ctx.inputs[name]!, 'counts.txt'), 'utf8');
    const top = text
      .trim()
      .split('\n')
      .slice(0, ctx.params.top)
      .map((l) => l.trim().split(/\s+/))
      .map(([c, w]) => `${w} (${c})`);
    rows.push(`| ${name} | ${top.join(', ')} |`);
  }
  await writeFile(join(ctx.outDir, 'summary.md'), `${rows.join('\n')}\n`);
};
