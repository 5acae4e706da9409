/**
 * @module commands/maintain — `verify` (lock file vs code; optional rerun check) and `gc`.
 */
import { resolve, relative } from 'node:path';
import { Session } from '../../engine/session.ts';
import { prepare, defaultCapacity } from '../../engine/build.ts';
import { selectTargets } from '../../engine/pipeline.ts';
import { readLockFile } from '../../engine/lockfile.ts';
import { verifyKeys, rerunAndCompare } from '../../engine/verify.ts';
import { gc } from '../../engine/gc.ts';
import { acquireLock } from '../../engine/lock.ts';
import { waitNoLiveEngines, collectSlurmDirs } from '../../engine/shared.ts';
import { EngineError } from '../../engine/errors.ts';
import { consoleReporter } from '../../engine/progress.ts';
import { interruptSignal, line, type Ctx } from '../context.ts';

export async function verifyCommand(ctx: Ctx): Promise<number> {
  const p = ctx.loaded.pipeline;
  const ses = new Session(p, ctx.session);
  const lockPath = resolve(ses.root, p.lockFile);
  const lock = readLockFile(lockPath);
  if (!lock) {
    throw new EngineError({ code: 'stage_failed', message: `no lock file at ${relative(process.cwd(), lockPath) || lockPath}`, fields: { file: lockPath }, hint: 'run `npm run pipeline -- run` and commit the lock file it writes' });
  }
  await prepare(ses, p.stages);
  const items = verifyKeys(ses, p.stages, lock);
  const stale = items.filter((i) => !i.ok);
  let code = stale.length ? 1 : 0;
  if (ctx.options.json) line(ctx.out, JSON.stringify({ stale: stale.map((s) => ({ id: s.id, expected: s.expected, actual: s.actual, causes: s.causes })) }));
  else {
    for (const s of stale) {
      line(ctx.out, `stale    ${s.id}`);
      for (const c of s.causes) line(ctx.out, `           ${c.kind}: ${c.detail}`);
    }
    line(ctx.out, `${items.length - stale.length} of ${items.length} stages up to date with ${relative(process.cwd(), lockPath) || lockPath}`);
  }
  if (ctx.options.rerun.length) {
    const ids = await selectTargets(p, []);
    const { default: picomatch } = await import('picomatch');
    const chosen = new Set([...ids].filter((id) => ctx.options.rerun.some((g) => g === id || picomatch(g)(id))));
    if (chosen.size === 0) throw new EngineError({ code: 'unknown_stage', message: `no stage matches --rerun ${ctx.options.rerun.join(' ')}`, fields: { patterns: ctx.options.rerun.join(', ') } });
    const intr = interruptSignal(ctx);
    try {
      const r = await rerunAndCompare(p, chosen, lock, {
        ...ctx.session,
        ...defaultCapacity(ctx.options),
        lockWait: !ctx.options.noWait,
        reporter: consoleReporter({ verbose: ctx.options.verbose, out: ctx.out, err: ctx.err }),
        signal: intr.signal,
      });
      for (const it of r.items) line(ctx.out, `${it.ok ? 'same    ' : 'DIFFERS '} ${it.id}: ${it.detail}`);
      if (!r.buildOk || r.items.some((i) => !i.ok)) code = 1;
      if (intr.interrupted()) code = 130;
    } finally {
      intr.dispose();
    }
  }
  return code;
}

export async function gcCommand(ctx: Ctx): Promise<number> {
  const p = ctx.loaded.pipeline;
  const ses = new Session(p, ctx.session);
  const held = await acquireLock(ses.cacheDir, { wait: !ctx.options.noWait, onWait: (h) => ctx.err.write(`waiting for the store lock held by pid ${h.pid}…\n`) });
  try {
    // holding LOCK keeps new engines from registering; engines already live may use anything
    await waitNoLiveEngines(ses.cacheDir, { wait: !ctx.options.noWait, onWait: (l) => ctx.err.write(`waiting for ${l.length} live engine(s) on this store to finish…\n`) });
    let lock;
    try {
      lock = readLockFile(resolve(ses.root, p.lockFile));
    } catch {
      lock = undefined;
    }
    const r = gc(ses, lock, { dryRun: ctx.options.dryRun, keepRuns: ctx.options.keep });
    const jobDirs = collectSlurmDirs(ses.cacheDir, ctx.options.dryRun);
    if (jobDirs) line(ctx.out, `${ctx.options.dryRun ? 'would delete' : 'deleted'} ${jobDirs} finished Slurm job dir(s)`);
    const verb = ctx.options.dryRun ? 'would delete' : 'deleted';
    line(ctx.out, `${verb} ${r.objects} object(s) and ${r.runs} run entr${r.runs === 1 ? 'y' : 'ies'}; ${ctx.options.dryRun ? 'would free' : 'freed'} ${r.bytes} bytes (${(r.bytes / 1048576).toFixed(1)} MiB); kept ${r.kept} run entr${r.kept === 1 ? 'y' : 'ies'}`);
  } finally {
    held.release();
  }
  return 0;
}
