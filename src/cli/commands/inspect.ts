/**
 * @module commands/inspect — read-only commands: `status`, `dag`, `show`.
 */
import { existsSync } from 'node:fs';
import { importModule } from '../../engine/load.ts';
import { Session } from '../../engine/session.ts';
import { prepare } from '../../engine/build.ts';
import { selectTargets, upstreamClosure, type Pipeline } from '../../engine/pipeline.ts';
import { inspect } from '../../engine/explain.ts';
import { EngineError } from '../../engine/errors.ts';
import { manifestFiles } from '../../engine/store.ts';
import { line, type Ctx } from '../context.ts';
import type { DagFormat } from '../flags.ts';

export async function statusCommand(ctx: Ctx): Promise<number> {
  const p = ctx.loaded.pipeline;
  const ses = new Session(p, ctx.session);
  const wanted = await selectTargets(p, ctx.positionals);
  const stages = p.stages.filter((s) => wanted.has(s.id));
  await prepare(ses, stages);
  const st = inspect(ses, stages);
  if (ctx.options.json) {
    line(ctx.out, JSON.stringify({ stages: st.map((s) => ({ id: s.id, key: s.key, state: s.state, causes: s.causes.map((c) => ({ kind: c.kind, detail: c.detail })) })) }));
    return 0;
  }
  const n = { fresh: 0, stale: 0, missing: 0 };
  for (const s of st) {
    n[s.state]++;
    line(ctx.out, `${s.state.padEnd(8)} ${s.id}${s.state !== 'fresh' && s.action === 'restore' ? '  (restorable from the run cache)' : ''}`);
    for (const c of s.causes) line(ctx.out, `           ${c.kind}: ${c.detail}`);
  }
  line(ctx.out, `${n.fresh} fresh, ${n.stale} stale, ${n.missing} missing`);
  return 0;
}

const q = (s: string) => JSON.stringify(s);

export function renderDag(p: Pipeline, format: DagFormat): string {
  if (format === 'json') return JSON.stringify({ stages: p.stages.map((s) => ({ id: s.id, deps: [...new Set(Object.values(s.inputs))] })) });
  const ids = new Map(p.stages.map((s, i) => [s.id, `s${i}`]));
  if (format === 'dot') {
    const lines = ['digraph pipeline {', '  rankdir=LR;', '  node [shape=box];'];
    for (const s of p.stages) lines.push(`  ${q(s.id)};`);
    for (const s of p.stages) for (const [name, up] of Object.entries(s.inputs)) lines.push(`  ${q(up)} -> ${q(s.id)} [label=${q(name)}];`);
    lines.push('}');
    return lines.join('\n');
  }
  const lines = ['graph LR'];
  for (const s of p.stages) lines.push(`  ${ids.get(s.id)}[${q(s.id)}]`);
  for (const s of p.stages) for (const [name, up] of Object.entries(s.inputs)) lines.push(`  ${ids.get(up)} -->|${name}| ${ids.get(s.id)}`);
  return lines.join('\n');
}

export async function dagCommand(ctx: Ctx): Promise<number> {
  line(ctx.out, renderDag(ctx.loaded.pipeline, ctx.options.format));
  return 0;
}

export async function showCommand(ctx: Ctx): Promise<number> {
  const p = ctx.loaded.pipeline;
  const id = ctx.positionals[0]!;
  const s = p.byId.get(id);
  if (!s) throw new EngineError({ code: 'unknown_stage', message: `no stage '${id}'`, fields: { stage: id }, hint: 'list stage ids with `pipeline dag --format json`' });
  const ses = new Session(p, ctx.session);
  const entry = ses.ws.get(id);
  const dir = ses.ws.stageDir(id);
  if (!entry || !existsSync(dir)) {
    throw new EngineError({ code: 'stage_failed', message: `stage '${id}' has not been built here`, fields: { stage: id, dir }, hint: `run \`npm run pipeline -- run ${id}\` first` });
  }
  const closure = upstreamClosure(p, [id]);
  const stages = p.stages.filter((x) => closure.has(x.id));
  await prepare(ses, stages);
  const mine = inspect(ses, stages).find((x) => x.id === id);
  if (mine && mine.state !== 'fresh') ctx.err.write(`warning: ${id} is ${mine.state}; showing the outputs last built (run it to refresh)\n`);
  if (!s.show) {
    line(ctx.out, `${id} (no show function declared): artifacts/${id}/`);
    for (const [rel, f] of manifestFiles(entry.outputs)) line(ctx.out, `  ${rel}  ${f.size} bytes  ${f.digest.slice(0, 12)}`);
    return 0;
  }
  const mod = await importModule(ses.abs(s.show.module));
  const f = mod[s.show.export];
  if (typeof f !== 'function') {
    throw new EngineError({ code: 'stage_invalid', message: `show function '${s.show.export}' not exported by ${s.show.module}`, fields: { stage: id, module: s.show.module } });
  }
  const text = await (f as (c: unknown) => unknown)({ id, params: s.params, outDir: dir, n: ctx.options.n });
  if (typeof text === 'string') line(ctx.out, text.replace(/\n$/, ''));
  return 0;
}
