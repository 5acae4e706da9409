/**
 * @module watch — file events → rebuild of what is stale among the targets; never reacts to its own writes.
 *
 * What is watched is derived, never configured: every file whose content enters a target's key
 * (`Session.sourceFiles`: modules and their local imports, declared `files`, schema files), the
 * pipeline module and its local imports, and every file the pipeline module read while it was
 * loaded (a config it parses, a schema it embeds). Outputs are never watched: the store, the
 * workspace, the scratch dir, the lock file and `node_modules/` are excluded by path, so the
 * engine's own writes cannot start a cycle (Turborepo's watch loop, vercel/turborepo#11964).
 *
 * One cycle: reload the pipeline afresh, compute status (with causes), build what is not fresh.
 * Events are debounced (trailing, ~100 ms) after chokidar's `awaitWriteFinish` has seen the size
 * settle. A change that lands while a build runs applies each stage's busy policy (its `cost`):
 *   cheap      cancelled at once (its dependents are skipped) and rebuilt by the next cycle, if
 *              the change can touch its key (its own files, or the pipeline's); else it finishes;
 *   expensive  left to finish and commit; the next cycle is queued behind it.
 * Stages not yet started are cancelled either way, so the queued cycle starts as soon as the
 * expensive ones are done. The watchexec analogue is `--on-busy-update restart` for cheap stages
 * and `queue` for expensive ones, per stage rather than per command.
 *
 * A broken pipeline (syntax error, invalid params, failing probe) ends its cycle with an error and
 * the previous watch set stays in place, plus whatever the failed load read, so fixing the file
 * starts the next cycle. Aborting `signal` stops watching and cancels running stages cleanly.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, prepare, defaultCapacity, type BuildOptions } from './build.ts';
import { inspect, type Cause } from './explain.ts';
import { loadPipeline, type LoadedPipeline } from './load.ts';
import { pipeline, selectTargets, type Pipeline } from './pipeline.ts';
import { CodeGraph } from './codegraph.ts';
import { StatCache } from './statcache.ts';
import { Session, type SessionOptions } from './session.ts';
import { silentReporter, type Reporter, type StageOutcome } from './progress.ts';
import type { Stage } from './task.ts';

export interface WatchOptions extends SessionOptions, Pick<BuildOptions, 'jobs' | 'cpus' | 'gpus' | 'lockWait' | 'sharedStore'> {
  /** The pipeline module; reloaded afresh every cycle. */
  pipelineFile: string;
  /** Passed to a pipeline function, as `--config` is. */
  config?: string;
  /** Stage ids or globs (default: every stage). */
  targets?: readonly string[];
  /** Abort = stop watching; running stages are cancelled cleanly. */
  signal?: AbortSignal;
  /** A fresh reporter for each cycle's build (a reporter is closed when its build ends). */
  reporter?: () => Reporter;
  /** Cycle boundaries, busy-policy decisions, load errors. */
  onEvent?: (e: WatchEvent) => void;
  /** Quiet time after the last event before a cycle starts (default 100 ms). */
  debounceMs?: number;
  /** chokidar `awaitWriteFinish.stabilityThreshold`: a file's size must hold this long (default 100 ms). */
  writeFinishMs?: number;
}

/** Counts of one cycle's stage outcomes. */
export type CycleCounts = Record<StageOutcome['action'], number>;

export interface StaleStage {
  id: string;
  action: 'run' | 'run?' | 'restore';
  causes: Cause[];
}

export type WatchEvent =
  | { type: 'cycleStart'; cycle: number; changed: string[] }
  | {
      type: 'cycleEnd';
      cycle: number;
      /** what was not fresh at the start of the cycle, and why */
      stale: StaleStage[];
      outcomes: StageOutcome[];
      counts: CycleCounts;
      ms: number;
      /** the pipeline could not be loaded or prepared (nothing was built) */
      error?: unknown;
      /** the cycle was cut short by a change; the next one is queued */
      superseded: boolean;
    }
  | { type: 'busy'; cycle: number; cancelled: string[]; finishing: string[] }
  | { type: 'watching'; cycle: number; files: number };

export interface Watcher {
  /** Resolves once watching has stopped (after `close()` or the signal) and nothing is running. */
  readonly done: Promise<void>;
  /** Every file currently watched (absolute, sorted). */
  files(): string[];
  close(): Promise<void>;
}

interface Tracked {
  loaded?: LoadedPipeline;
  error?: unknown;
  /** absolute paths read (by content) while the module loaded and its pipeline function ran */
  read: string[];
}

/**
 * Load a pipeline module afresh and record which files it read. The fs read functions are
 * wrapped for the duration of the load; `syncBuiltinESMExports` makes ESM named imports
 * (`import { readFileSync } from 'node:fs'`) see the wrappers too. Nothing else in this process
 * reads files while a watch cycle loads its pipeline, so the record is the pipeline's own.
 */
export async function loadPipelineTracked(file: string, opts: { config?: string } = {}): Promise<Tracked> {
  const read = new Set<string>();
  const note = (p: unknown): void => {
    if (typeof p === 'string') read.add(resolve(p));
    else if (p instanceof URL && p.protocol === 'file:') read.add(fileURLToPath(p));
  };
  // The CommonJS objects are the mutable ones (an ESM namespace is frozen).
  const m = createRequire(import.meta.url)('node:fs') as Record<string, unknown> & { promises: Record<string, unknown> };
  const mp = m.promises;
  const saved = { sync: m.readFileSync, cb: m.readFile, promise: mp.readFile };
  m.readFileSync = (p: unknown, ...rest: unknown[]) => (note(p), (saved.sync as (...a: unknown[]) => unknown)(p, ...rest));
  m.readFile = (p: unknown, ...rest: unknown[]) => (note(p), (saved.cb as (...a: unknown[]) => unknown)(p, ...rest));
  mp.readFile = (p: unknown, ...rest: unknown[]) => (note(p), (saved.promise as (...a: unknown[]) => unknown)(p, ...rest));
  syncBuiltinESMExports();
  try {
    const loaded = await loadPipeline(file, { fresh: true, ...(opts.config !== undefined ? { config: opts.config } : {}) });
    return { loaded, read: [...read] };
  } catch (error) {
    return { error, read: [...read] };
  } finally {
    m.readFileSync = saved.sync;
    m.readFile = saved.cb;
    mp.readFile = saved.promise;
    syncBuiltinESMExports();
  }
}

const inside = (dir: string, f: string): boolean => f === dir || f.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** Paths the engine writes (or that only package installs change): never watched. */
function excluded(ses: Session, p: Pipeline): (f: string) => boolean {
  const dirs = [ses.cacheDir, ses.artifactsDir, ses.scratchRoot];
  const lockFile = resolve(ses.root, p.lockFile);
  return (f) => f === lockFile || dirs.some((d) => inside(d, f)) || f.split(sep).includes('node_modules');
}

/** A module and the local modules it imports, transitively (absolute paths; missing ones included). */
function moduleClosure(graph: CodeGraph, root: string, file: string): string[] {
  return Object.keys(graph.digest([file]).code)
    .filter((f) => !f.includes(' → '))
    .map((f) => (isAbsolute(f) ? f : resolve(root, f)));
}

interface WatchSet {
  all: Set<string>;
  /** files that shape the pipeline itself (its module graph, what it read): may change any stage */
  shared: Set<string>;
  /** per stage: the files that enter its key */
  own: Map<string, Set<string>>;
}

/** The files whose change can alter the targets' keys or the pipeline itself. */
function watchSet(ses: Session, p: Pipeline, pipelineFile: string, stages: readonly Stage[], read: readonly string[]): WatchSet {
  const skip = excluded(ses, p);
  const keep = (fs: Iterable<string>) => new Set([...fs].filter((f) => !skip(f)));
  const shared = keep([pipelineFile, ...read, ...moduleClosure(ses.graph, ses.root, pipelineFile)]);
  const own = new Map(stages.map((s) => [s.id, keep(ses.sourceFiles(s))]));
  const all = new Set(shared);
  for (const fs of own.values()) for (const f of fs) all.add(f);
  return { all, shared, own };
}

const zeroCounts = (): CycleCounts => ({ ran: 0, restored: 0, fresh: 0, failed: 0, cancelled: 0 });

export async function watch(opts: WatchOptions): Promise<Watcher> {
  const { watch: chokidarWatch } = await import('chokidar');
  type FSWatcher = ReturnType<typeof chokidarWatch>;
  const pipelineFile = resolve(opts.pipelineFile);
  const emit = opts.onEvent ?? (() => {});
  const debounceMs = opts.debounceMs ?? 100;
  let files = new Set<string>([pipelineFile]);
  const dirs = new Set<string>();
  const pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let wake: (() => void) | undefined;

  // State of the build in progress (if any), for the busy policy.
  let building: { cycle: number; pipeline: Pipeline; ws: WatchSet; controllers: Map<string, AbortController>; running: Set<string>; draining: boolean } | undefined;

  const onFsEvent = (_event: string, path: string): void => {
    const f = isAbsolute(path) ? path : resolve(path);
    if (!files.has(f) || closed) return;
    pending.add(f);
    clearTimeout(timer);
    timer = setTimeout(trigger, debounceMs);
  };
  /**
   * Directories are watched, one level deep (so a file deleted and re-created is seen); of their
   * entries only watched files count. A new directory means a new chokidar instance, awaited until
   * ready, so no edit made after a cycle ends can slip past; then the old one is closed.
   */
  let fsw: FSWatcher | undefined;
  const watchDirs = async (want: Set<string>): Promise<void> => {
    if ([...want].every((d) => dirs.has(d)) || closed) return;
    for (const d of want) dirs.add(d);
    const next = chokidarWatch([...dirs], {
      ignoreInitial: true,
      depth: 0,
      atomic: true,
      awaitWriteFinish: { stabilityThreshold: opts.writeFinishMs ?? 100, pollInterval: 20 },
      ignored: (f: string) => !(files.has(f) || dirs.has(f)),
    });
    next.on('all', onFsEvent);
    next.on('error', () => {}); // a vanished directory is not fatal: the next load re-derives the set
    await new Promise<void>((r) => next.once('ready', () => r()));
    const old = fsw;
    fsw = next;
    await old?.close();
    if (closed) await next.close();
  };

  const setFiles = async (next: Set<string>): Promise<void> => {
    files = next;
    await watchDirs(new Set([...next].map((f) => dirname(f))));
  };

  /** A change arrived (debounced): start a cycle, or apply the busy policy to the build in progress. */
  function trigger(): void {
    timer = undefined;
    if (closed) return;
    if (building) {
      const b = building;
      const cancelled: string[] = [];
      const finishing: string[] = [];
      b.draining = true;
      // A running stage's key can change only through its own files or the pipeline's (params, env):
      // its upstream is already built. A cheap stage untouched by the change is left to finish too.
      const changed = [...pending];
      const touches = (id: string): boolean => changed.some((f) => b.ws.shared.has(f) || b.ws.own.get(id)?.has(f));
      for (const [id, ac] of b.controllers) {
        if (ac.signal.aborted) continue;
        if (b.running.has(id) && (b.pipeline.byId.get(id)?.cost === 'expensive' || !touches(id))) finishing.push(id);
        else {
          if (b.running.has(id)) cancelled.push(id);
          ac.abort(new Error('a watched file changed'));
        }
      }
      emit({ type: 'busy', cycle: b.cycle, cancelled, finishing });
    }
    wake?.();
  }

  let cycle = 0;
  let lastLoaded: Pipeline | undefined;
  let lastRoot = dirname(pipelineFile);

  async function runCycle(changed: string[]): Promise<void> {
    const n = ++cycle;
    const t0 = performance.now();
    emit({ type: 'cycleStart', cycle: n, changed: changed.map((f) => relative(lastRoot, f) || f).sort() });
    const end = (e: Omit<Extract<WatchEvent, { type: 'cycleEnd' }>, 'type' | 'cycle' | 'ms'>) => emit({ type: 'cycleEnd', cycle: n, ms: performance.now() - t0, ...e });

    const tracked = await loadPipelineTracked(pipelineFile, opts.config !== undefined ? { config: opts.config } : {});
    const root = opts.root ?? tracked.loaded?.root ?? lastRoot;
    lastRoot = root;
    const sesOpts: SessionOptions = { root, cacheDir: opts.cacheDir, artifactsDir: opts.artifactsDir, parentCacheDirs: opts.parentCacheDirs, hashAlgorithm: opts.hashAlgorithm };
    // Even a failed load leaves a watch set: the last good one, plus the pipeline module's imports
    // and what this load read (an empty pipeline stands in for the exclusions if none loaded yet).
    const fallback = async (): Promise<void> => {
      const p = lastLoaded ?? pipeline({ stages: [] });
      const skip = excluded(new Session(p, sesOpts), p);
      const next = new Set(files);
      for (const f of [...moduleClosure(new CodeGraph(root, new StatCache(undefined)), root, pipelineFile), ...tracked.read]) if (!skip(f)) next.add(f);
      await setFiles(next);
      emit({ type: 'watching', cycle: n, files: files.size });
    };
    if (!tracked.loaded) {
      await fallback();
      return end({ stale: [], outcomes: [], counts: zeroCounts(), error: tracked.error, superseded: false });
    }
    const pl = tracked.loaded.pipeline;
    lastLoaded = pl;
    const ses = new Session(pl, sesOpts);
    let stages: Stage[];
    let stale: StaleStage[];
    let ws: WatchSet;
    try {
      const wanted = await selectTargets(pl, opts.targets ?? []);
      stages = pl.stages.filter((s) => wanted.has(s.id));
      ws = watchSet(ses, pl, tracked.loaded.file, stages, tracked.read);
      await setFiles(ws.all);
      await prepare(ses, stages, defaultCapacity(opts));
      stale = inspect(ses, stages).flatMap((s) => (s.action === 'fresh' ? [] : [{ id: s.id, action: s.action, causes: s.causes }]));
    } catch (error) {
      await fallback();
      return end({ stale: [], outcomes: [], counts: zeroCounts(), error, superseded: false });
    }
    emit({ type: 'watching', cycle: n, files: files.size });
    if (stale.length === 0 || pending.size > 0 || closed) {
      const counts = zeroCounts();
      counts.fresh = stages.length;
      return end({ stale, outcomes: [], counts, superseded: pending.size > 0 });
    }

    const b = (building = { cycle: n, pipeline: pl, ws, controllers: new Map<string, AbortController>(), running: new Set<string>(), draining: false });
    const inner = opts.reporter?.() ?? silentReporter;
    const reporter: Reporter = {
      ...inner,
      begin: (i) => inner.begin?.(i),
      stageStart(id, what, f) {
        if (what === 'run') b.running.add(id);
        inner.stageStart(id, what, f);
      },
      progress: (...a) => inner.progress(...a),
      log: (...a) => inner.log(...a),
      stageEnd(o) {
        b.running.delete(o.stage);
        inner.stageEnd(o);
      },
      warn: (m) => inner.warn(m),
      close: () => inner.close(),
    };
    try {
      const r = await build(pl, {
        ...sesOpts,
        targets: opts.targets ?? [],
        jobs: opts.jobs,
        cpus: opts.cpus,
        gpus: opts.gpus,
        lockWait: opts.lockWait ?? true,
        ...(opts.sharedStore ? { sharedStore: true } : {}),
        keepGoing: true, // one failure must not cancel an unrelated expensive stage; watching goes on either way
        reporter,
        ...(opts.signal ? { signal: opts.signal } : {}),
        stageSignal: (id) => {
          const ac = new AbortController();
          if (b.draining) ac.abort(new Error('a watched file changed'));
          b.controllers.set(id, ac);
          return ac.signal;
        },
      });
      const counts = zeroCounts();
      for (const o of r.outcomes) counts[o.action]++;
      end({ stale, outcomes: r.outcomes, counts, superseded: b.draining });
    } catch (error) {
      end({ stale, outcomes: [], counts: zeroCounts(), error, superseded: b.draining });
    } finally {
      building = undefined;
    }
  }

  async function loop(): Promise<void> {
    await runCycle([]);
    while (!closed) {
      if (pending.size === 0 || timer) {
        await new Promise<void>((r) => {
          wake = r;
          if (closed) r();
        });
        wake = undefined;
      }
      if (closed) break;
      if (pending.size === 0) continue;
      const changed = [...pending];
      pending.clear();
      await runCycle(changed);
    }
  }

  const onAbort = (): void => void close();
  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    wake?.();
    await fsw?.close();
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) void close();
  const done = loop().finally(() => {
    opts.signal?.removeEventListener('abort', onAbort);
    return close();
  });
  return { done, files: () => [...files].sort(), close: async () => (await close(), await done) };
}
