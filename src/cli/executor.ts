/**
 * @module cli/executor — `--executor` / mecheval.config.json → the build options that choose where bodies run.
 *
 * Local (default): the engine's own pool; the store is single-writer unless the config says
 * `"sharedStore": true`. Slurm: one batch job per stage; the store is shared (other engines and
 * the jobs themselves use it), and the scheduler's slots become "jobs in flight" instead of this
 * machine's CPUs and GPUs: a stage's cpu/gpu request goes to Slurm, which places it.
 */
import type { Executor } from '../engine/executor.ts';
import type { Pipeline } from '../engine/pipeline.ts';
import type { Ctx } from './context.ts';

export interface ExecutorChoice {
  executor?: Executor;
  sharedStore: boolean;
  jobs?: number;
  cpus?: number;
  gpus?: number;
}

export async function chooseExecutor(ctx: Ctx, p: Pipeline): Promise<ExecutorChoice> {
  const name = ctx.options.executor ?? ctx.engine.executor ?? 'local';
  if (name === 'local') return { sharedStore: ctx.engine.sharedStore ?? false, jobs: ctx.options.jobs, cpus: ctx.options.cpus, gpus: ctx.options.gpus };
  const { SlurmExecutor } = await import('../engine/slurm.ts');
  const settings = ctx.engine.slurm ?? {};
  const jobs = ctx.options.jobs ?? settings.maxJobs ?? 64;
  const maxGpu = Math.max(0, ...p.stages.map((s) => s.resources.gpu));
  const executor = new SlurmExecutor({
    cacheDir: ctx.session.cacheDir,
    settings,
    resourcesOf: (id) => p.byId.get(id)!.resources,
  });
  return {
    executor,
    sharedStore: ctx.engine.sharedStore ?? true,
    jobs,
    // Slurm places the job; locally we only bound how many are in flight
    cpus: ctx.options.cpus ?? jobs * Math.max(1, ...p.stages.map((s) => s.resources.cpu)),
    gpus: ctx.options.gpus ?? jobs * maxGpu,
  };
}
