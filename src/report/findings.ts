/**
 * @module findings — one pure judge per qualitative finding F1–F9 of paper-setup.md §10.4, each `(results) → Finding`.
 *
 * Every judge turns the finding into checks, one per run (or run pair) the finding speaks about. A check holds
 * (ok = true), fails (ok = false), or cannot be judged (ok = null: the run exists but failed the paper's filter, or
 * the chance level is unknown). The status follows from the checks by one rule (`statusOf`):
 *   no checks, or only unjudgeable ones ................. 'not run'
 *   every check holds ................................... 'reproduced'
 *   every judgeable check fails ......................... 'not reproduced'
 *   anything else (some hold, or hold with gaps) ........ 'partly'
 * A part of a finding whose runs are absent adds an unjudgeable check, so a finding shown only in part is 'partly'.
 *
 * Thresholds (stated once, used everywhere):
 *   SUCCEEDS      accuracy ≥ 90 %: "learns the task" (the paper's Mamba best is 91.25 %)
 *   HIGH          accuracy ≥ 70 %: "high" in F1 for Mamba/DeltaNet (the paper's Mamba is 76.88–91.25 % at d ≥ 32)
 *   NEAR_CHANCE   accuracy ≤ chance + 15 points: "fails" (chance = 1/pairs for AR, see select.ts chanceOf)
 *   GAP           10 points: "clearly below" (F1 weak group, F6 long conv, F9 held-out pairs)
 *   COMPETITIVE   5 points: Mamba within this of Attention on ATR counts as "competitive" (F7)
 *   RESTORES      Attrib ≥ 0.5 (src/interventions/mechanism.ts): a position restores the answer
 * Mechanisms are read from the key corruption (the paper's), at the last layer's block input (the mechanism probe).
 */
import { RESTORES } from '../interventions/mechanism.ts';
import { PAPER_CLAIMS } from './paper.ts';
import type { RunResult, StudyResults } from './results.ts';
import {
  attribAt, bestRuns, chanceOf, dConvAblation, effectiveDConv, finalDevAccuracy, isDefaultForm, isLongConv, mainBest, mechanismOf, mixerName, num, pct, primaryTask,
  type BestRun,
} from './select.ts';

export const SUCCEEDS = 0.9;
export const HIGH = 0.7;
export const NEAR_CHANCE = 0.15;
export const GAP = 0.1;
export const COMPETITIVE = 0.05;
export { RESTORES };

export type FindingId = 'F1' | 'F2' | 'F3' | 'F4' | 'F5' | 'F6' | 'F7' | 'F8' | 'F9';
export type FindingStatus = 'reproduced' | 'not reproduced' | 'partly' | 'not run';

export interface Finding {
  id: FindingId;
  title: string;
  status: FindingStatus;
  /** The numbers the status was judged on, with run ids; '; '-separated, one item per check. */
  evidence: string;
  /** The rule, in words, with its thresholds. */
  rule: string;
  /** What the paper reports, with its source tag. */
  paper: string;
  /** Train stage ids of the runs judged. */
  runs: string[];
  /** The checks behind the status, one per run or run pair (ok null = could not be judged). */
  checks: { ok: boolean | null; text: string }[];
}

export interface Check {
  ok: boolean | null;
  text: string;
  run?: RunResult;
}

export function statusOf(checks: readonly Check[]): FindingStatus {
  const judged = checks.filter((c) => c.ok !== null);
  if (judged.length === 0) return 'not run';
  if (judged.length === checks.length && judged.every((c) => c.ok)) return 'reproduced';
  if (judged.every((c) => !c.ok)) return 'not reproduced';
  return 'partly';
}

const mark = (ok: boolean | null): string => (ok === null ? '?' : ok ? '✓' : '✗');
const accText = (b: BestRun): string => `${mixerName(b.best.mixer)} d${b.best.d_model} ${pct(b.best.accuracy)} (${b.run.id})`;

function finding(id: FindingId, title: string, rule: string, checks: Check[], notRun: string): Finding {
  const status = statusOf(checks);
  const evidence = checks.length === 0 ? notRun : checks.map((c) => `${mark(c.ok)} ${c.text}`).join('; ');
  const runs = [...new Set(checks.flatMap((c) => (c.run ? [c.run.id] : [])))];
  return { id, title, status, evidence, rule, paper: `${PAPER_CLAIMS[id]!.value} ${PAPER_CLAIMS[id]!.source}`, runs, checks: checks.map(({ ok, text }) => ({ ok, text })) };
}

/** Accuracy ≤ chance + NEAR_CHANCE, or null when chance is unknown. */
function nearChance(results: StudyResults, b: BestRun): { ok: boolean | null; text: string } {
  const c = chanceOf(results, b.run);
  if (c === null) return { ok: null, text: `${accText(b)}, chance unknown` };
  return { ok: b.best.accuracy <= c + NEAR_CHANCE, text: `${accText(b)} vs chance ${pct(c)} (fails if ≤ ${pct(c + NEAR_CHANCE)})` };
}

/** Value / query / key Attrib at the mechanism probe, key corruption; null fields where not measured. */
function probe(run: RunResult): { analysed: boolean | null; value: number | null; query: number | null; key: number | null; gap: number | null; call: string | null } {
  const m = mechanismOf(run);
  if (!m) return { analysed: null, value: null, query: null, key: null, gap: null, call: null };
  return { analysed: m.analysed, value: m.evidence.value, query: m.evidence.query, key: m.evidence.key, gap: m.evidence.gap, call: m.call };
}

const probeText = (run: RunResult, p: ReturnType<typeof probe>): string =>
  `${mixerName(run.mixer)} d${run.d_model}${run.d_conv !== null ? ` conv${run.d_conv}` : ''} (${run.id}): ` +
  `value ${num(p.value)}, query ${num(p.query)}, key ${num(p.key)} → ${p.call}`;

/** A mechanism check: null when the run failed the paper's filter; absent (undefined) when it was not intervened. */
function mechanismCheck(run: RunResult, holds: (p: ReturnType<typeof probe>) => boolean): Check | undefined {
  const p = probe(run);
  if (p.analysed === null) return undefined;
  if (!p.analysed) return { ok: null, run, text: `${mixerName(run.mixer)} d${run.d_model} (${run.id}) not analysed (p̄_orig − p̄_corr = ${num(p.gap, 3)} ≤ 0.01)` };
  return { ok: holds(p), run, text: probeText(run, p) };
}

const induction = (p: ReturnType<typeof probe>): boolean => (p.value ?? -Infinity) >= RESTORES;
const retrievalNotInduction = (p: ReturnType<typeof probe>): boolean =>
  !induction(p) && ((p.query ?? -Infinity) >= RESTORES || (p.key ?? -Infinity) >= RESTORES);

const STRONG = ['attention', 'based'];
const HIGH_GROUP = ['mamba', 'delta_net'];
const WEAK = ['hyena', 'h3', 'base_conv'];
const defined = <T>(x: T | undefined): x is T => x !== undefined;

export function f1(results: StudyResults): Finding {
  const rule = `primary AR task, 2-layer models in default form, best over LR, at the largest d: Attention (PE) and Based ≥ ${pct(SUCCEEDS, 0)}; ` +
    `Mamba and DeltaNet ≥ ${pct(HIGH, 0)}; each of H3, Hyena, BaseConv ≥ ${GAP * 100} points below the weakest of those; ` +
    `Attention NoPE (if run) ≤ chance + ${NEAR_CHANCE * 100} points. Absent groups make it 'partly'.`;
  const task = primaryTask(results, 'ar');
  const checks: Check[] = [];
  if (task) {
    const rows = mainBest(results, 'ar').filter((b) => b.best.task === task);
    const d = Math.max(...rows.map((b) => b.best.d_model));
    const atD = rows.filter((b) => b.best.d_model === d);
    const strong = atD.filter((b) => [...STRONG, ...HIGH_GROUP].includes(b.best.mixer));
    for (const b of strong) {
      const t = STRONG.includes(b.best.mixer) ? SUCCEEDS : HIGH;
      checks.push({ ok: b.best.accuracy >= t, run: b.run, text: `${accText(b)} (needs ≥ ${pct(t, 0)})` });
    }
    if (!strong.some((b) => STRONG.includes(b.best.mixer))) checks.push({ ok: null, text: `no Attention/Based run at d${d}` });
    const floor = strong.length ? Math.min(...strong.map((b) => b.best.accuracy)) : null;
    const weak = atD.filter((b) => WEAK.includes(b.best.mixer));
    for (const b of weak) {
      checks.push(floor === null ? { ok: null, run: b.run, text: `${accText(b)}, nothing to compare with` }
        : { ok: b.best.accuracy <= floor - GAP, run: b.run, text: `${accText(b)} (needs ≤ ${pct(floor - GAP)})` });
    }
    if (weak.length === 0) checks.push({ ok: null, text: `no H3/Hyena/BaseConv run at d${d}` });
    const nope = bestRuns(results).find((b) => b.best.task === task && b.best.mixer === 'attention' && !b.best.pos_emb &&
      b.best.n_layers === 2 && b.best.d_model === d && !b.run.variant);
    if (nope) { const c = nearChance(results, nope); checks.push({ ...c, run: nope.run, text: `NoPE ${c.text}` }); }
  }
  return finding('F1', 'AR accuracy ranking: Attention and Based ≈ 100 %, Mamba and DeltaNet high, H3/Hyena/BaseConv low', rule, checks,
    'no 2-layer AR runs');
}

export function f2(results: StudyResults): Finding {
  const rule = `every best 2-layer run (default form, primary AR task, key corruption) that passes the paper's filter: Attention/Based have ` +
    `value Attrib ≥ ${RESTORES} at the last layer's block input (induction); Mamba/DeltaNet, and Hyena/H3 where they learn ` +
    `(accuracy > chance + ${NEAR_CHANCE * 100} points), are called direct retrieval (query Attrib ≥ ${RESTORES}, nothing else). ` +
    `Best runs failing the filter make it 'partly'.`;
  const task = primaryTask(results, 'ar');
  const rows = task ? mainBest(results, 'ar').filter((b) => b.best.task === task) : [];
  const checks = rows.map((b): Check | undefined => {
    if (STRONG.includes(b.best.mixer)) return mechanismCheck(b.run, induction);
    if (HIGH_GROUP.includes(b.best.mixer)) return mechanismCheck(b.run, (p) => p.call === 'direct_retrieval');
    if (b.best.mixer === 'hyena' || b.best.mixer === 'h3') {
      const c = chanceOf(results, b.run);
      if (c === null || b.best.accuracy <= c + NEAR_CHANCE) return undefined;
      return mechanismCheck(b.run, (p) => p.call === 'direct_retrieval');
    }
    return undefined;
  }).filter(defined);
  return finding('F2', 'AR mechanisms: induction (value) for Attention/Based, direct retrieval (query) for Mamba/DeltaNet', rule, checks,
    'no intervened AR best runs');
}

export function f3(results: StudyResults): Finding {
  const rule = `1-layer AR best runs (default form): Attention, Based and BaseConv ≤ chance + ${NEAR_CHANCE * 100} points; Mamba ≥ ${pct(SUCCEEDS, 0)}.`;
  const checks: Check[] = [];
  for (const b of mainBest(results, 'ar', 1)) {
    if (b.best.mixer === 'mamba') checks.push({ ok: b.best.accuracy >= SUCCEEDS, run: b.run, text: `${accText(b)} (needs ≥ ${pct(SUCCEEDS, 0)})` });
    else if ([...STRONG, 'base_conv'].includes(b.best.mixer)) checks.push({ ...nearChance(results, b), run: b.run });
  }
  return finding('F3', '1-layer: Attention and Based fail AR, Mamba still succeeds', rule, checks, 'no 1-layer AR runs');
}

export function f4(results: StudyResults): Finding {
  const rule = `Mamba d_conv ablation on AR (2 layers, best over LR, one (task, d)): d_conv 0 and 1 ≤ chance + ${NEAR_CHANCE * 100} points; ` +
    `d_conv ≥ 2 ≥ ${pct(SUCCEEDS, 0)}. Needs at least one run on each side.`;
  const g = dConvAblation(results, 'ar');
  const lo = g.filter((b) => effectiveDConv(b.best)! <= 1), hi = g.filter((b) => effectiveDConv(b.best)! >= 2);
  const checks: Check[] = lo.length && hi.length ? [
    ...lo.map((b) => { const c = nearChance(results, b); return { ...c, run: b.run, text: `d_conv ${effectiveDConv(b.best)}: ${c.text}` }; }),
    ...hi.map((b) => ({ ok: b.best.accuracy >= SUCCEEDS, run: b.run, text: `d_conv ${effectiveDConv(b.best)}: ${accText(b)} (needs ≥ ${pct(SUCCEEDS, 0)})` })),
  ] : [];
  return finding('F4', 'Mamba needs its short conv on AR: d_conv 0/1 fail, ≥ 2 succeed', rule, checks,
    'no Mamba AR runs with both d_conv ≤ 1 and d_conv ≥ 2');
}

export function f5(results: StudyResults): Finding {
  const rule = `Mamba AR best runs with d_conv 4 (2 layers, passing the filter, key corruption): layer-0 conv_output patched at the next key ` +
    `(value + 1) has Attrib ≥ ${RESTORES} (mechanism internal = conv_next_key).`;
  const checks = bestRuns(results)
    .filter((b) => b.best.mixer === 'mamba' && b.run.taskKind === 'ar' && b.best.n_layers === 2 && !b.run.variant && effectiveDConv(b.best) === 4)
    .map((b): Check | undefined => {
      const m = mechanismOf(b.run);
      if (!m) return undefined;
      const row = attribAt(b.run, 0, 'conv_output', 'next_key');
      if (!row) return { ok: null, run: b.run, text: `${b.run.id}: conv_output @ next key not patched` };
      if (!m.analysed) return { ok: null, run: b.run, text: `${b.run.id} not analysed (gap ${num(m.evidence.gap, 3)})` };
      const others = (['key', 'value', 'query'] as const).map((p) => `${p} ${num(attribAt(b.run, 0, 'conv_output', p)?.attrib)}`).join(', ');
      return { ok: (row.attrib ?? -Infinity) >= RESTORES, run: b.run, text: `Mamba d${b.best.d_model} (${b.run.id}): layer-0 conv_output next key ${num(row.attrib)} (${others})` };
    }).filter(defined);
  return finding('F5', 'Mamba conv-internal: the layer-0 conv output at the next key restores the answer', rule, checks,
    'no intervened Mamba d_conv 4 AR runs');
}

export function f6(results: StudyResults): Finding {
  const rule = `each Based AR best run with the long conv in place of its short conv (d_conv −1, tinylang's based_long_only) is ≥ ${GAP * 100} ` +
    `points below the default Based best run of the same task, d and layers.`;
  const all = bestRuns(results).filter((b) => b.best.mixer === 'based' && b.run.taskKind === 'ar');
  const checks = all.filter((b) => isLongConv(b.run)).map((b): Check => {
    const ref = all.find((r) => isDefaultForm(r.run) && r.best.task === b.best.task && r.best.d_model === b.best.d_model && r.best.n_layers === b.best.n_layers);
    if (!ref) return { ok: null, run: b.run, text: `${accText(b)}: no short-conv Based run to compare with` };
    return { ok: b.best.accuracy <= ref.best.accuracy - GAP, run: b.run, text: `long conv ${accText(b)} vs short conv ${accText(ref)}` };
  });
  return finding('F6', 'Based with a long conv instead of its short conv degrades on AR', rule, checks, 'no Based long-conv runs');
}

export function f7(results: StudyResults): Finding {
  const rule = `primary ATR task, 2-layer best runs (default form) passing the filter: Attention/Based/BaseConv value Attrib ≥ ${RESTORES} ` +
    `(induction); Mamba, DeltaNet, H3, Hyena value Attrib < ${RESTORES} with query or key ≥ ${RESTORES} (direct or delayed retrieval); ` +
    `and at each d with both, Mamba accuracy ≥ Attention − ${COMPETITIVE * 100} points.`;
  const task = primaryTask(results, 'atr');
  const rows = task ? mainBest(results, 'atr').filter((b) => b.best.task === task) : [];
  const checks: Check[] = rows.map((b) => ([...STRONG, 'base_conv'].includes(b.best.mixer) ? mechanismCheck(b.run, induction)
    : mechanismCheck(b.run, retrievalNotInduction))).filter(defined);
  for (const m of rows.filter((b) => b.best.mixer === 'mamba')) {
    const a = rows.find((b) => b.best.mixer === 'attention' && b.best.d_model === m.best.d_model);
    if (a) checks.push({ ok: m.best.accuracy >= a.best.accuracy - COMPETITIVE, run: m.run, text: `${accText(m)} vs ${accText(a)}` });
  }
  return finding('F7', 'ATR: Attention/Based induction, Mamba direct retrieval, Mamba competitive', rule, checks, 'no ATR best runs');
}

export function f8(results: StudyResults): Finding {
  const rule = `Mamba d_conv ablation on ATR (2 layers, best over LR, one (task, d), passing the filter): d_conv 0 and 1 have value Attrib ≥ ${RESTORES} ` +
    `(induction), d_conv ≥ 2 do not. Needs a run with d_conv ≤ 1.`;
  const g = dConvAblation(results, 'atr');
  const checks = g.some((b) => effectiveDConv(b.best)! <= 1) ? g.map((b) => {
    const lo = effectiveDConv(b.best)! <= 1;
    const c = mechanismCheck(b.run, lo ? induction : (p) => !induction(p));
    return c && { ...c, text: `d_conv ${effectiveDConv(b.best)} ${pct(b.best.accuracy)}: ${c.text}` };
  }).filter(defined) : [];
  return finding('F8', 'Mamba without its conv on ATR moves to induction (Attrib at the value)', rule, checks,
    'no intervened Mamba ATR runs with d_conv ≤ 1');
}

export function f9(results: StudyResults): Finding {
  const rule = `best runs evaluated on the held-out-pair split ('gen'): gen accuracy ≥ ${GAP * 100} points below the last dev accuracy logged in training.`;
  const checks = bestRuns(results).filter((b) => b.run.evaluate.split === 'gen').map((b): Check => {
    const dev = finalDevAccuracy(b.run);
    if (dev === null) return { ok: null, run: b.run, text: `${b.run.id}: no dev accuracy logged` };
    return { ok: b.run.evaluate.accuracy <= dev - GAP, run: b.run, text: `${mixerName(b.best.mixer)} d${b.best.d_model} (${b.run.id}): dev ${pct(dev)}, gen ${pct(b.run.evaluate.accuracy)}` };
  });
  return finding('F9', 'ATR held-out pairs: accuracy drops well below dev', rule, checks, 'no runs evaluated on a held-out (gen) split');
}

export const FINDING_JUDGES: readonly ((r: StudyResults) => Finding)[] = [f1, f2, f3, f4, f5, f6, f7, f8, f9];

export function judgeFindings(results: StudyResults): Finding[] {
  return FINDING_JUDGES.map((j) => j(results));
}
