/**
 * @module session — the per-invocation view of one pipeline over one store and one workspace.
 *
 * Holds the open indexes (stat cache, workspace index, history), resolves module paths against
 * the pipeline root, evaluates environment facts once, and turns a stage plus its upstream
 * output digests into a recipe and a key. Everything here is shared by build, status, dry-run
 * and verify so that they can never disagree about a key.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { EngineError } from './errors.ts';
import { keyOf, type Json, type Recipe } from './key.ts';
import type { Hash, HashAlgorithm } from './hash.ts';
import { Store } from './store.ts';
import { StatCache } from './statcache.ts';
import { CodeGraph, toRel } from './codegraph.ts';
import { Workspace, History } from './trace.ts';
import type { Pipeline } from './pipeline.ts';
import type { EnvFact, Stage } from './task.ts';
import type { JobBody } from './executor.ts';

export interface SessionOptions {
  /** Directory relative paths hang off (default: pipeline.root, else the current directory). */
  root?: string;
  /** Store directory (default `<root>/cache`). */
  cacheDir?: string;
  /** Workspace directory (default `<root>/artifacts`). */
  artifactsDir?: string;
  /** Read-only stores consulted after the main one. */
  parentCacheDirs?: readonly string[];
  hashAlgorithm?: HashAlgorithm;
}

const NO_ENV: Readonly<Record<string, Json>> = Object.freeze({});

export class Session {
  readonly root: string;
  readonly cacheDir: string;
  readonly artifactsDir: string;
  readonly scratchRoot: string;
  readonly store: Store;
  stat: StatCache;
  graph: CodeGraph;
  ws: Workspace;
  history: History;
  private envMemo = new Map<EnvFact, Promise<Json>>();
  private envOf = new Map<string, Record<string, Json>>();

  constructor(
    readonly pipeline: Pipeline,
    opts: SessionOptions = {},
  ) {
    this.root = resolve(opts.root ?? pipeline.root ?? process.cwd());
    this.cacheDir = resolve(this.root, opts.cacheDir ?? 'cache');
    this.artifactsDir = resolve(this.root, opts.artifactsDir ?? 'artifacts');
    this.scratchRoot = join(this.root, '.mecheval-scratch');
    const parents = (opts.parentCacheDirs ?? []).map((d) => new Store(resolve(this.root, d), [], opts.hashAlgorithm));
    this.store = new Store(this.cacheDir, parents, opts.hashAlgorithm);
    this.stat = new StatCache(join(this.cacheDir, 'stat.json'));
    this.graph = new CodeGraph(this.root, this.stat);
    this.ws = new Workspace(this.artifactsDir);
    this.history = new History(this.cacheDir);
  }

  /**
   * Re-read the indexes from disk. Called right after taking the store lock: another writer may
   * have changed them since this session was opened (it validated params before waiting).
   * An index whose file still holds the bytes this session parsed, and that nothing here changed,
   * is kept: re-parsing it would give the same thing (a no-op run would parse each twice).
   * The code graph is always rebuilt: source files may have changed while we waited.
   */
  reload(): void {
    if (!this.stat.unchangedSinceRead()) this.stat = new StatCache(join(this.cacheDir, 'stat.json'));
    this.graph = new CodeGraph(this.root, this.stat);
    if (!this.ws.unchangedSinceRead()) this.ws = new Workspace(this.artifactsDir);
    if (!this.history.unchangedSinceRead()) this.history = new History(this.cacheDir);
  }

  private absMemo = new Map<string, string>();
  private relMemo = new Map<string, string>();

  abs(p: string): string {
    let a = this.absMemo.get(p);
    if (a === undefined) this.absMemo.set(p, (a = isAbsolute(p) ? p : resolve(this.root, p)));
    return a;
  }

  rel(p: string): string {
    let r = this.relMemo.get(p);
    if (r === undefined) this.relMemo.set(p, (r = toRel(this.root, this.abs(p))));
    return r;
  }

  /** Evaluate every stage's env facts (each distinct function once). A failing probe fails the build. */
  async resolveEnv(stages: readonly Stage[]): Promise<void> {
    for (const s of stages) {
      if (this.envOf.has(s.id)) continue;
      const env: Record<string, Json> = {};
      for (const [name, fact] of Object.entries(s.env)) {
        if (typeof fact !== 'function') {
          env[name] = fact;
          continue;
        }
        let p = this.envMemo.get(fact);
        if (!p) {
          p = Promise.resolve().then(() => (fact as () => Json | Promise<Json>)());
          this.envMemo.set(fact, p);
        }
        try {
          env[name] = await p;
        } catch (e) {
          throw new EngineError({
            code: 'env_probe',
            message: `environment fact '${name}' of stage '${s.id}' could not be computed`,
            fields: { stage: s.id, fact: name, reason: (e as Error).message },
            hint: 'a failing probe fails the key (it is never hashed as its error); fix the probe or the environment',
          });
        }
      }
      // stages without env facts share one frozen {} (its key encoding is then computed once)
      this.envOf.set(s.id, Object.keys(env).length === 0 ? NO_ENV : Object.freeze(env));
    }
  }

  body(s: Stage): JobBody {
    return s.body.kind === 'function' ? { kind: 'function', module: this.abs(s.body.module), export: s.body.export } : s.body;
  }

  /** The recipe of a stage given its upstream manifest digests (input name → digest). */
  recipe(s: Stage, inputDigests: Record<string, string>): Recipe {
    const env = this.envOf.get(s.id);
    if (!env) throw new EngineError({ code: 'internal', message: `env of '${s.id}' not resolved` });
    const roots = [...(s.body.kind === 'function' ? [this.abs(s.body.module)] : []), ...s.files.map((f) => this.abs(f))];
    const { code, packages } = this.graph.digest(roots);
    const inputs: Recipe['inputs'] = {};
    for (const [name, up] of Object.entries(s.inputs)) inputs[name] = { stage: up, digest: inputDigests[name]! };
    const body: Json =
      s.body.kind === 'function'
        ? `${this.rel(s.body.module)}#${s.body.export}`
        : (JSON.parse(JSON.stringify({ strings: s.body.template.strings, values: s.body.template.values })) as Json);
    return {
      kind: s.body.kind,
      body,
      code,
      packages,
      params: s.params as Json,
      inputs,
      env,
      outputs: [...s.outputs],
      ...(s.volatile.length ? { volatile: [...s.volatile] } : {}),
      timeoutMs: s.timeoutMs,
    };
  }

  /**
   * Absolute paths whose content enters this stage's key: its module and every local module it
   * imports, its declared `files`, and its schema file. Watch mode watches these (never outputs).
   */
  sourceFiles(s: Stage): string[] {
    const roots = [...(s.body.kind === 'function' ? [this.abs(s.body.module)] : []), ...s.files.map((f) => this.abs(f))];
    const out = new Set(Object.keys(this.graph.digest(roots).code).filter((f) => !f.includes(' → ')).map((f) => this.abs(f)));
    if (typeof s.schema === 'string') out.add(this.abs(s.schema));
    return [...out].sort();
  }

  key(r: Recipe): Hash {
    return keyOf(r);
  }

  scratchDir(id: string, key: string): string {
    return join(this.scratchRoot, `${id.replace(/\//g, '__')}-${key.slice(0, 16)}`);
  }

  /** Persist indexes (callers hold the store lock). */
  save(): void {
    this.ws.save();
    this.stat.save();
    this.history.save();
  }
}
