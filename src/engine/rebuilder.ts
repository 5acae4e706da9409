/**
 * @module rebuilder — keep, restore or run one stage; early cutoff lives here.
 *
 * Given a stage's key, the rebuilder consults two traces in order:
 *   1. the workspace (verifying trace): same key and intact artifacts → `fresh`;
 *   2. the run cache (constructive trace): an entry for this key whose objects all re-hash to
 *      their digests → `restored` (a corrupt object is reported, evicted, and the stage runs);
 *   3. otherwise the body runs, and its outputs are committed (objects, then run entry, then
 *      artifacts).
 * Early cutoff needs no special case: a downstream key is computed from the upstream's output
 * *content*, so a rerun that produced identical bytes leaves every downstream key unchanged.
 * The outcome still names it (`recomputedSame`), as Shake's RunChanged does.
 */
import { EngineError, isEngineError } from './errors.ts';
import { existsSync } from 'node:fs';
import { rmTree, rmTreeAsync } from './fsutil.ts';
import type { Recipe } from './key.ts';
import { manifestDigest, manifestFiles, type Manifest } from './store.ts';
import type { StatTriple } from './trace.ts';
import type { Session } from './session.ts';
import type { Stage } from './task.ts';
import type { Executor, Job } from './executor.ts';
import type { Slots } from './scheduler.ts';
import { nowMs, type Reporter, type StageOutcome } from './progress.ts';

export interface RebuildDeps {
  executor: Executor;
  slots: Slots;
  reporter: Reporter;
  signal: AbortSignal;
  /** run even if fresh or restorable */
  force: boolean;
  /** Slot priority: the remaining work through this stage (priority.ts); default 0. */
  priority?: number;
}

export interface StageResult {
  outcome: StageOutcome;
  outputs?: Manifest;
}

/** What step 1 (the verifying trace) found: the stage is fresh, or it must go on to step 2. */
export type FreshCheck = { fresh: StageResult } | { fresh?: undefined; t0: number; warning?: string };

/**
 * Step 1 alone, synchronous: the build calls it first so that a fresh stage (every stage of a
 * no-op run) is decided without a promise; `rebuild` takes the answer over, so both paths make
 * the one decision this function makes, and the artifacts are stat'ed once.
 */
export function checkFresh(ses: Session, stage: Stage, key: string, force: boolean): FreshCheck {
  const t0 = nowMs();
  const prev = force ? undefined : ses.ws.get(stage.id);
  if (prev && prev.key === key) {
    const chk = ses.ws.check(stage.id, prev);
    if (chk.ok) return { fresh: { outcome: { stage: stage.id, key, action: 'fresh', ms: nowMs() - t0 }, outputs: prev.outputs } };
    return { t0, warning: `${chk.detail}; putting it back` };
  }
  return { t0 };
}

export async function rebuild(ses: Session, stage: Stage, key: string, recipe: Recipe, deps: RebuildDeps, checked?: FreshCheck): Promise<StageResult> {
  const step1 = checked ?? checkFresh(ses, stage, key, deps.force);
  if (step1.fresh) return step1.fresh;
  const t0 = step1.t0;
  const id = stage.id;
  const { reporter } = deps;
  const prev = ses.ws.get(id);
  const done = (action: StageOutcome['action'], outputs?: Manifest, extra: Partial<StageOutcome> = {}): StageResult => ({
    outcome: { stage: id, key, action, ms: nowMs() - t0, ...extra },
    ...(outputs ? { outputs } : {}),
  });
  if (step1.warning) reporter.warn(step1.warning);

  if (!deps.force) {
    const entry = ses.store.readRun(key);
    if (entry) {
      reporter.stageStart(id, 'restore');
      const bad: string[] = [];
      for (const [rel, f] of manifestFiles(entry.outputs)) {
        const state = await ses.store.verifyObject(f.digest);
        if (state !== 'ok') {
          bad.push(f.digest);
          reporter.warn(`store object ${f.digest.slice(0, 16)}… (${id}/${rel}) is ${state}; evicted, rebuilding ${id}`);
        }
      }
      if (bad.length === 0) {
        try {
          const stats = ses.ws.materialize(ses.store, id, entry.outputs);
          ses.ws.set(id, { key, outputs: entry.outputs, stats, at: new Date().toISOString() });
          return done('restored', entry.outputs);
        } catch (e) {
          reporter.warn(`restoring ${id} failed (${(e as Error).message}); running it`);
        }
      } else {
        for (const d of bad) ses.store.evictObject(d);
        ses.store.deleteRun(key);
      }
    }
  }

  let grant;
  try {
    grant = await deps.slots.acquire(stage.resources, deps.signal, deps.priority ?? 0);
  } catch {
    return done('cancelled');
  }
  const tmp = ses.store.makeTmp(id);
  const outDir = tmp;
  const scratchDir = ses.scratchDir(id, key);
  const started = nowMs();
  try {
    reporter.stageStart(id, 'run', ses.history.forecast(id));
    const inputs: Record<string, string> = {};
    const upstream: Job['upstream'] = {};
    for (const [name, up] of Object.entries(stage.inputs)) {
      inputs[name] = ses.ws.stageDir(up);
      const upKey = ses.ws.get(up)?.key ?? '';
      upstream[name] = { id: up, key: upKey, ms: upKey ? ses.store.readRun(upKey)?.ms ?? null : null };
    }
    const committed = await deps.executor.run(
      {
        stageId: id, key, body: ses.body(stage), params: stage.params, inputs, upstream, outDir, scratchDir, gpus: grant.gpus, cwd: ses.root, timeoutMs: stage.timeoutMs,
        // SHA-256 stores let the executor commit the stage itself (in parallel, off the event loop)
        ...(ses.store.algorithm === 'sha256' ? { commit: { objectsDir: ses.store.objectsDir, outputs: stage.outputs, volatile: stage.volatile, runPath: ses.store.runPath(key), recipe, artifactDir: ses.ws.stageDir(id) } } : {}),
      },
      { progress: (s, t, i) => reporter.progress(id, s, t, i), log: (l) => reporter.log(id, l) },
      deps.signal,
    );
    let outputs: Manifest;
    let stats: Record<string, StatTriple>;
    let ms: number;
    if (committed) ({ manifest: outputs, stats, ms } = committed);
    else {
      if (deps.signal.aborted) return done('cancelled');
      ms = nowMs() - started;
      outputs = await ses.store.ingest(id, outDir, stage.outputs, stage.volatile);
      ses.store.writeRun({ v: 1, key, stage: id, recipe, outputs, ms: Math.round(ms), at: new Date().toISOString() });
      stats = ses.ws.materialize(ses.store, id, outputs);
    }
    ses.ws.set(id, { key, outputs, stats, at: new Date().toISOString() });
    ses.history.recordDuration(id, ms);
    if (existsSync(scratchDir)) await rmTreeAsync(scratchDir);
    const change = !prev ? 'new' : manifestDigest(prev.outputs) === manifestDigest(outputs) ? 'recomputedSame' : 'recomputedDiff';
    return done('ran', outputs, { change, ms: nowMs() - started });
  } catch (e) {
    if (isEngineError(e) && e.code === 'cancelled') return done('cancelled', undefined, { error: e });
    if (deps.signal.aborted && !isEngineError(e)) return done('cancelled', undefined, { error: e });
    return done('failed', undefined, { error: isEngineError(e) ? e : new EngineError({ code: 'stage_failed', message: `stage '${id}' failed: ${(e as Error).message}`, fields: { stage: id } }, { cause: e }) });
  } finally {
    grant.release();
    rmTree(tmp);
  }
}
