/**
 * @module build — build = scheduler(rebuilder).
 *
 * mecheval is, in the terms of "Build Systems à la Carte", a *topological* scheduler over a
 * *constructive-trace* rebuilder whose keys hash upstream output content (so it keeps early
 * cutoff, which deep constructive traces lose). Swapping the trace kind means changing the one
 * `rebuild` call below.
 *
 * `build()` is the programmatic entry that the CLI, watch mode and future executors share.
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { EngineError, isEngineError } from './errors.ts';
import { acquireLock } from './lock.ts';
import type { Executor, Job, JobHooks } from './executor.ts';
import type { CommitResult } from './commit.ts';
import { schedule, Slots, type NodeResult } from './scheduler.ts';
import { remainingWork } from './priority.ts';
import { checkFresh, rebuild } from './rebuilder.ts';
import { Session, type SessionOptions } from './session.ts';
import { selectTargets, type Pipeline } from './pipeline.ts';
import { validateParams } from './schema.ts';
import { manifestDigest, type Manifest } from './store.ts';
import { outputDigests, stampCurrent, stampDigest, updateLockFile, type LockEntry } from './lockfile.ts';
import { silentReporter, type Reporter, type StageOutcome } from './progress.ts';
import type { Json } from './key.ts';
import type { Stage } from './task.ts';

export interface BuildOptions extends SessionOptions {
  /** Stage ids or globs; their upstream is built too. Default: every stage. */
  targets?: readonly string[];
  /** Most stages executing at once (default: available CPUs). */
  jobs?: number;
  /** CPU slots (default: available CPUs). */
  cpus?: number;
  /** GPU slots (default: MECHEVAL_GPUS, else 0). */
  gpus?: number;
  /** Finish unrelated stages after a failure. */
  keepGoing?: boolean;
  executor?: Executor;
  reporter?: Reporter;
  /** Abort = cancel cleanly (running bodies are stopped, nothing half-written is cached). */
  signal?: AbortSignal;
  /** Wait for another writer (default true), fail at once (false), or wait at most N ms. */
  lockWait?: boolean | number;
  /** Lock file to update (absolute or root-relative); false = leave it alone. Default: the pipeline's. */
  lockFile?: string | false;
  /** Stages to execute even if fresh or restorable (verify --rerun). */
  force?: (id: string) => boolean;
  /**
   * Per-stage cancellation (watch mode): when the returned signal aborts, only that stage is
   * cancelled (its dependents are skipped); the rest of the build goes on.
   */
  stageSignal?: (id: string) => AbortSignal | undefined;
  /**
   * Share the store with other live engines (shared.ts): register instead of holding the store
   * lock for the whole build, claim each key before running it, never empty tmp/. Default false.
   */
  sharedStore?: boolean;
}

export interface BuildResult {
  ok: boolean;
  outcomes: StageOutcome[];
  /** output manifests of the stages that ended fresh, restored or ran */
  outputs: Map<string, Manifest>;
  session: Session;
  cancelled: boolean;
}

export function defaultCapacity(opts: Pick<BuildOptions, 'jobs' | 'cpus' | 'gpus'>): { jobs: number; cpus: number; gpus: number } {
  const n = availableParallelism();
  const envGpus = Number(process.env.MECHEVAL_GPUS ?? 0);
  return { jobs: opts.jobs ?? n, cpus: opts.cpus ?? n, gpus: opts.gpus ?? (Number.isInteger(envGpus) ? envGpus : 0) };
}

/** Checks that need no store: params against schemas, resources against capacity, env probes. */
export async function prepare(ses: Session, stages: readonly Stage[], cap?: { gpus: number }): Promise<void> {
  validateParams(stages, ses.root, ses.stat);
  if (cap) {
    const tooBig = stages.filter((s) => s.resources.gpu > cap.gpus);
    if (tooBig.length) {
      throw new EngineError({
        code: 'resources',
        message: `${tooBig.length} stage(s) need more GPUs than this run has (${cap.gpus})`,
        fields: { stages: tooBig.map((s) => `${s.id} (gpu: ${s.resources.gpu})`).join('\n') },
        hint: 'pass --gpus N (or set MECHEVAL_GPUS), or select other targets',
      });
    }
  }
  await ses.resolveEnv(stages);
}

export async function build(p: Pipeline, opts: BuildOptions = {}): Promise<BuildResult> {
  const ses = new Session(p, opts);
  const reporter = opts.reporter ?? silentReporter;
  const cap = defaultCapacity(opts);
  for (const [k, v] of Object.entries(cap)) {
    if (!Number.isInteger(v) || v < 0 || (k === 'jobs' && v < 1)) throw new EngineError({ code: 'usage', message: `${k} must be a ${k === 'jobs' ? 'positive' : 'non-negative'} integer, got ${v}`, fields: { [k]: String(v) } });
  }
  const wanted = await selectTargets(p, opts.targets ?? []);
  const stages = p.stages.filter((s) => wanted.has(s.id));
  await prepare(ses, stages, cap);

  // shared.ts (leases, claims) is loaded only for a shared store
  const shared = opts.sharedStore ? await import('./shared.ts') : undefined;
  const held = await (shared ? shared.joinSharedStore : acquireLock)(ses.cacheDir, {
    wait: opts.lockWait ?? true,
    signal: opts.signal,
    onWait: (h) => reporter.warn(`waiting for the store lock held by pid ${h.pid} on ${h.host} (since ${h.startedAt}: ${h.command})`),
    onTakeover: (h) => reporter.warn(`took over a stale store lock from dead pid ${h.pid} on ${h.host} (started ${h.startedAt})`),
  });
  ses.reload();
  const base = opts.executor ?? new LazyLocalExecutor();
  const executor = shared ? new shared.ClaimingExecutor(base, ses.cacheDir) : base;
  const slots = new Slots(cap);
  // Longest remaining path first: measured durations where this store has them, else the declared hint.
  // Computed on the first stage that needs a slot, so a no-op run never pays for it.
  let priorities: Map<string, number> | undefined;
  const priority = (id: string): number =>
    (priorities ??= remainingWork(stages, (s) => ses.history.forecast(s.id) ?? (s.expectedSeconds ?? 0) * 1000)).get(id) ?? 0;
  const outputs = new Map<string, Manifest>();
  const outcomes = new Map<string, StageOutcome>();
  const internal = new AbortController();
  setMaxListeners(0, internal.signal); // one listener per running stage: hundreds are normal, not a leak
  const onAbort = () => internal.abort(opts.signal!.reason);
  if (opts.signal?.aborted) internal.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (!opts.sharedStore) ses.store.cleanTmp(); // other engines' running stages write there
    reporter.begin?.({ total: stages.length, toRun: stages.length });
    const finish = (outcome: StageOutcome): NodeResult => {
      outcomes.set(outcome.stage, outcome);
      reporter.stageEnd(outcome);
      return outcome.action === 'failed' ? 'failed' : outcome.action === 'cancelled' ? 'cancelled' : 'ok';
    };
    const failed = (id: string, e: unknown): NodeResult => finish({ stage: id, key: null, action: 'failed', ms: 0, error: e });
    await schedule(
      stages.map((s) => s.id),
      (id) => Object.values(p.byId.get(id)!.inputs),
      // Synchronous up to the freshness check: a fresh stage (all of a no-op run) needs no promise.
      (id, signal) => {
        const st = p.byId.get(id)!;
        try {
          const inputDigests: Record<string, string> = {};
          for (const name in st.inputs) inputDigests[name] = manifestDigest(outputs.get(st.inputs[name]!)!);
          const recipe = ses.recipe(st, inputDigests);
          const key = ses.key(recipe);
          const force = opts.force?.(id) ?? false;
          const step1 = checkFresh(ses, st, key, force);
          if (step1.fresh) {
            outputs.set(id, step1.fresh.outputs!);
            return finish(step1.fresh.outcome);
          }
          const own = opts.stageSignal?.(id);
          return rebuild(ses, st, key, recipe, { executor, slots, reporter, signal: own ? AbortSignal.any([signal, own]) : signal, force, priority: priority(id) }, step1).then(
            (r) => {
              if (r.outputs) outputs.set(id, r.outputs);
              return finish(r.outcome);
            },
            (e: unknown) => failed(id, e),
          );
        } catch (e) {
          return failed(id, e);
        }
      },
      { keepGoing: opts.keepGoing ?? false, signal: internal.signal },
    );
    for (const s of stages) {
      if (!outcomes.has(s.id)) {
        const o: StageOutcome = { stage: s.id, key: null, action: 'cancelled', ms: 0 };
        outcomes.set(s.id, o);
        reporter.stageEnd(o);
      }
    }
    // what each stage left in the workspace: [id, key, its manifest] (the manifest digests are memoised)
    const left: [Stage, string, Manifest][] = [];
    for (const s of stages) {
      const o = outcomes.get(s.id)!;
      const m = outputs.get(s.id);
      if (m && o.key) left.push([s, o.key, m]);
    }
    if (opts.lockFile !== false) {
      const path = resolve(ses.root, opts.lockFile ?? p.lockFile);
      const declared = new Set(p.byId.keys());
      const digest = stampDigest(declared, left.map((e) => [e[0].id, e[1], manifestDigest(e[2])] as const));
      // A no-op run finds the lock file as it left it: no need to build its entries.
      if (!stampCurrent(path, ses.ws.lockStamp, digest)) {
        const built = new Map<string, LockEntry>(left.map(([s, key, m]) => [s.id, { key, params: s.params as Json, outputs: outputDigests(m) }]));
        ses.ws.lockStamp = updateLockFile(path, declared, built, ses.ws.lockStamp, digest);
      }
    }
    if ([...outcomes.values()].some((o) => o.action === 'ran' || o.action === 'restored')) ses.history.recordRun(Object.fromEntries(left.map(([s, key]) => [s.id, key])));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    try {
      ses.save();
    } finally {
      if (!opts.executor) await base.close();
      held.release();
      reporter.close();
    }
  }
  const list = stages.map((s) => outcomes.get(s.id)!);
  return {
    ok: list.every((o) => o.action !== 'failed' && o.action !== 'cancelled'),
    outcomes: list,
    outputs,
    session: ses,
    cancelled: internal.signal.aborted && !list.some((o) => o.action === 'failed'),
  };
}

/**
 * The local worker pool, loaded when a body first has to run: a no-op build runs none, and need
 * not load and compile the pool's module. The index exports this as `LocalExecutor` (the same
 * interface as executor.ts's class: name, run, close), since every pipeline imports the index.
 */
export class LazyLocalExecutor implements Executor {
  readonly name = 'local';
  private inner: Promise<Executor> | undefined;
  run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void> {
    this.inner ??= import('./executor.ts').then((m) => new m.LocalExecutor());
    return this.inner.then((e) => e.run(job, hooks, signal));
  }
  async close(): Promise<void> {
    // a failed load already failed the stages that asked for it; nothing to close then
    await (await this.inner?.catch(() => undefined))?.close();
  }
}

/** The first error among failed outcomes (for exit codes and summaries). */
export function firstFailure(r: BuildResult): unknown {
  return r.outcomes.find((o) => o.action === 'failed')?.error;
}

export { isEngineError };
