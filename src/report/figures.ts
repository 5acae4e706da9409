/**
 * @module figures — the report's charts as Vega-Lite specs, and their rendering to SVG strings in Node
 * (vega-lite compile → vega View with the 'none' renderer → toSVG; no canvas, no network).
 *
 * Each builder is a pure function of StudyResults returning a FigureSpec; one whose data is absent has `spec = null`
 * and says why in `omitted`, so the report prints a line instead of an empty chart. Rendering is deterministic:
 * vega numbers clip paths and gradients from a process-wide counter, so `renderSvg` renames every id in the SVG to
 * `<figure id>-<n>` in order of appearance (which also keeps ids unique when several SVGs sit in one page).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { POSITION_NAMES } from '../train/split.ts';
import { PAPER_AR_ACCURACY, PAPER_AR_DIMS, PAPER_MAMBA_CONV } from './paper.ts';
import type { RunResult, StageRef, StudyResults } from './results.ts';
import {
  attribAt, chanceOf, dConvAblation, effectiveDConv, fmtLr, mainBest, mechanismOf, mixerName, mixerRank, num, primaryTask, runLabel, stagesOf,
  type BestRun,
} from './select.ts';

type Spec = Record<string, unknown>;

export interface FigureSpec {
  /** Stable id: used as the SVG id prefix and the HTML anchor. */
  id: string;
  title: string;
  /** Vega-Lite spec, or null when the data is absent. */
  spec: Spec | null;
  /** Why the figure is omitted (when spec is null). */
  omitted: string | null;
  /** One line on what is plotted. */
  caption: string;
  /** Small enough to sit beside its neighbours (the per-architecture heatmaps). */
  compact?: boolean;
  stages: StageRef[];
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6', domainColor: '#888', tickColor: '#888' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 13, fontWeight: 600, anchor: 'start', offset: 10 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};
const MIXER_COLORS: Record<string, string> = {
  attention: '#4c78a8', based: '#f58518', mamba: '#54a24b', delta_net: '#b279a2', hyena: '#e45756', h3: '#9d755d', base_conv: '#72b7b2',
};
const colorScale = (mixers: string[]) => {
  const domain = [...new Set(mixers.map(mixerName))];
  const inv = new Map(mixers.map((m) => [mixerName(m), m]));
  return { domain, range: domain.map((n) => MIXER_COLORS[inv.get(n)!] ?? '#bab0ac') };
};
const top = (spec: Spec): Spec => ({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, background: 'white', padding: 8, ...spec });
const absent = (id: string, title: string, why: string, caption = ''): FigureSpec => ({ id, title, spec: null, omitted: why, caption, stages: [] });
const byMixer = (a: BestRun, b: BestRun) => mixerRank(a.best.mixer) - mixerRank(b.best.mixer) || a.best.d_model - b.best.d_model;

// ---- AR accuracy beside the paper ----

export function arAccuracyFigure(results: StudyResults): FigureSpec {
  const id = 'fig-ar-accuracy', title = 'AR accuracy, best over learning rate (this study beside the paper)';
  const task = primaryTask(results, 'ar');
  if (!task) return absent(id, title, 'no 2-layer AR runs in this study');
  const rows = mainBest(results, 'ar').filter((b) => b.best.task === task).sort(byMixer);
  const values = [
    ...rows.map((b) => ({ source: `this study (${task})`, arch: mixerName(b.best.mixer), d: b.best.d_model, acc: b.best.accuracy * 100 })),
    ...Object.entries(PAPER_AR_ACCURACY.value).flatMap(([m, accs]) =>
      accs.map((acc, i) => ({ source: 'paper (16 pairs, 8192 vocab)', arch: mixerName(m), d: PAPER_AR_DIMS[i]!, acc }))),
  ];
  const mixers = [...rows.map((b) => b.best.mixer), ...Object.keys(PAPER_AR_ACCURACY.value)].sort((a, b) => mixerRank(a) - mixerRank(b));
  return {
    id, title, omitted: null, stages: stagesOf(rows.map((b) => b.run), ['train', 'evaluate']),
    caption: `Accuracy (%) at the query, per architecture and width d; left: the ${task} task of this study, right: paper-setup.md §6.1.`,
    spec: top({
      title, data: { values },
      facet: { column: { field: 'source', type: 'nominal', title: null, sort: [`this study (${task})`, 'paper (16 pairs, 8192 vocab)'] } },
      resolve: { scale: { x: 'independent' } },
      spec: {
        width: 260, height: 200,
        layer: [
          { mark: { type: 'line', strokeWidth: 2 }, encoding: enc() },
          { mark: { type: 'point', filled: true, size: 50 }, encoding: { ...enc(), tooltip: [{ field: 'arch' }, { field: 'd' }, { field: 'acc', format: '.2f' }] } },
        ],
      },
    }),
  };
  function enc() {
    return {
      x: { field: 'd', type: 'ordinal', title: 'd_model' },
      y: { field: 'acc', type: 'quantitative', title: 'accuracy (%)', scale: { domain: [0, 100] } },
      color: { field: 'arch', type: 'nominal', title: 'architecture', scale: colorScale(mixers) },
    };
  }
}

// ---- Attrib heatmaps ----

const SITE_ORDER = ['block_input', 'mixer_input', 'conv_input', 'conv_output', 'ssm_output', 'gate', 'short_filter_output', 'q_conv', 'k_conv', 'v_conv', 'mixer_output', 'mlp_input', 'mlp_output', 'block_output'];

/** One representative run per architecture: the most accurate intervened main best run (ties: larger d). */
export function heatmapRuns(results: StudyResults, kind: 'ar' | 'atr'): BestRun[] {
  const task = primaryTask(results, kind);
  const pick = new Map<string, BestRun>();
  for (const b of mainBest(results, kind).filter((x) => x.best.task === task && x.run.intervene)) {
    const p = pick.get(b.best.mixer);
    if (!p || b.best.accuracy > p.best.accuracy || (b.best.accuracy === p.best.accuracy && b.best.d_model > p.best.d_model)) pick.set(b.best.mixer, b);
  }
  return [...pick.values()].sort(byMixer);
}

/** The mechanism call in words, and the probe numbers it was made from (null when not analysed). */
export function mechanismTitle(run: RunResult): string {
  const m = mechanismOf(run);
  if (!m) return 'not intervened';
  if (!m.analysed) return `not analysed (p̄_orig − p̄_corr = ${num(m.evidence.gap, 3)} ≤ 0.01)`;
  return `${m.call.replace('_', ' ')}${m.internal ? ` + ${m.internal.replace(/_/g, ' ')}` : ''}`;
}
function probeNumbers(run: RunResult): string {
  const m = mechanismOf(run);
  return m && m.analysed ? `probe L${m.probe.layer} block_input: value ${num(m.evidence.value)} · query ${num(m.evidence.query)} · key ${num(m.evidence.key)}` : '';
}

export function attribHeatmap(b: BestRun, kind: 'ar' | 'atr'): FigureSpec {
  const run = b.run;
  const id = `fig-${kind}-attrib-${run.mixer}`;
  const title = `${mixerName(run.mixer)} (${kind.toUpperCase()}): ${mechanismTitle(run)}`;
  const rows = (run.intervene?.rows ?? []).filter((r) => r.corruption === 'key' && r.attrib !== null);
  if (!rows.length) return absent(id, title, `no Attrib values to plot for ${run.id}`);
  const rowLabel = (layer: number, site: string) => `L${layer} ${site}`;
  const yOrder = [...new Set(rows.map((r) => `${r.layer}|${r.site}`))]
    .sort((p, q) => {
      const [lp, sp] = p.split('|'), [lq, sq] = q.split('|');
      return Number(lp) - Number(lq) || SITE_ORDER.indexOf(sp!) - SITE_ORDER.indexOf(sq!) || sp!.localeCompare(sq!);
    }).map((k) => rowLabel(Number(k.split('|')[0]), k.split('|')[1]!));
  const positions = (POSITION_NAMES as readonly string[]).filter((p) => rows.some((r) => r.position === p));
  const values = rows.map((r) => ({ row: rowLabel(r.layer, r.site), position: r.position, attrib: r.attrib, label: num(r.attrib) }));
  return {
    id, title, omitted: null, stages: stagesOf([run], ['train', 'intervene']), compact: true,
    caption: `Attrib of patching the clean activation at (layer, site) × position, key corrupted; ${runLabel(run)}, accuracy ${num(b.best.accuracy * 100, 1)} % (${run.id}).`,
    spec: top({
      title: { text: title, subtitle: [probeNumbers(run), `${runLabel(run)} · ${run.task}`] },
      data: { values },
      width: Math.max(200, 52 * positions.length), height: Math.max(66, 22 * yOrder.length),
      encoding: {
        x: { field: 'position', type: 'nominal', sort: positions, title: 'patched position', axis: { labelAngle: 0 } },
        y: { field: 'row', type: 'nominal', sort: yOrder, title: null },
      },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'attrib', type: 'quantitative', title: 'Attrib', scale: { domain: [-1, 1], scheme: 'blueorange', clamp: true }, legend: { gradientLength: 60, tickCount: 3 } } } },
        { mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'label' }, color: { condition: { test: 'abs(datum.attrib) > 0.6', value: 'white' }, value: '#222' } } },
      ],
    }),
  };
}

// ---- mechanism bars (ATR, and Mamba without conv) ----

function probeBars(id: string, title: string, caption: string, runs: { label: string; run: RunResult }[], xTitle: string, noRuns: string): FigureSpec {
  if (!runs.length) return absent(id, title, noRuns);
  const values = runs.flatMap(({ label, run }) => {
    const m = mechanismOf(run);
    if (!m || !m.analysed) return [];
    return (['key', 'value', 'query'] as const).map((p) => ({ x: label, position: p, attrib: m.evidence[p] }));
  }).filter((v) => v.attrib !== null);
  if (!values.length) return absent(id, title, 'none of these runs was intervened on and passed the paper\'s filter');
  const xs = [...new Set(values.map((v) => v.x))];
  return {
    id, title, caption, omitted: null, stages: stagesOf(runs.map((r) => r.run), ['train', 'intervene']),
    spec: top({
      title, data: { values }, width: Math.max(220, 70 * xs.length), height: 180,
      layer: [
        { mark: 'bar', encoding: {
          x: { field: 'x', type: 'nominal', sort: xs, title: xTitle, axis: { labelAngle: 0 } },
          xOffset: { field: 'position', type: 'nominal', sort: ['key', 'value', 'query'] },
          y: { field: 'attrib', type: 'quantitative', title: 'Attrib at the probe', scale: { domain: [-0.2, 1.2] } },
          color: { field: 'position', type: 'nominal', sort: ['key', 'value', 'query'], title: 'patched position', scale: { range: ['#9d755d', '#f58518', '#4c78a8'] } },
          tooltip: [{ field: 'x' }, { field: 'position' }, { field: 'attrib', format: '.3f' }],
        } },
        { mark: { type: 'rule', color: '#666', strokeDash: [4, 3] }, encoding: { y: { datum: 0.5, type: 'quantitative' } } },
      ],
    }),
  };
}

export function atrAccuracyFigure(results: StudyResults): FigureSpec {
  const id = 'fig-atr-accuracy', title = 'ATR accuracy, best over learning rate';
  const task = primaryTask(results, 'atr');
  if (!task) return absent(id, title, 'no 2-layer ATR runs in this study');
  const rows = mainBest(results, 'atr').filter((b) => b.best.task === task).sort(byMixer);
  const values = rows.map((b) => ({ arch: mixerName(b.best.mixer), d: `d${b.best.d_model}`, acc: b.best.accuracy * 100 }));
  return {
    id, title, omitted: null, stages: stagesOf(rows.map((b) => b.run), ['train', 'evaluate']),
    caption: `Accuracy (%) at the query on ${task}, per architecture and width.`,
    spec: top({
      title, data: { values }, width: Math.max(220, 60 * new Set(values.map((v) => v.arch)).size), height: 180,
      encoding: {
        x: { field: 'arch', type: 'nominal', sort: [...new Set(values.map((v) => v.arch))], title: 'architecture', axis: { labelAngle: 0 } },
        xOffset: { field: 'd', type: 'nominal' },
        y: { field: 'acc', type: 'quantitative', title: 'accuracy (%)', scale: { domain: [0, 100] } },
        color: { field: 'd', type: 'nominal', title: 'd_model', scale: { scheme: 'tableau10' } },
        tooltip: [{ field: 'arch' }, { field: 'd' }, { field: 'acc', format: '.2f' }],
      },
      mark: 'bar',
    }),
  };
}

export function atrMechanismFigure(results: StudyResults): FigureSpec {
  const runs = heatmapRuns(results, 'atr').map((b) => ({ label: `${mixerName(b.best.mixer)} d${b.best.d_model}`, run: b.run }));
  return probeBars('fig-atr-mechanism', 'ATR mechanisms: Attrib at the last layer\'s block input (key corrupted)',
    'Per architecture (most accurate intervened run): Attrib of restoring the clean key at the key, value and query positions; ' +
    'value ≥ 0.5 = induction, query/key = direct retrieval. Dashed line: the 0.5 threshold.', runs, 'architecture', 'no intervened 2-layer ATR runs in this study');
}

// ---- Mamba d_conv ablation (AR), conv-internal patching, Mamba without conv on ATR ----

export function dConvFigure(results: StudyResults): FigureSpec {
  const id = 'fig-mamba-dconv', title = 'Mamba short-conv ablation on AR: accuracy vs d_conv';
  const g = dConvAblation(results, 'ar');
  if (!g.length) return absent(id, title, 'no Mamba AR runs with two or more d_conv values');
  const points = g.flatMap((b) => b.best.lrs.map((l) => ({ d_conv: effectiveDConv(b.best), acc: l.accuracy * 100, series: `lr ${fmtLr(l.lr)}` })));
  const best = g.map((b) => ({ d_conv: effectiveDConv(b.best), acc: b.best.accuracy * 100 }));
  const chance = chanceOf(results, g[0]!.run);
  const b0 = g[0]!.best;
  return {
    id, title, omitted: null, stages: stagesOf(g.map((b) => b.run), ['train', 'evaluate']),
    caption: `Mamba d${b0.d_model} on ${b0.task}: best over learning rate (line) and each learning rate (dots)` +
      `${chance !== null ? `; dashed: chance (${num(chance * 100, 1)} %)` : ''}.`,
    spec: top({
      title, width: 300, height: 200,
      layer: [
        { data: { values: points }, mark: { type: 'point', filled: true, size: 45, opacity: 0.8 },
          encoding: { x: { field: 'd_conv', type: 'ordinal', title: 'd_conv' }, y: { field: 'acc', type: 'quantitative', title: 'accuracy (%)', scale: { domain: [0, 100] } },
            color: { field: 'series', type: 'nominal', title: 'learning rate', scale: { scheme: 'greys' } } } },
        { data: { values: best }, mark: { type: 'line', color: MIXER_COLORS.mamba, strokeWidth: 2, point: { color: MIXER_COLORS.mamba } },
          encoding: { x: { field: 'd_conv', type: 'ordinal' }, y: { field: 'acc', type: 'quantitative' } } },
        ...(chance !== null ? [{ data: { values: [{ c: chance * 100 }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { y: { field: 'c', type: 'quantitative' } } }] : []),
      ],
    }),
  };
}

/** Mamba AR best runs with d_conv 4 whose layer-0 conv_output was patched. */
export function convInternalRuns(results: StudyResults): BestRun[] {
  return mainBest(results, 'ar').filter((b) => b.best.mixer === 'mamba' && effectiveDConv(b.best) === 4 &&
    (b.run.intervene?.rows ?? []).some((r) => r.layer === 0 && r.site === 'conv_output'));
}

export function convInternalFigure(results: StudyResults): FigureSpec {
  const id = 'fig-mamba-conv-internal', title = 'Mamba conv-internal patching: layer-0 conv output, Attrib per position';
  const runs = convInternalRuns(results).filter((b) => mechanismOf(b.run)?.analysed);
  if (!runs.length) return absent(id, title, 'no analysed Mamba (d_conv 4) AR run with layer-0 conv_output patches');
  const p = PAPER_MAMBA_CONV.value;
  const paperAttrib = (x: number) => (x - p.p_corr) / (p.p_orig - p.p_corr);
  const values = [
    ...runs.flatMap((b) => (POSITION_NAMES as readonly string[]).flatMap((pos) => {
      const r = attribAt(b.run, 0, 'conv_output', pos);
      return r && r.attrib !== null ? [{ source: `this study: ${mixerName(b.best.mixer)} d${b.best.d_model}`, position: pos, attrib: r.attrib }] : [];
    })),
    ...Object.entries(p.restored).filter(([k]) => k !== 'value+2').map(([pos, x]) => ({ source: 'paper: Mamba d128 (v3 notebook)', position: pos, attrib: paperAttrib(x) })),
  ];
  const positions = (POSITION_NAMES as readonly string[]).filter((q) => values.some((v) => v.position === q));
  return {
    id, title, omitted: null, stages: stagesOf(runs.map((b) => b.run), ['train', 'intervene']),
    caption: 'Attrib of patching the clean layer-0 conv output (pre-SiLU) at one position, key corrupted. Paper values: (p_restored − p_corr)/(p_orig − p_corr) from paper-setup.md §6.2.',
    spec: top({
      title, data: { values }, width: Math.max(260, 60 * positions.length), height: 180,
      encoding: {
        x: { field: 'position', type: 'nominal', sort: positions, title: 'patched position', axis: { labelAngle: 0 } },
        xOffset: { field: 'source', type: 'nominal' },
        y: { field: 'attrib', type: 'quantitative', title: 'Attrib', scale: { domain: [-0.2, 1.2] } },
        color: { field: 'source', type: 'nominal', title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 420 } },
        tooltip: [{ field: 'source' }, { field: 'position' }, { field: 'attrib', format: '.3f' }],
      },
      mark: 'bar',
    }),
  };
}

export function atrNoConvFigure(results: StudyResults): FigureSpec {
  const g = dConvAblation(results, 'atr');
  const runs = g.map((b) => ({ label: `d_conv ${effectiveDConv(b.best)}`, run: b.run }));
  return probeBars('fig-atr-mamba-dconv', 'Mamba without conv on ATR: Attrib at the last layer\'s block input vs d_conv',
    g.length ? `Mamba d${g[0]!.best.d_model} on ${g[0]!.best.task}, best over learning rate per d_conv; value ≥ 0.5 = induction. Dashed line: 0.5.` : '',
    runs, 'd_conv', 'no Mamba ATR runs with two or more d_conv values');
}

// ---- training curves ----

export function trainingCurvesFigures(results: StudyResults): FigureSpec[] {
  // One figure per (task, group), so that a legend stays readable in the larger configs (≈ 80 runs).
  const keys = [...new Set(results.runs.map((r) => `${r.task}\u0000${r.group}`))].sort();
  if (!keys.length) return [absent('fig-training', 'Training curves', 'no runs')];
  return keys.map((k) => {
    const [task, group] = k.split('\u0000') as [string, string];
    const runs = results.runs.filter((r) => r.task === task && r.group === group && r.train.metrics.length)
      .sort((a, b) => mixerRank(a.mixer) - mixerRank(b.mixer) || a.id.localeCompare(b.id));
    const id = `fig-training-${`${task}-${group}`.replace(/[^A-Za-z0-9_-]/g, '_')}`, title = `Training curves: ${task}, group ${group}`;
    if (!runs.length) return absent(id, title, `no training metrics logged for ${task} / ${group}`);
    const loss = runs.flatMap((r) => r.train.metrics.map((m) => ({ run: runLabel(r), step: m.step, loss: Math.max(m.loss, 1e-6) })));
    const dev = runs.flatMap((r) => r.train.metrics.filter((m) => typeof m.dev_accuracy === 'number').map((m) => ({ run: runLabel(r), step: m.step, acc: m.dev_accuracy! * 100 })));
    const color = { field: 'run', type: 'nominal', title: 'run', sort: runs.map(runLabel), scale: { scheme: runs.length > 10 ? 'tableau20' : 'tableau10' }, legend: { columns: 1, labelLimit: 400 } };
    const maxStep = Math.max(...runs.flatMap((r) => r.train.metrics.map((m) => m.step)));
    // Both panels share the step axis; dev accuracy is logged rarely, so its points are marked.
    const panel = (values: unknown[], y: Spec, t: string, point: boolean) => ({ title: t, width: 300, height: 200, data: { values },
      mark: { type: 'line', strokeWidth: 1.5, ...(point ? { point: { size: 18 } } : {}) },
      encoding: { x: { field: 'step', type: 'quantitative', title: 'step', scale: { domain: [0, maxStep] } }, y, color } });
    return {
      id, title, omitted: null, stages: stagesOf(runs, ['train']),
      caption: `Training loss (cross-entropy at the answer, log scale) and dev accuracy vs step, one line per run of ${task} in group ${group}.`,
      spec: top({
        title,
        hconcat: [
          panel(loss, { field: 'loss', type: 'quantitative', title: 'loss', scale: { type: 'log' } }, 'loss', false),
          ...(dev.length ? [panel(dev, { field: 'acc', type: 'quantitative', title: 'dev accuracy (%)', scale: { domain: [0, 100] } }, 'dev accuracy', true)] : []),
        ],
      }),
    };
  });
}

// ---- rendering ----

/** Vega-Lite spec → SVG string, with every id renamed `<prefix>-<n>` in order of appearance. */
export async function renderSvg(spec: Spec, prefix: string): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    return deterministicIds(svg, prefix);
  } finally {
    view.finalize();
  }
}

export function deterministicIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!ids.has(m[1]!)) ids.set(m[1]!, `${prefix}-${ids.size + 1}`);
  if (!ids.size) return svg;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const alt = [...ids.keys()].sort((a, b) => b.length - a.length).map(esc).join('|');
  return svg
    .replace(new RegExp(`(\\sid=")(${alt})(")`, 'g'), (_, a: string, id: string, c: string) => `${a}${ids.get(id)}${c}`)
    .replace(new RegExp(`url\\(#(${alt})\\)`, 'g'), (_, id: string) => `url(#${ids.get(id)})`)
    .replace(new RegExp(`(href=")#(${alt})(")`, 'g'), (_, a: string, id: string, c: string) => `${a}#${ids.get(id)}${c}`);
}

export const rendererVersions = (): { vega: string; vegaLite: string } => ({ vega: vega.version, vegaLite: vl.version });
