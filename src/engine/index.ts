/**
 * @module mecheval/engine — the public surface: re-exports, and two entry points that load their
 * module on first call (below).
 *
 * Declaring:   stage, fn, cmd, sh, matrix, matrixId, combinations, pipeline
 * Stage code:  StageFn, StageContext, ShowFn, ShowContext
 * Running:     build, loadPipeline, inspect, verifyKeys, rerunAndCompare, gc, watch
 * Extending:   Executor (+ LocalExecutor), Reporter (+ consoleReporter), Slots
 */
import type * as W from './watch.ts';

export { stage, fn, cmd, sh, matrix, matrixId, combinations, Placeholder } from './task.ts';
export type { Stage, StageSpec, StageFn, StageContext, ShowFn, ShowContext, FnRef, CommandSpec, CommandArgs, ShTemplate, ShValue, Resources, Cost, EnvFact, JsonSchema, Combo } from './task.ts';
export { pipeline, isPipeline, selectTargets, upstreamClosure } from './pipeline.ts';
export type { Pipeline, PipelineSpec, PipelineFactory } from './pipeline.ts';
export { build, prepare, defaultCapacity, firstFailure } from './build.ts';
export type { BuildOptions, BuildResult } from './build.ts';
export { Session } from './session.ts';
export type { SessionOptions } from './session.ts';
export { loadPipeline, defaultPipelineFile } from './load.ts';
export type { LoadedPipeline } from './load.ts';
export { inspect, diffRecipes, diffJson } from './explain.ts';
export type { WatchOptions, WatchEvent, Watcher, CycleCounts, StaleStage } from './watch.ts';
export type { Cause, CauseKind, StageState, StageStatus, PlannedAction } from './explain.ts';
export { verifyKeys, rerunAndCompare } from './verify.ts';
export type { VerifyItem, RerunItem } from './verify.ts';
export { gc } from './gc.ts';
export type { GcResult } from './gc.ts';
export { readLockFile, updateLockFile, lockText } from './lockfile.ts';
export type { LockEntry, LockFileData } from './lockfile.ts';
// the pool's module loads on the first run() (see build.ts); executor.ts's class is the pool itself
export { LazyLocalExecutor as LocalExecutor } from './build.ts';
export type { Executor, Job, JobBody, JobHooks, UpstreamRef } from './executor.ts';
export { Slots, schedule } from './scheduler.ts';
export { consoleReporter, silentReporter, fmtMs } from './progress.ts';
export type { Reporter, StageOutcome, Action, RunChanged } from './progress.ts';
export { EngineError, formatError, exitCodeOf, isEngineError } from './errors.ts';
export type { ErrorCode, ErrorData } from './errors.ts';
export { canonicalJson, digestJson, keyOf, ENGINE_SALT } from './key.ts';
export type { Json, Recipe } from './key.ts';
export { hashFile, hashBytes } from './hash.ts';
export type { Hash, HashAlgorithm } from './hash.ts';
export type { Manifest, OutputEntry, RunEntry } from './store.ts';

// Every pipeline module imports this index, so whatever it imports statically is loaded (read,
// compiled, linked: about a millisecond a module on a busy machine) by every CLI run, a no-op
// `run` included. Watch mode is a long-lived command of its own: its module waits for a call.
export function watch(...args: Parameters<typeof W.watch>): ReturnType<typeof W.watch> {
  return import('./watch.ts').then((m) => m.watch(...args));
}
export function loadPipelineTracked(...args: Parameters<typeof W.loadPipelineTracked>): ReturnType<typeof W.loadPipelineTracked> {
  return import('./watch.ts').then((m) => m.loadPipelineTracked(...args));
}
