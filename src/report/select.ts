/**
 * @module select — reading a StudyResults record: which runs make up the paper's "main" comparison, the chance
 * level of a task, the Attrib value at a site, the stages a table came from, and number formatting. Shared by the
 * findings, the figures and the renderers so that all of them judge and print the same rows.
 */
import type { AttribRow } from '../interventions/attrib.ts';
import type { MechanismReport } from '../interventions/mechanism.ts';
import type { BestRow, RunResult, StageRef, StudyResults } from './results.ts';

/** Each mixer's short-conv width when `d_conv` is null (schemas/model.schema.json; zoology defaults). */
export const DEFAULT_D_CONV: Readonly<Record<string, number>> = { mamba: 4, based: 3, base_conv: 3 };

/** The paper's headline position-embedding setting: learned PE for Attention only (paper-setup.md §9.3). */
export const headlinePosEmb = (mixer: string): boolean => mixer === 'attention';

/** Display names and a fixed order for tables and legends. */
export const MIXER_ORDER = ['attention', 'based', 'mamba', 'delta_net', 'hyena', 'h3', 'base_conv'] as const;
const MIXER_NAMES: Record<string, string> = {
  attention: 'Attention', based: 'Based', mamba: 'Mamba', delta_net: 'DeltaNet', hyena: 'Hyena', h3: 'H3', base_conv: 'BaseConv',
};
export const mixerName = (m: string): string => MIXER_NAMES[m] ?? m;
export const mixerRank = (m: string): number => {
  const i = (MIXER_ORDER as readonly string[]).indexOf(m);
  return i < 0 ? MIXER_ORDER.length : i;
};

export const effectiveDConv = (r: { mixer: string; d_conv: number | null }): number | null => r.d_conv ?? DEFAULT_D_CONV[r.mixer] ?? null;

/** BaseConv/Based with the implicit long convolution in place of the short one (d_conv −1, or a 'long…' variant): F6. */
export const isLongConv = (r: { d_conv: number | null; variant?: string | null }): boolean =>
  r.d_conv === -1 || /long/.test(r.variant ?? '');

/** A run in its mixer's default form: no variant, and d_conv unset or equal to the mixer's default. */
export const isDefaultForm = (r: RunResult): boolean =>
  !r.variant && (r.d_conv === null || r.d_conv === DEFAULT_D_CONV[r.mixer]);

export interface BestRun {
  best: BestRow;
  run: RunResult;
}

export function runIndex(results: StudyResults): Map<string, RunResult> {
  return new Map(results.runs.map((r) => [r.id, r]));
}

/** Best-over-LR rows joined with their best run, in a stable order (task, mixer order, d, layers, d_conv, PE). */
export function bestRuns(results: StudyResults): BestRun[] {
  const idx = runIndex(results);
  const out: BestRun[] = [];
  for (const best of results.best) {
    const run = idx.get(best.run);
    if (run) out.push({ best, run });
  }
  return out.sort((a, b) =>
    a.best.task.localeCompare(b.best.task) || mixerRank(a.best.mixer) - mixerRank(b.best.mixer) ||
    a.best.mixer.localeCompare(b.best.mixer) || a.best.d_model - b.best.d_model || a.best.n_layers - b.best.n_layers ||
    (effectiveDConv(a.best) ?? -1) - (effectiveDConv(b.best) ?? -1) || Number(a.best.pos_emb) - Number(b.best.pos_emb));
}

/**
 * The main comparison for a task kind: best rows of `nLayers`-layer models in their default form, one per
 * (task, mixer, d) — the paper's headline PE setting where both were run (Attention with PE, the rest NoPE).
 */
export function mainBest(results: StudyResults, kind: 'ar' | 'atr', nLayers = 2): BestRun[] {
  const rows = bestRuns(results).filter((b) => b.run.taskKind === kind && b.best.n_layers === nLayers && isDefaultForm(b.run));
  const chosen = new Map<string, BestRun>();
  for (const b of rows) {
    const k = `${b.best.task}|${b.best.mixer}|${b.best.d_model}`;
    const prev = chosen.get(k);
    if (!prev || (b.best.pos_emb === headlinePosEmb(b.best.mixer) && prev.best.pos_emb !== headlinePosEmb(prev.best.mixer))) chosen.set(k, b);
  }
  return rows.filter((b) => chosen.get(`${b.best.task}|${b.best.mixer}|${b.best.d_model}`) === b);
}

/** The task of a kind the main comparison covers most widely (most mixers; ties: alphabetical). */
export function primaryTask(results: StudyResults, kind: 'ar' | 'atr'): string | null {
  const mixers = new Map<string, Set<string>>();
  for (const b of mainBest(results, kind)) mixers.set(b.best.task, (mixers.get(b.best.task) ?? new Set()).add(b.best.mixer));
  let best: string | null = null;
  for (const [task, s] of [...mixers].sort((a, b) => a[0].localeCompare(b[0]))) if (best === null || s.size > mixers.get(best)!.size) best = task;
  return best;
}

/**
 * The Mamba d_conv ablation on a task kind: 2-layer Mamba best rows without a variant, grouped by (task, d, PE);
 * the group with the most distinct d_conv values (ties: first in bestRuns order).
 */
export function dConvAblation(results: StudyResults, kind: 'ar' | 'atr'): BestRun[] {
  const groups = new Map<string, BestRun[]>();
  for (const b of bestRuns(results)) {
    if (b.best.mixer !== 'mamba' || b.run.taskKind !== kind || b.best.n_layers !== 2 || b.run.variant) continue;
    const k = `${b.best.task}|${b.best.d_model}|${b.best.pos_emb}`;
    groups.set(k, [...(groups.get(k) ?? []), b]);
  }
  let best: BestRun[] = [];
  const distinct = (g: BestRun[]) => new Set(g.map((b) => effectiveDConv(b.best))).size;
  for (const g of groups.values()) if (distinct(g) > distinct(best)) best = g;
  return distinct(best) >= 2 ? best : [];
}

/**
 * Chance accuracy of a run's task: `run.chance` when the report stage filled it in; otherwise, for AR, 1/pairs read
 * from the experiment config (`experiment.tasks[task]` as an object map or a `{name}` list, `pairs` directly, under
 * `task` or under `dataset.task`). Null when neither is there (ATR has no single chance level).
 */
export function chanceOf(results: StudyResults, run: RunResult): number | null {
  if (typeof run.chance === 'number') return run.chance;
  if (run.taskKind !== 'ar') return null;
  const pairs = pairsFromExperiment(results.config.experiment, run.task);
  return pairs ? 1 / pairs : null;
}

function pairsFromExperiment(exp: unknown, task: string): number | null {
  const obj = (x: unknown): Record<string, unknown> | null => (x && typeof x === 'object' && !Array.isArray(x) ? x as Record<string, unknown> : null);
  const tasks = obj(exp)?.tasks;
  let t: Record<string, unknown> | null = null;
  if (Array.isArray(tasks)) t = obj(tasks.find((x) => obj(x)?.name === task));
  else t = obj(obj(tasks)?.[task]);
  if (!t) return null;
  for (const c of [t, obj(t.task), obj(obj(t.dataset)?.task)]) if (c && typeof c.pairs === 'number' && c.pairs > 0) return c.pairs;
  return null;
}

/** The mechanism call for a corruption (default: key, as the paper reports), or null when not intervened. */
export function mechanismOf(run: RunResult, corruption = 'key'): (MechanismReport & { analysed: boolean }) | null {
  return run.intervene?.mechanism[corruption] ?? null;
}

export function attribAt(run: RunResult, layer: number, site: string, position: string, corruption = 'key'): AttribRow | null {
  return run.intervene?.rows.find((r) => r.layer === layer && r.site === site && r.position === position && r.corruption === corruption) ?? null;
}

/** Last dev accuracy logged during training, if any. */
export function finalDevAccuracy(run: RunResult): number | null {
  for (let i = run.train.metrics.length - 1; i >= 0; i--) {
    const a = run.train.metrics[i]!.dev_accuracy;
    if (typeof a === 'number') return a;
  }
  return null;
}

/** The stages a set of runs came from: train, evaluate and (if any) intervene of each, deduplicated, in run order. */
export function stagesOf(runs: readonly RunResult[], which: readonly ('train' | 'evaluate' | 'intervene')[] = ['train', 'evaluate', 'intervene']): StageRef[] {
  const seen = new Set<string>();
  const out: StageRef[] = [];
  for (const r of runs) {
    for (const w of which) {
      const s = w === 'intervene' ? r.intervene?.stage : r[w].stage;
      if (s && !seen.has(s.id)) { seen.add(s.id); out.push(s); }
    }
  }
  return out;
}

/** A short label for a run: mixer, d, layers, d_conv (when set), PE, lr. */
export function runLabel(r: RunResult): string {
  return [mixerName(r.mixer), `d${r.d_model}`, `L${r.n_layers}`, r.d_conv === -1 ? 'long conv' : r.d_conv !== null ? `conv${r.d_conv}` : null,
    r.variant ?? null, r.pos_emb ? 'PE' : 'NoPE', `lr ${fmtLr(r.lr)}`].filter(Boolean).join(' ');
}

// ---- formatting (fixed precision, so the output is a pure function of the numbers) ----

export const pct = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(digits)} %`);
export const num = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));
export const fmtLr = (lr: number): string => lr.toExponential(0).replace('e-', 'e−').replace('e+', 'e');
export const fmtMs = (ms: number | null): string => (ms === null ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);
export const shortKey = (key: string): string => key.slice(0, 12);
