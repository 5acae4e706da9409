/**
 * @module explain — why a stage is not fresh, field by field (Dagster's StaleCause, with
 * Bazel-style verbose diffs): `params lr: 0.001 → 0.0003`, `code src/x.ts changed`, `upstream
 * data (dataset/a) changed`, `env backend: "cpu" → "webgl"`, `output artifacts/x/y was modified`.
 *
 * `inspect()` computes, without running or writing anything, every selected stage's key (when
 * its upstream outputs are known), its state, its causes and what `run` would do.
 */
import { canonicalJson, type Json, type Recipe } from './key.ts';
import { manifestDigest, manifestFiles, type Manifest } from './store.ts';
import type { Session } from './session.ts';
import type { Stage } from './task.ts';

export type CauseKind = 'params' | 'code' | 'upstream' | 'env' | 'output';
export interface Cause {
  kind: CauseKind;
  detail: string;
}
export type StageState = 'fresh' | 'stale' | 'missing';
/** What `run` would do: `run?` = runs unless an upstream rerun reproduces identical outputs. */
export type PlannedAction = 'fresh' | 'restore' | 'run' | 'run?';

export interface StageStatus {
  id: string;
  key: string | null;
  state: StageState;
  causes: Cause[];
  action: PlannedAction;
  forecastMs: number | undefined;
}

const show = (v: unknown): string => (v === undefined ? '(none)' : typeof v === 'string' ? v : canonicalJson(v));

/** Leaf-level differences between two JSON values: `path: old → new`. */
export function diffJson(a: Json | undefined, b: Json | undefined, path = ''): string[] {
  const isObj = (x: unknown): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in a)) out.push(`${p}: added ${show(b[k])}`);
      else if (!(k in b)) out.push(`${p}: removed (was ${show(a[k])})`);
      else out.push(...diffJson(a[k], b[k], p));
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((x, i) => diffJson(x, b[i], `${path}[${i}]`));
  }
  if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) return [];
  return [`${path || '(root)'}: ${show(a)} → ${show(b)}`];
}

/** Causes that turn recipe `a` into recipe `b`. Input changes name the upstream stage. */
export function diffRecipes(a: Recipe, b: Recipe): Cause[] {
  const causes: Cause[] = [];
  for (const d of diffJson(a.params, b.params)) causes.push({ kind: 'params', detail: d });
  if (a.kind !== b.kind || canonicalJson(a.body) !== canonicalJson(b.body)) {
    causes.push({ kind: 'code', detail: a.kind === 'command' && b.kind === 'command' ? 'command template changed' : `body ${show(a.body)} → ${show(b.body)}` });
  }
  for (const f of [...new Set([...Object.keys(a.code), ...Object.keys(b.code)])].sort()) {
    if (!(f in a.code)) causes.push({ kind: 'code', detail: `${f} now imported` });
    else if (!(f in b.code)) causes.push({ kind: 'code', detail: `${f} no longer imported` });
    else if (a.code[f] !== b.code[f]) causes.push({ kind: 'code', detail: `${f} changed` });
  }
  for (const d of diffJson(a.packages, b.packages)) causes.push({ kind: 'code', detail: `package ${d}` });
  if (canonicalJson(a.outputs) !== canonicalJson(b.outputs)) causes.push({ kind: 'code', detail: `declared outputs ${show(a.outputs)} → ${show(b.outputs)}` });
  if (a.timeoutMs !== b.timeoutMs) causes.push({ kind: 'code', detail: `timeoutMs ${show(a.timeoutMs)} → ${show(b.timeoutMs)}` });
  for (const n of [...new Set([...Object.keys(a.inputs), ...Object.keys(b.inputs)])].sort()) {
    const x = a.inputs[n];
    const y = b.inputs[n];
    if (!x) causes.push({ kind: 'upstream', detail: `new input ${n} (${y!.stage})` });
    else if (!y) causes.push({ kind: 'upstream', detail: `input ${n} (${x.stage}) removed` });
    else if (x.stage !== y.stage) causes.push({ kind: 'upstream', detail: `input ${n} now from ${y.stage} (was ${x.stage})` });
    else if (x.digest !== y.digest) causes.push({ kind: 'upstream', detail: `input ${n}: output of ${y.stage} changed` });
  }
  for (const d of diffJson(a.env, b.env)) causes.push({ kind: 'env', detail: d });
  return causes;
}

/** A recipe with unknown inputs, for explaining stages whose upstream must run first. */
function partialDiff(prev: Recipe, cur: Omit<Recipe, 'inputs'>, pending: string[], s: Stage): Cause[] {
  const causes = diffRecipes({ ...prev, inputs: {} }, { ...cur, inputs: {} });
  for (const n of pending) causes.push({ kind: 'upstream', detail: `input ${n}: ${s.inputs[n]} will be rebuilt first` });
  return causes;
}

function noRecipe(pending: string[], s: Stage): Cause[] {
  return [
    { kind: 'code', detail: 'key changed (the previous recipe is no longer in the store, so no finer explanation)' },
    ...pending.map((n) => ({ kind: 'upstream' as const, detail: `input ${n}: ${s.inputs[n]} will be rebuilt first` })),
  ];
}

function objectsPresent(ses: Session, m: Manifest): boolean {
  return manifestFiles(m).every(([, f]) => ses.store.findObject(f.digest) !== undefined);
}

/** Status of the given stages (topological order), read-only. Call `prepare` first. */
export function inspect(ses: Session, stages: readonly Stage[]): StageStatus[] {
  const known = new Map<string, Manifest>(); // outputs each stage will have after `run` (if knowable)
  const out: StageStatus[] = [];
  for (const s of stages) {
    const prevEntry = ses.ws.get(s.id);
    // The previous recipe lives in the run cache; read it only when something needs explaining.
    const prev = prevEntry && {
      ...prevEntry,
      get recipe(): Recipe | undefined {
        return ses.store.readRun(prevEntry.key)?.recipe;
      },
    };
    const forecastMs = ses.history.forecast(s.id);
    const pending = Object.entries(s.inputs).filter(([, up]) => !known.has(up)).map(([n]) => n);
    if (pending.length) {
      const digests = Object.fromEntries(Object.entries(s.inputs).map(([n, up]) => [n, known.has(up) ? manifestDigest(known.get(up)!) : '']));
      const cur = ses.recipe(s, digests);
      const causes = prev ? (prev.recipe ? partialDiff(prev.recipe, cur, pending, s) : noRecipe(pending, s)) : [{ kind: 'output' as const, detail: 'never built here' }];
      out.push({ id: s.id, key: null, state: prev ? 'stale' : 'missing', causes, action: 'run?', forecastMs });
      continue;
    }
    const digests = Object.fromEntries(Object.entries(s.inputs).map(([n, up]) => [n, manifestDigest(known.get(up)!)]));
    const recipe = ses.recipe(s, digests);
    const key = ses.key(recipe);
    if (prev && prev.key === key) {
      const chk = ses.ws.check(s.id, prev);
      if (chk.ok) {
        known.set(s.id, prev.outputs);
        out.push({ id: s.id, key, state: 'fresh', causes: [], action: 'fresh', forecastMs });
        continue;
      }
      const entry = ses.store.readRun(key);
      const restorable = entry && objectsPresent(ses, entry.outputs);
      if (restorable) known.set(s.id, entry.outputs);
      out.push({ id: s.id, key, state: 'stale', causes: [{ kind: 'output', detail: chk.detail }], action: restorable ? 'restore' : 'run', forecastMs });
      continue;
    }
    const entry = ses.store.readRun(key);
    const restorable = entry !== undefined && objectsPresent(ses, entry.outputs);
    if (restorable) known.set(s.id, entry.outputs);
    const causes: Cause[] = prev ? (prev.recipe ? diffRecipes(prev.recipe, recipe) : noRecipe([], s)) : [{ kind: 'output', detail: 'never built here' }];
    if (prev && causes.length === 0) causes.push({ kind: 'code', detail: 'engine version (salt) changed' });
    out.push({ id: s.id, key, state: prev ? 'stale' : 'missing', causes, action: restorable ? 'restore' : 'run', forecastMs });
  }
  return out;
}

