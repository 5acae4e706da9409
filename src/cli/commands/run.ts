/**
 * @module commands/run — `run`, its `--dry-run`, and `report` (run the report targets).
 */
import { relative } from 'node:path';
import { build, prepare, defaultCapacity, firstFailure, type BuildResult } from '../../engine/build.ts';
import { Session } from '../../engine/session.ts';
import { selectTargets, type Pipeline } from '../../engine/pipeline.ts';
import { inspect } from '../../engine/explain.ts';
import { consoleReporter, fmtMs, nowMs } from '../../engine/progress.ts';
import { formatError } from '../../engine/errors.ts';
import { manifestFiles } from '../../engine/store.ts';
import { interruptSignal, line, type Ctx } from '../context.ts';
import { chooseExecutor } from '../executor.ts';

export async function dryRun(ctx: Ctx, targets: readonly string[]): Promise<number> {
  const p = ctx.loaded.pipeline;
  const ses = new Session(p, ctx.session);
  const wanted = await selectTargets(p, targets);
  const stages = p.stages.filter((s) => wanted.has(s.id));
  await prepare(ses, stages, defaultCapacity(ctx.options));
  const st = inspect(ses, stages);
  if (ctx.options.json) {
    for (const s of st) line(ctx.out, JSON.stringify({ stage: s.id, key: s.key, action: s.action, forecastMs: s.forecastMs ?? null }));
    return 0;
  }
  let total = 0;
  let unknown = 0;
  const counts: Record<string, number> = { run: 0, 'run?': 0, restore: 0, fresh: 0 };
  for (const s of st) {
    counts[s.action] = (counts[s.action] ?? 0) + 1;
    if (s.action === 'fresh') continue;
    if (s.action === 'run' || s.action === 'run?') {
      if (s.forecastMs === undefined) unknown++;
      else total += s.forecastMs;
    }
    const fc = s.action === 'restore' ? '' : s.forecastMs === undefined ? '  (no history)' : `  ≈ ${fmtMs(s.forecastMs)}`;
    line(ctx.out, `${s.action.padEnd(8)} ${s.id}${fc}`);
    for (const c of s.causes) line(ctx.out, `           ${c.kind}: ${c.detail}`);
  }
  const toRun = counts.run! + counts['run?']!;
  line(ctx.out, `${toRun} to run${counts['run?'] ? ` (${counts['run?']} only if their upstream output changes)` : ''}, ${counts.restore} to restore, ${counts.fresh} fresh; forecast ≈ ${fmtMs(total)}${unknown ? ` + ${unknown} stage(s) with no history` : ''}`);
  return 0;
}

export async function runTargets(ctx: Ctx, targets: readonly string[]): Promise<{ code: number; result?: BuildResult }> {
  const json = ctx.options.json;
  const reporter = consoleReporter({ json, verbose: ctx.options.verbose, out: ctx.out, err: ctx.err });
  const intr = interruptSignal(ctx);
  const t0 = nowMs();
  let result: BuildResult;
  const where = await chooseExecutor(ctx, ctx.loaded.pipeline);
  try {
    result = await build(ctx.loaded.pipeline, {
      ...ctx.session,
      targets,
      ...where,
      keepGoing: ctx.options.keepGoing,
      lockWait: !ctx.options.noWait,
      reporter,
      signal: intr.signal,
    });
  } catch (e) {
    if (!intr.interrupted()) throw e;
    line(ctx.err, formatError(e));
    return { code: 130 }; // interrupted while waiting for the lock or preparing
  } finally {
    intr.dispose();
    await where.executor?.close();
  }
  const c: Record<string, number> = { ran: 0, restored: 0, fresh: 0, failed: 0, cancelled: 0 };
  for (const o of result.outcomes) c[o.action] = (c[o.action] ?? 0) + 1;
  const summary = `${c.ran} ran, ${c.restored} restored, ${c.fresh} fresh, ${c.failed} failed, ${c.cancelled} cancelled in ${fmtMs(nowMs() - t0)}`;
  line(json ? ctx.err : ctx.out, summary);
  if (intr.interrupted()) return { code: 130, result };
  if (!result.ok) {
    const e = firstFailure(result);
    // the live reporter already printed each failure; with --json stdout is data, so say it here
    if (e && json) line(ctx.err, `first failure:\n${formatError(e)}`);
    return { code: 1, result };
  }
  return { code: 0, result };
}

export async function runCommand(ctx: Ctx): Promise<number> {
  if (ctx.options.dryRun) return dryRun(ctx, ctx.positionals);
  return (await runTargets(ctx, ctx.positionals)).code;
}

/** Report targets: declared `defaultTargets`, else stages under `report/`, else the DAG's sinks. */
export function reportTargets(p: Pipeline): string[] {
  if (p.defaultTargets.length) return [...p.defaultTargets];
  const reports = p.stages.filter((s) => s.id === 'report' || s.id.startsWith('report/')).map((s) => s.id);
  if (reports.length) return reports;
  const used = new Set(p.stages.flatMap((s) => Object.values(s.inputs)));
  return p.stages.filter((s) => !used.has(s.id)).map((s) => s.id);
}

export async function reportCommand(ctx: Ctx): Promise<number> {
  const p = ctx.loaded.pipeline;
  const targets = reportTargets(p);
  const { code, result } = await runTargets(ctx, targets);
  if (code !== 0 || !result) return code;
  const { default: picomatch } = await import('picomatch');
  const isTarget = (id: string) => targets.some((g) => g === id || picomatch(g)(id));
  for (const o of result.outcomes) {
    if (!isTarget(o.stage)) continue;
    const m = result.outputs.get(o.stage);
    const dir = result.session.ws.stageDir(o.stage);
    line(ctx.out, `report ${o.stage}: ${relative(process.cwd(), dir) || '.'}/`);
    for (const [rel] of m ? manifestFiles(m) : []) line(ctx.out, `  ${relative(process.cwd(), `${dir}/${rel}`)}`);
  }
  return 0;
}
