/**
 * A hand-made StudyResults for the report tests: AR (3 pairs, chance 1/3) with Attention (induction), Based
 * (induction), Mamba d_conv 4 (direct retrieval + conv_next_key), Mamba d_conv 0 (at chance, fails the filter) and H3
 * (barely learns, fails the filter); ATR with Attention (induction) and Mamba (direct retrieval). Mechanism calls come
 * from the real callMechanism on the hand-made Attrib tables. A fresh copy per call, so tests may mutate it.
 */
import type { AttribRow } from '../../src/interventions/attrib.ts';
import { callMechanism } from '../../src/interventions/mechanism.ts';
import type { BestRow, RunResult, StageRef, StudyResults } from '../../src/report/results.ts';
import type { PositionName } from '../../src/train/split.ts';
import type { SiteName } from '../../src/models/sites.ts';

const POSITIONS: PositionName[] = ['key', 'value', 'next_key', 'divider', 'query', 'answer'];

/** A deterministic fake 64-hex key from a stage id. */
export function keyOf(id: string): string {
  let h = 2166136261;
  let out = '';
  for (let round = 0; round < 8; round++) {
    for (const ch of `${round}:${id}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}
const ref = (id: string, ms: number): StageRef => ({ id, key: keyOf(id), ms });

interface Spec {
  task: string; taskKind: 'ar' | 'atr'; group: string; mixer: string; d: number; layers?: number; d_conv?: number | null; pe?: boolean;
  lr: number; acc: number;
  /** Attrib overrides 'layer:site:position' → value (others 0); null = not intervened. */
  attrib?: Record<string, number> | null;
  gap?: number;
  extraSites?: [number, SiteName][];
}

export function makeRun(s: Spec): RunResult {
  const layers = s.layers ?? 2;
  const tag = `${s.mixer}-d${s.d}-L${layers}${s.d_conv !== undefined && s.d_conv !== null ? `-conv${s.d_conv}` : ''}${s.pe ? '-pe' : ''}-lr${s.lr}`;
  const id = `train/${s.task}/${tag}-s0`;
  const metrics = [0, 100, 200, 300].map((step, i) => ({ step, loss: 2.5 / (1 + i * i * s.acc * 3), lr: s.lr, dev_accuracy: 0.3 + (i / 3) * (s.acc - 0.3), wall_s: i * 2 }));
  let intervene: RunResult['intervene'] = null;
  if (s.attrib !== undefined && s.attrib !== null) {
    const gap = s.gap ?? 0.6;
    const analysed = gap > 0.01;
    const sites: [number, SiteName][] = [];
    for (let l = 0; l < layers; l++) sites.push([l, 'block_input']);
    sites.push(...(s.extraSites ?? []));
    const p_corr = 0.3, p_orig = p_corr + gap;
    const rows: AttribRow[] = sites.flatMap(([layer, site]) => POSITIONS.map((position): AttribRow => {
      const a = s.attrib![`${layer}:${site}:${position}`] ?? 0;
      return { layer, site, position, corruption: 'key', attrib: analysed ? a : null, p_orig, p_corr, p_restored: p_corr + a * gap, logit_diff: a * 3, max_perc: a > 0.5 ? 1 : 0, n: 320 };
    }));
    rows.sort((a, b) => a.layer - b.layer || a.site.localeCompare(b.site) || a.position.localeCompare(b.position));
    const m = callMechanism({ analysed, gap, rows }, layers);
    intervene = { stage: ref(id.replace('train/', 'intervene/'), 2100), rows, mechanism: { key: { ...m, analysed } } };
  }
  return {
    id, task: s.task, taskKind: s.taskKind, group: s.group, mixer: s.mixer, d_model: s.d, n_layers: layers, d_conv: s.d_conv ?? null,
    pos_emb: s.pe ?? false, lr: s.lr, seed: 0, steps: 300,
    train: { stage: ref(id, 61_500), metrics },
    evaluate: { stage: ref(id.replace('train/', 'evaluate/'), 800), split: 'test', accuracy: s.acc, mean_p_answer: s.acc * 0.9, n: 320 },
    intervene,
  };
}

/** Best over LR per (task, mixer, d, layers, d_conv, pe, variant), as the aggregate stage computes it. */
export function bestOf(runs: RunResult[]): BestRow[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const k = [r.task, r.mixer, r.d_model, r.n_layers, r.d_conv, r.pos_emb, r.variant ?? ''].join('|');
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const best = g.reduce((a, b) => (b.evaluate.accuracy > a.evaluate.accuracy ? b : a));
    return {
      task: best.task, mixer: best.mixer, d_model: best.d_model, n_layers: best.n_layers, d_conv: best.d_conv, pos_emb: best.pos_emb, variant: best.variant ?? null,
      best_lr: best.lr, accuracy: best.evaluate.accuracy, run: best.id, lrs: g.map((r) => ({ lr: r.lr, accuracy: r.evaluate.accuracy })),
    };
  });
}

export function study(runs: RunResult[]): StudyResults {
  const stages = [ref('dataset/ar3', 1200), ref('dataset/atr-easy', 3400),
    ...runs.flatMap((r) => [r.train.stage, r.evaluate.stage, ...(r.intervene ? [r.intervene.stage] : [])]), ref('aggregate', 40)];
  return {
    config: {
      name: 'fixture', description: 'A hand-made study for the report tests.',
      experiment: { name: 'fixture', tasks: { ar3: { task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 } }, 'atr-easy': { task: { kind: 'atr' } } } },
    },
    environment: { backend: 'wasm', backendPackage: '@tensorflow/tfjs-backend-wasm@4.22.0', node: 'v20.19.0', platform: 'linux-x64', tfjs: '4.22.0' },
    runs, best: bestOf(runs), stages, generatedBy: '2026-01-01T00:00:00Z',
  };
}

export function fixtureRuns(): RunResult[] {
  const ar = { task: 'ar3', taskKind: 'ar' as const, group: 'main', d: 64 };
  return [
    makeRun({ ...ar, mixer: 'attention', pe: true, lr: 3e-4, acc: 1, attrib: { '1:block_input:value': 1, '0:block_input:key': 1 } }),
    makeRun({ ...ar, mixer: 'attention', pe: true, lr: 1e-3, acc: 0.33 }),
    makeRun({ ...ar, mixer: 'based', lr: 1e-3, acc: 1, attrib: { '1:block_input:value': 0.99, '0:block_input:key': 1 } }),
    makeRun({ ...ar, mixer: 'mamba', lr: 3e-3, acc: 1, attrib: { '1:block_input:query': 1, '0:block_input:key': 1, '0:conv_output:next_key': 0.8, '0:conv_output:query': 0.3 }, extraSites: [[0, 'conv_output']] }),
    makeRun({ ...ar, group: 'mamba-dconv', mixer: 'mamba', d_conv: 0, lr: 3e-3, acc: 0.32, attrib: {}, gap: 0.004 }),
    makeRun({ ...ar, mixer: 'h3', lr: 3e-3, acc: 0.45, attrib: { '1:block_input:query': 0.9 }, gap: 0.008 }),
    makeRun({ task: 'atr-easy', taskKind: 'atr', group: 'atr', d: 64, mixer: 'attention', pe: true, lr: 3e-4, acc: 0.9, attrib: { '1:block_input:value': 0.95 } }),
    makeRun({ task: 'atr-easy', taskKind: 'atr', group: 'atr', d: 64, mixer: 'mamba', lr: 3e-3, acc: 0.95, attrib: { '1:block_input:query': 0.9, '1:block_input:key': 0.1 } }),
  ];
}

export const fixture = (): StudyResults => study(fixtureRuns());

/** Figures the fixture has data for (one <svg> each), and the ones it must omit. */
export const FIXTURE_FIGURES = [
  'fig-ar-accuracy', 'fig-ar-attrib-attention', 'fig-ar-attrib-based', 'fig-ar-attrib-mamba', 'fig-mamba-dconv', 'fig-mamba-conv-internal',
  'fig-atr-accuracy', 'fig-atr-mechanism', 'fig-training-ar3-main', 'fig-training-ar3-mamba-dconv', 'fig-training-atr-easy-atr',
];
export const FIXTURE_OMITTED = ['fig-ar-attrib-h3', 'fig-atr-mamba-dconv'];
