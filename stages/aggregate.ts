/**
 * @module stages/aggregate — one table per study: every run's evaluation, and the best over learning rate per
 * (task, mixer, d, layers, d_conv, pos_emb) as the paper reports accuracy (paper-setup.md §4).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageContext } from '../src/engine/index.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import type { BestRow, RunCoordinates } from '../src/report/results.ts';

/** What the aggregate knows of each run: its coordinates in the grid and the name of its evaluate input. */
export interface RunCoords extends RunCoordinates {
  input: string;
  run: string;        // train stage id
}

export interface AggregateParams { runs: RunCoords[] }

export interface TableRow extends Omit<RunCoords, 'input'> { accuracy: number; mean_p_answer: number; n: number }

/** Best over LR; ties go to the smaller lr; seeds are averaged before the choice. */
export function bestOverLr(rows: TableRow[]): BestRow[] {
  const cells = new Map<string, TableRow[]>();
  for (const r of rows) {
    const k = JSON.stringify([r.task, r.mixer, r.d_model, r.n_layers, r.d_conv, r.pos_emb]);
    cells.set(k, [...(cells.get(k) ?? []), r]);
  }
  const out: BestRow[] = [];
  for (const rs of cells.values()) {
    const byLr = new Map<number, TableRow[]>();
    for (const r of rs) byLr.set(r.lr, [...(byLr.get(r.lr) ?? []), r]);
    const lrs = [...byLr].map(([lr, g]) => ({ lr, accuracy: g.reduce((a, r) => a + r.accuracy, 0) / g.length, run: g[0]!.run }))
      .sort((a, b) => a.lr - b.lr);
    const best = lrs.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
    const r0 = rs[0]!;
    out.push({
      task: r0.task, mixer: r0.mixer, d_model: r0.d_model, n_layers: r0.n_layers, d_conv: r0.d_conv, pos_emb: r0.pos_emb,
      best_lr: best.lr, accuracy: best.accuracy, run: best.run, lrs: lrs.map(({ lr, accuracy }) => ({ lr, accuracy })),
    });
  }
  return out.sort((a, b) => a.task.localeCompare(b.task) || a.mixer.localeCompare(b.mixer) || a.d_model - b.d_model ||
    a.n_layers - b.n_layers || (a.d_conv ?? -1) - (b.d_conv ?? -1) || Number(a.pos_emb) - Number(b.pos_emb));
}

export async function run(ctx: StageContext<AggregateParams>): Promise<void> {
  const rows: TableRow[] = ctx.params.runs.map(({ input, ...c }) => {
    const m = JSON.parse(readFileSync(join(ctx.inputs[input]!, 'metrics.json'), 'utf8')) as { accuracy: number; mean_p_answer: number; n: number };
    return { ...c, accuracy: m.accuracy, mean_p_answer: m.mean_p_answer, n: m.n };
  });
  writeFileAtomic(join(ctx.outDir, 'table.json'), JSON.stringify({ runs: rows, best: bestOverLr(rows) }, null, 1) + '\n');
}
