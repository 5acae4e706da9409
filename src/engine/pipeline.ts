/**
 * @module pipeline — a validated DAG of stages, plus where its lock file lives.
 *
 * `pipeline({ stages })` checks what can be checked without running anything: unique ids, inputs
 * that name declared stages, no cycles, and no id that is a path prefix of another (their
 * `artifacts/<id>/` directories would nest). Stages are kept in a topological order.
 */
import { EngineError } from './errors.ts';
import type { Stage } from './task.ts';

export interface PipelineSpec {
  /** Shown in messages; defaults to the module file name. */
  name?: string;
  stages: readonly (Stage<any> | readonly Stage<any>[])[];
  /** Lock file name, relative to the pipeline root (default `pipeline.lock.json`). Use one per config. */
  lockFile?: string;
  /** Stage globs that `report` (and `run` with no targets, if `runDefaultOnly`) builds. */
  defaultTargets?: readonly string[];
  /** Directory that relative module paths, schemas, cache/ and artifacts/ hang off. Default: the module's directory. */
  root?: string;
}

export interface Pipeline {
  readonly name: string | undefined;
  /** topological order */
  readonly stages: readonly Stage<any>[];
  readonly byId: ReadonlyMap<string, Stage<any>>;
  readonly lockFile: string;
  readonly defaultTargets: readonly string[];
  readonly root: string | undefined;
  readonly __pipeline: true;
}

export type PipelineFactory = (opts: { config?: string }) => Pipeline | Promise<Pipeline>;

export function isPipeline(x: unknown): x is Pipeline {
  return typeof x === 'object' && x !== null && (x as { __pipeline?: unknown }).__pipeline === true;
}

export function pipeline(spec: PipelineSpec): Pipeline {
  const flat = spec.stages.flat() as Stage<any>[];
  const byId = new Map<string, Stage<any>>();
  for (const s of flat) {
    if (!s || (s as { __stage?: unknown }).__stage !== true) {
      throw new EngineError({ code: 'stage_invalid', message: 'pipeline stages must be created with stage(…)', fields: { value: String(s) } });
    }
    if (byId.has(s.id)) {
      throw new EngineError({ code: 'duplicate_stage', message: `stage id '${s.id}' is declared twice`, fields: { stage: s.id }, hint: 'stage ids must be unique; matrix ids include every axis value' });
    }
    byId.set(s.id, s);
  }
  const sortedIds = [...byId.keys()].sort();
  for (let i = 0; i + 1 < sortedIds.length; i++) {
    const a = sortedIds[i]!;
    for (let j = i + 1; j < sortedIds.length && sortedIds[j]!.startsWith(a); j++) {
      if (sortedIds[j]!.startsWith(`${a}/`)) {
        throw new EngineError({ code: 'stage_invalid', message: `stage id '${a}' is a path prefix of '${sortedIds[j]}'`, fields: { stage: a, other: sortedIds[j]! }, hint: `their artifacts/ directories would nest; rename one, e.g. '${a}/main'` });
      }
    }
  }
  for (const s of flat) {
    for (const [name, up] of Object.entries(s.inputs)) {
      if (!byId.has(up)) {
        throw new EngineError({ code: 'unknown_stage', message: `stage '${s.id}' input '${name}' names unknown stage '${up}'`, fields: { stage: s.id, input: name, upstream: up }, hint: 'add that stage to the pipeline or fix the id' });
      }
    }
  }
  return Object.freeze({
    name: spec.name,
    stages: Object.freeze(topoSort(flat, byId)),
    byId,
    lockFile: spec.lockFile ?? 'pipeline.lock.json',
    defaultTargets: Object.freeze([...(spec.defaultTargets ?? [])]),
    root: spec.root,
    __pipeline: true as const,
  });
}

/** Kahn-style DFS order; a cycle is reported with its path. */
function topoSort(stages: Stage<any>[], byId: Map<string, Stage<any>>): Stage<any>[] {
  const state = new Map<string, 1 | 2>();
  const out: Stage<any>[] = [];
  const path: string[] = []; // the ids being visited, one shared stack (a copy per edge is quadratic in chain length)
  const visit = (s: Stage<any>): void => {
    const st = state.get(s.id);
    if (st === 2) return;
    if (st === 1) {
      const cyc = [...path.slice(path.indexOf(s.id)), s.id];
      throw new EngineError({ code: 'cycle', message: `stage '${s.id}' depends on itself via ${cyc.join(' → ')}`, fields: { cycle: cyc.join(' → ') }, hint: 'remove one of these input edges' });
    }
    state.set(s.id, 1);
    path.push(s.id);
    for (const up of Object.values(s.inputs)) visit(byId.get(up)!);
    path.pop();
    state.set(s.id, 2);
    out.push(s);
  };
  for (const s of stages) visit(s);
  return out;
}

/** Stage ids matched by globs (picomatch; an exact id always matches itself), plus their upstream closure. */
export async function selectTargets(p: Pipeline, globs: readonly string[]): Promise<Set<string>> {
  const wanted = new Set<string>();
  if (globs.length === 0) {
    for (const s of p.stages) wanted.add(s.id);
    return wanted;
  }
  const { default: picomatch } = await import('picomatch');
  for (const g of globs) {
    const m = picomatch(g);
    let hit = false;
    for (const s of p.stages) {
      if (s.id === g || m(s.id)) {
        wanted.add(s.id);
        hit = true;
      }
    }
    if (!hit) {
      throw new EngineError({ code: 'unknown_stage', message: `no stage matches '${g}'`, fields: { pattern: g }, hint: 'list stage ids with `pipeline dag` or `pipeline status`' });
    }
  }
  return upstreamClosure(p, wanted);
}

export function upstreamClosure(p: Pipeline, ids: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const stack = [...ids];
  while (stack.length) {
    const id = stack.pop()!;
    if (out.has(id)) continue;
    out.add(id);
    for (const up of Object.values(p.byId.get(id)!.inputs)) stack.push(up);
  }
  return out;
}
