/**
 * @module document — the report as data: a header, the findings, and sections mirroring the paper (§6.1–§6.5, then
 * training curves and provenance), each a list of tables, figures and text. Both renderers (markdown.ts, html.ts)
 * walk this one structure, so report.md and index.html hold the same numbers in the same order. Pure and
 * deterministic: no clock, no randomness; `results.generatedBy` is not printed.
 */
import { judgeFindings, type Finding } from './findings.ts';
import {
  arAccuracyFigure, atrAccuracyFigure, atrMechanismFigure, atrNoConvFigure, attribHeatmap, convInternalFigure, convInternalRuns,
  dConvFigure, heatmapRuns, rendererVersions, trainingCurvesFigures, type FigureSpec,
} from './figures.ts';
import { PAPER_AR_ACCURACY, PAPER_AR_DIMS, PAPER_AR_VALUE_ATTRIB, PAPER_ATR, PAPER_CLAIMS, PAPER_MAMBA_CONV, PAPER_MISC, paperArAccuracy } from './paper.ts';
import type { RunResult, StageRef, StudyResults } from './results.ts';
import {
  attribAt, bestRuns, chanceOf, dConvAblation, effectiveDConv, finalDevAccuracy, fmtLr, fmtMs, mainBest, mechanismOf, mixerName, num, pct,
  type BestRun,
} from './select.ts';

export interface TableBlock {
  kind: 'table';
  caption: string;
  columns: string[];
  /** Right-align these columns (numbers). */
  numeric: boolean[];
  rows: string[][];
  /** Stages the numbers came from; empty for reference tables, which name a `source` instead. */
  stages: StageRef[];
  source?: string;
}
export interface FigureBlock { kind: 'figure'; figure: FigureSpec }
export interface TextBlock { kind: 'text'; text: string }
export type Block = TableBlock | FigureBlock | TextBlock;

export interface Section {
  id: string;
  title: string;
  /** What the paper reports for this section, with its source tag. */
  paper: string | null;
  blocks: Block[];
}

export interface ReportDoc {
  title: string;
  description: string;
  facts: [string, string][];
  findings: Finding[];
  sections: Section[];
}

const table = (caption: string, columns: string[], numeric: boolean[], rows: string[][], stages: StageRef[], source?: string): TableBlock =>
  ({ kind: 'table', caption, columns, numeric, rows, stages, ...(source ? { source } : {}) });
const text = (t: string): TextBlock => ({ kind: 'text', text: t });
const fig = (f: FigureSpec): FigureBlock => ({ kind: 'figure', figure: f });
const runsStages = (runs: RunResult[], which: ('train' | 'evaluate' | 'intervene')[]): StageRef[] => {
  const seen = new Set<string>();
  return runs.flatMap((r) => which.map((w) => (w === 'intervene' ? r.intervene?.stage : r[w].stage)))
    .filter((s): s is StageRef => !!s && !seen.has(s.id) && !!seen.add(s.id));
};
const lrsText = (b: BestRun) => b.best.lrs.map((l) => `${fmtLr(l.lr)}: ${pct(l.accuracy)}`).join(', ');
const callText = (r: RunResult): string => {
  const m = mechanismOf(r);
  if (!m) return 'not intervened';
  if (!m.analysed) return 'not analysed';
  return `${m.call}${m.internal ? ` + ${m.internal}` : ''}`;
};
const tasksOf = (rows: BestRun[]) => [...new Set(rows.map((b) => b.best.task))];

// ---- sections ----

function arAccuracySection(results: StudyResults): Section {
  const rows = mainBest(results, 'ar');
  const blocks: Block[] = [];
  for (const task of tasksOf(rows)) {
    const t = rows.filter((b) => b.best.task === task);
    const chance = chanceOf(results, t[0]!.run);
    blocks.push(table(`AR accuracy on ${task}, 2 layers, best over learning rate${chance !== null ? ` (chance ${pct(chance)})` : ''}`,
      ['architecture', 'PE', 'd', 'best lr', 'accuracy', 'paper (same d)', 'all learning rates', 'run'],
      [false, false, true, true, true, true, false, false],
      t.map((b) => [mixerName(b.best.mixer), b.best.pos_emb ? 'yes' : 'no', String(b.best.d_model), fmtLr(b.best.best_lr), pct(b.best.accuracy),
        b.best.pos_emb === (b.best.mixer === 'attention') ? (paperArAccuracy(b.best.mixer, b.best.d_model) === null ? '—' : `${num(paperArAccuracy(b.best.mixer, b.best.d_model))} %`) : '—',
        lrsText(b), b.run.id]),
      runsStages(t.map((b) => b.run), ['train', 'evaluate'])));
  }
  if (!rows.length) blocks.push(text('No 2-layer AR runs in this study.'));
  blocks.push(fig(arAccuracyFigure(results)));
  blocks.push(table('The paper: AR accuracy (%), 16 pairs, 8192 vocabulary, 2 layers, best over learning rate (Attention with PE, others NoPE)',
    ['architecture', ...PAPER_AR_DIMS.map((d) => `d ${d}`)], [false, ...PAPER_AR_DIMS.map(() => true)],
    Object.entries(PAPER_AR_ACCURACY.value).map(([m, a]) => [mixerName(m), ...a.map((x) => num(x))]), [], PAPER_AR_ACCURACY.source));
  return { id: 'ar-accuracy', title: 'AR accuracy (paper §6.1)', paper: `${PAPER_CLAIMS.F1!.value} ${PAPER_CLAIMS.F1!.source}`, blocks };
}

const PROBE_POSITIONS = ['key', 'value', 'next_key', 'divider', 'query', 'answer'] as const;

function mechanismTable(caption: string, rows: BestRun[]): TableBlock {
  const iv = rows.filter((b) => b.run.intervene);
  return table(caption,
    ['architecture', 'd', 'lr', 'accuracy', 'p̄ orig', 'p̄ corr', ...PROBE_POSITIONS.map((p) => `@${p}`), 'call', 'run'],
    [false, true, true, true, true, true, ...PROBE_POSITIONS.map(() => true), false, false],
    iv.map((b) => {
      const m = mechanismOf(b.run);
      const layer = m?.probe.layer ?? b.run.n_layers - 1;
      const any = b.run.intervene!.rows.find((r) => r.corruption === 'key');
      return [mixerName(b.best.mixer), String(b.best.d_model), fmtLr(b.run.lr), pct(b.best.accuracy), num(any?.p_orig, 3), num(any?.p_corr, 3),
        ...PROBE_POSITIONS.map((p) => num(attribAt(b.run, layer, 'block_input', p)?.attrib)), callText(b.run), b.run.id];
    }),
    runsStages(iv.map((b) => b.run), ['train', 'intervene']));
}

function arMechanismSection(results: StudyResults): Section {
  const rows = mainBest(results, 'ar');
  const blocks: Block[] = [];
  for (const task of tasksOf(rows)) {
    blocks.push(mechanismTable(`Attrib at the last layer's block input (the mechanism probe), key corrupted, on ${task}: best run per architecture and d`,
      rows.filter((b) => b.best.task === task)));
  }
  if (!rows.some((b) => b.run.intervene)) blocks.push(text('No intervened AR runs in this study.'));
  const heat = heatmapRuns(results, 'ar');
  for (const b of heat) blocks.push(fig(attribHeatmap(b, 'ar')));
  if (!heat.length) blocks.push(fig({ id: 'fig-ar-attrib', title: 'AR Attrib heatmaps', spec: null, omitted: 'no intervened AR runs', caption: '', stages: [] }));
  blocks.push(table('The paper: layer-1 block-input Attrib (%) at the value position, best checkpoint per (architecture, d = 16 … 256)',
    ['architecture', 'Attrib @ value'], [false, false], Object.entries(PAPER_AR_VALUE_ATTRIB.value).map(([m, v]) => [mixerName(m), v]), [], PAPER_AR_VALUE_ATTRIB.source));
  return { id: 'ar-mechanism', title: 'AR mechanisms (paper §5.2, §6.2)', paper: `${PAPER_CLAIMS.F2!.value} ${PAPER_CLAIMS.F2!.source}`, blocks };
}

function dConvSection(results: StudyResults): Section {
  const g = dConvAblation(results, 'ar');
  const blocks: Block[] = [];
  if (g.length) {
    const chance = chanceOf(results, g[0]!.run);
    blocks.push(table(`Mamba d${g[0]!.best.d_model} on ${g[0]!.best.task} by short-conv width, best over learning rate${chance !== null ? ` (chance ${pct(chance)})` : ''}`,
      ['d_conv', 'best lr', 'accuracy', 'all learning rates', 'call', 'run'], [true, true, true, false, false, false],
      g.map((b) => [String(effectiveDConv(b.best)), fmtLr(b.best.best_lr), pct(b.best.accuracy), lrsText(b), callText(b.run), b.run.id]),
      runsStages(g.map((b) => b.run), ['train', 'evaluate', 'intervene'])));
  } else blocks.push(text('No Mamba AR runs with two or more d_conv values in this study.'));
  blocks.push(fig(dConvFigure(results)));
  return { id: 'mamba-dconv', title: 'Mamba short-conv ablation on AR (paper §6.3)', paper: `${PAPER_CLAIMS.F4!.value} ${PAPER_CLAIMS.F4!.source}`, blocks };
}

function convInternalSection(results: StudyResults): Section {
  const runs = convInternalRuns(results);
  const blocks: Block[] = [];
  if (runs.length) {
    blocks.push(table('Layer-0 conv_output (pre-SiLU) patched at one position, key corrupted: Attrib',
      ['run', 'accuracy', ...PROBE_POSITIONS.map((p) => `@${p}`), 'call'], [false, true, ...PROBE_POSITIONS.map(() => true), false],
      runs.map((b) => [b.run.id, pct(b.best.accuracy), ...PROBE_POSITIONS.map((p) => num(attribAt(b.run, 0, 'conv_output', p)?.attrib)), callText(b.run)]),
      runsStages(runs.map((b) => b.run), ['train', 'intervene'])));
  } else blocks.push(text('No Mamba (d_conv 4) AR run with layer-0 conv_output patches in this study.'));
  blocks.push(fig(convInternalFigure(results)));
  const p = PAPER_MAMBA_CONV.value;
  blocks.push(table(`The paper: Mamba d128, lr 1e−3, NoPE, key corrupted (p̄ orig ${p.p_orig}, p̄ corr ${p.p_corr}): p_restored at the layer-0 conv output`,
    ['position', 'p_restored', 'Attrib'], [false, true, true],
    Object.entries(p.restored).map(([pos, x]) => [pos, num(x, 3), num((x - p.p_corr) / (p.p_orig - p.p_corr))]), [], PAPER_MAMBA_CONV.source));
  return { id: 'mamba-conv', title: 'Mamba conv-internal patching (paper v3, §6.2)', paper: `${PAPER_CLAIMS.F5!.value} ${PAPER_CLAIMS.F5!.source}`, blocks };
}

function atrSection(results: StudyResults): Section {
  const rows = mainBest(results, 'atr');
  const blocks: Block[] = [];
  for (const task of tasksOf(rows)) {
    const t = rows.filter((b) => b.best.task === task);
    blocks.push(table(`ATR accuracy on ${task}, 2 layers, best over learning rate`,
      ['architecture', 'PE', 'd', 'best lr', 'accuracy', 'all learning rates', 'run'], [false, false, true, true, true, false, false],
      t.map((b) => [mixerName(b.best.mixer), b.best.pos_emb ? 'yes' : 'no', String(b.best.d_model), fmtLr(b.best.best_lr), pct(b.best.accuracy), lrsText(b), b.run.id]),
      runsStages(t.map((b) => b.run), ['train', 'evaluate'])));
    blocks.push(mechanismTable(`ATR mechanisms on ${task}: Attrib at the last layer's block input, key corrupted`, t));
  }
  if (!rows.length) blocks.push(text('No 2-layer ATR runs in this study.'));
  blocks.push(fig(atrAccuracyFigure(results)));
  blocks.push(fig(atrMechanismFigure(results)));
  const a = PAPER_ATR.value;
  blocks.push(text(`The paper (${PAPER_ATR.source}): at ${a.setting}, d = ${a.d}: Mamba ${a.mamba} %, Attention ${a.attention} %.`));
  return { id: 'atr', title: 'ATR accuracy and mechanisms (paper §6.4)', paper: `${PAPER_CLAIMS.F7!.value} ${PAPER_CLAIMS.F7!.source}`, blocks };
}

function atrNoConvSection(results: StudyResults): Section {
  const g = dConvAblation(results, 'atr');
  const blocks: Block[] = [];
  if (g.length) {
    blocks.push(table(`Mamba d${g[0]!.best.d_model} on ${g[0]!.best.task} by short-conv width: accuracy and Attrib at the last layer's block input (key corrupted)`,
      ['d_conv', 'best lr', 'accuracy', '@key', '@value', '@query', 'call', 'run'], [true, true, true, true, true, true, false, false],
      g.map((b) => {
        const m = mechanismOf(b.run);
        return [String(effectiveDConv(b.best)), fmtLr(b.best.best_lr), pct(b.best.accuracy), num(m?.evidence.key), num(m?.evidence.value), num(m?.evidence.query), callText(b.run), b.run.id];
      }),
      runsStages(g.map((b) => b.run), ['train', 'evaluate', 'intervene'])));
  } else blocks.push(text('No Mamba ATR runs with two or more d_conv values in this study.'));
  blocks.push(fig(atrNoConvFigure(results)));
  return { id: 'atr-mamba-dconv', title: 'Mamba without conv on ATR (paper v3, §6.5)', paper: `${PAPER_CLAIMS.F8!.value} ${PAPER_CLAIMS.F8!.source}`, blocks };
}

function otherSection(results: StudyResults): Section {
  const all = bestRuns(results);
  const main = new Set([...mainBest(results, 'ar'), ...mainBest(results, 'atr')].map((b) => b.run.id));
  const rest = all.filter((b) => !main.has(b.run.id));
  const blocks: Block[] = [];
  if (rest.length) {
    blocks.push(table('Other best-over-LR rows (1-layer models, NoPE/PE variants, conv ablations, variants, held-out splits)',
      ['task', 'group', 'architecture', 'layers', 'd', 'd_conv', 'PE', 'variant', 'best lr', 'accuracy', 'eval split', 'dev (last)', 'call', 'run'],
      [false, false, false, true, true, true, false, false, true, true, false, true, false, false],
      rest.map((b) => [b.best.task, b.run.group, mixerName(b.best.mixer), String(b.best.n_layers), String(b.best.d_model), String(effectiveDConv(b.best) ?? '—'),
        b.best.pos_emb ? 'yes' : 'no', b.run.variant ?? '—', fmtLr(b.best.best_lr), pct(b.best.accuracy), b.run.evaluate.split, pct(finalDevAccuracy(b.run)),
        callText(b.run), b.run.id]),
      runsStages(rest.map((b) => b.run), ['train', 'evaluate', 'intervene'])));
  } else blocks.push(text('No other runs: every best row appears in the sections above.'));
  const o = PAPER_MISC.oneLayer.value, g = PAPER_MISC.generalisation.value;
  blocks.push(text(`The paper: 1-layer Mamba ${o.mamba1L} % vs 2-layer ${o.mamba2L} % at d = ${o.d}; 1-layer Attention and Based fail (${PAPER_MISC.oneLayer.source}). ` +
    `Held-out ATR pairs: Attention d = ${g.d} ${g.dev} % dev, ${g.test} % test (${PAPER_MISC.generalisation.source}). ` +
    `Attention without PE: ${PAPER_MISC.attentionNoPE.value.noPE} % at d = ${PAPER_MISC.attentionNoPE.value.d} (${PAPER_MISC.attentionNoPE.source}).`));
  return { id: 'other', title: '1-layer models, variants and generalisation (paper App. D, §6.6)', paper: null, blocks };
}

function trainingSection(results: StudyResults): Section {
  const runs = [...results.runs].sort((a, b) => a.task.localeCompare(b.task) || a.id.localeCompare(b.id));
  const blocks: Block[] = trainingCurvesFigures(results).map(fig);
  blocks.push(table('Every run: final training loss, last dev accuracy, evaluation and mechanism',
    ['run', 'group', 'steps', 'final loss', 'dev (last)', 'eval split', 'accuracy', 'mean p(answer)', 'call'],
    [false, false, true, true, true, false, true, true, false],
    runs.map((r) => [r.id, r.group, String(r.steps), num(r.train.metrics.at(-1)?.loss, 4), pct(finalDevAccuracy(r)), r.evaluate.split, pct(r.evaluate.accuracy),
      num(r.evaluate.mean_p_answer, 3), callText(r)]),
    runsStages(runs, ['train', 'evaluate', 'intervene'])));
  return { id: 'training', title: 'Training curves and every run', paper: null, blocks };
}

const sumMs = (xs: readonly StageRef[]): number | null => (xs.some((s) => s.ms !== null) ? xs.reduce((a, s) => a + (s.ms ?? 0), 0) : null);

/** [stage kind (the id's first segment), count, summed wall time] in order of first appearance by id. */
export function wallByKind(stages: readonly StageRef[]): [string, number, number | null][] {
  const sorted = [...stages].sort((a, b) => a.id.localeCompare(b.id));
  const kind = (id: string) => id.split('/')[0]!;
  return [...new Set(sorted.map((s) => kind(s.id)))].map((k) => {
    const xs = sorted.filter((s) => kind(s.id) === k);
    return [k, xs.length, sumMs(xs)];
  });
}

function provenanceSection(results: StudyResults): Section {
  const stages = [...results.stages].sort((a, b) => a.id.localeCompare(b.id));
  return {
    id: 'provenance', title: 'Provenance: every stage, key and wall time', paper: null, blocks: [
      table('Wall time per stage kind (sum over stages; from the engine\'s run cache)', ['stage kind', 'stages', 'wall time'], [false, true, true],
        [...wallByKind(stages).map(([k, n, ms]) => [k, String(n), fmtMs(ms)]), ['all', String(stages.length), fmtMs(sumMs(stages))]], stages),
      table('Every stage upstream of the report', ['stage', 'key', 'wall time'], [false, false, true],
        stages.map((s) => [s.id, s.key, fmtMs(s.ms)]), stages),
    ],
  };
}

export function buildReport(results: StudyResults): ReportDoc {
  const env = results.environment;
  const v = rendererVersions();
  const total = sumMs(results.stages);
  return {
    title: `mecheval report: ${results.config.name}`,
    description: results.config.description,
    facts: [
      ['study', 'Arora et al., "Mechanistic evaluation of Transformers and state space models" (arXiv 2505.15105), reproduced as a content-addressed build'],
      ['config', results.config.name],
      ['backend', `${env.backend} (${env.backendPackage})`],
      ['versions', `TensorFlow.js ${env.tfjs}, Node ${env.node}, ${env.platform}; charts: vega ${v.vega}, vega-lite ${v.vegaLite}`],
      ['runs', `${results.runs.length} trained, ${results.runs.filter((r) => r.intervene).length} intervened, ${results.best.length} best-over-LR rows, ${results.stages.length} stages`],
      ['wall time', `${fmtMs(total)} summed over ${results.stages.length} stages (${wallByKind(results.stages).map(([k, n, ms]) => `${k} ×${n}: ${fmtMs(ms)}`).join(', ')}; ` +
        'every stage: the provenance section)'],
    ],
    findings: judgeFindings(results),
    sections: [
      arAccuracySection(results), arMechanismSection(results), dConvSection(results), convInternalSection(results),
      atrSection(results), atrNoConvSection(results), otherSection(results), trainingSection(results), provenanceSection(results),
    ],
  };
}

/** The stages behind a finding: those of the runs it was judged on. */
export function findingStages(results: StudyResults, f: Finding): StageRef[] {
  const idx = new Map(results.runs.map((r) => [r.id, r]));
  return runsStages(f.runs.map((id) => idx.get(id)).filter((r): r is RunResult => !!r), ['train', 'evaluate', 'intervene']);
}
