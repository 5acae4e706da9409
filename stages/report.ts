/**
 * @module stages/report — gather every upstream result into one StudyResults record (src/report/results.ts) and
 * render it: results.json (the numbers, deterministic), report.md and index.html (they also state wall times per
 * stage, which differ between runs, so they are declared volatile: stored and restored, but not part of the digest
 * that drives early cutoff and `verify`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Stage, StageContext } from '../src/engine/index.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { probeBackend } from '../src/models/probe.ts';
import { readMetrics } from '../src/train/loop.ts';
import type { RunResult, StageRef, StudyResults, BestRow } from '../src/report/results.ts';
import { renderHtml, renderMarkdown } from '../src/report/index.ts';
import type { RunCoords } from './aggregate.ts';

export interface ReportRun {
  coords: Omit<RunCoords, 'input'> & { steps: number; taskKind: 'ar' | 'atr' };
  train: Stage;
  evaluate: Stage;
  intervene: Stage | null;
}

export interface ReportParams {
  config: { name: string; description: string; experiment: unknown };
  runs: (Omit<RunCoords, 'input'> & { steps: number; taskKind: 'ar' | 'atr'; inputs: { train: string; evaluate: string; intervene: string | null } })[];
}

const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;

export async function run(ctx: StageContext<ReportParams>): Promise<void> {
  const ref = (input: string): StageRef => {
    const u = ctx.upstream[input]!;
    return { id: u.id, key: u.key, ms: u.ms };
  };
  const runs: RunResult[] = ctx.params.runs.map(({ inputs, ...c }) => {
    const ev = readJson<{ accuracy: number; mean_p_answer: number; n: number; split: string }>(join(ctx.inputs[inputs.evaluate]!, 'metrics.json'));
    return {
      id: c.run, task: c.task, taskKind: c.taskKind, group: c.group, mixer: c.mixer, d_model: c.d_model, n_layers: c.n_layers,
      d_conv: c.d_conv, pos_emb: c.pos_emb, lr: c.lr, seed: c.seed, steps: c.steps,
      train: { stage: ref(inputs.train), metrics: readMetrics(join(ctx.inputs[inputs.train]!, 'metrics.jsonl')) },
      evaluate: { stage: ref(inputs.evaluate), split: ev.split, accuracy: ev.accuracy, mean_p_answer: ev.mean_p_answer, n: ev.n },
      intervene: inputs.intervene === null ? null : {
        stage: ref(inputs.intervene),
        rows: readJson(join(ctx.inputs[inputs.intervene]!, 'attrib.json')),
        mechanism: readJson(join(ctx.inputs[inputs.intervene]!, 'mechanism.json')),
      },
    };
  });
  const table = readJson<{ best: BestRow[] }>(join(ctx.inputs.aggregate!, 'table.json'));
  const backend = probeBackend();
  const results: StudyResults = {
    config: ctx.params.config,
    environment: {
      backend: backend.backend, backendPackage: backend.package, node: process.version, platform: `${process.platform}-${process.arch}`,
      tfjs: backend.package.split('@').pop()!,
    },
    runs,
    best: table.best,
    stages: Object.keys(ctx.upstream).sort().map(ref),
    generatedBy: 'mecheval report stage',
  };
  // results.json holds the numbers only: wall times (`ms`, `wall_s`) are dropped, so two runs of the same study give
  // the same bytes and `verify` can compare it; report.md and index.html state them and are volatile.
  const numbersOnly = (k: string, v: unknown) => (k === 'ms' || k === 'wall_s' ? undefined : v);
  writeFileAtomic(join(ctx.outDir, 'results.json'), JSON.stringify(results, numbersOnly, 1) + '\n');
  writeFileAtomic(join(ctx.outDir, 'report.md'), renderMarkdown(results));
  writeFileAtomic(join(ctx.outDir, 'index.html'), await renderHtml(results));
  ctx.log(`report: ${runs.length} runs, ${results.stages.length} upstream stages`);
}
