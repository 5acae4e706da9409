/**
 * @module task — what a stage is to the engine, and the functions that declare one.
 *
 * A stage is data: an id, JSON params with their JSON Schema, named upstream inputs, declared
 * outputs, resources, environment facts and a body (a function in a module, run in a worker
 * process, or a zx command template). Declaring is pure and checks shape eagerly; params are
 * validated against the schema by `schema.ts` before anything runs.
 */
import { fileURLToPath } from 'node:url';
import { EngineError } from './errors.ts';
import type { Json } from './key.ts';

export type JsonSchema = Record<string, unknown>;
export interface Resources {
  cpu: number;
  gpu: number;
}
/** Watch mode restarts `cheap` stages on a change; `expensive` ones are allowed to finish. */
export type Cost = 'cheap' | 'expensive';
/** A declared environment fact: a JSON value, or a function computing one (evaluated once per build). */
export type EnvFact = Json | (() => Json | Promise<Json>);

// ---------------------------------------------------------------------------------------------
// Bodies

/** A function exported by a module; `module` is relative to the pipeline root, absolute, or a file URL. */
export interface FnRef {
  readonly kind: 'function';
  readonly module: string;
  readonly export: string;
}

export function fn(module: string | URL, exportName = 'default'): FnRef {
  const m = module instanceof URL ? fileURLToPath(module) : module.startsWith('file:') ? fileURLToPath(module) : module;
  return Object.freeze({ kind: 'function', module: m, export: exportName });
}

/** A symbolic path in a command, filled in at run time (and kept symbolic in the key). */
export class Placeholder {
  readonly __placeholder = true as const;
  constructor(readonly name: string) {}
  toJSON(): Json {
    return { $placeholder: this.name };
  }
}

/** Duck-typed so that placeholders made by another copy of this module are recognised. */
export function isPlaceholder(v: unknown): v is Placeholder {
  return typeof v === 'object' && v !== null && (v as { __placeholder?: unknown }).__placeholder === true;
}

export type ShValue = Json | Placeholder | readonly (Json | Placeholder)[];
export interface ShTemplate {
  readonly strings: readonly string[];
  readonly values: readonly ShValue[];
}

/**
 * Tagged template for command stages. Every interpolated value is passed to zx, which quotes it
 * for the shell, so a param such as `$(rm -rf ~); echo` stays one inert argument.
 */
export function sh(strings: TemplateStringsArray, ...values: (ShValue | undefined)[]): ShTemplate {
  values.forEach((v, i) => {
    if (v === undefined) {
      throw new EngineError({ code: 'stage_invalid', message: `sh\`…\`: interpolated value #${i + 1} is undefined`, fields: { after: JSON.stringify(strings[i]) }, hint: 'interpolate only declared params, inputs, outDir or scratchDir' });
    }
  });
  return Object.freeze({ strings: [...strings], values: values as ShValue[] });
}

export interface CommandArgs<P> {
  params: P;
  /** input name → placeholder for the upstream's output directory */
  inputs: Record<string, Placeholder>;
  outDir: Placeholder;
  scratchDir: Placeholder;
}
export interface CommandSpec<P> {
  readonly kind: 'command';
  readonly make: (args: CommandArgs<P>) => ShTemplate;
}
export function cmd<P = any>(make: (args: CommandArgs<P>) => ShTemplate): CommandSpec<P> {
  return Object.freeze({ kind: 'command', make });
}

export type Body = FnRef | { readonly kind: 'command'; readonly template: ShTemplate };

// ---------------------------------------------------------------------------------------------
// Contexts seen by stage code

export interface StageContext<P = any> {
  readonly id: string;
  readonly key: string;
  readonly params: P;
  /** input name → absolute directory holding that upstream stage's outputs (read-only). */
  readonly inputs: Readonly<Record<string, string>>;
  /** input name → the upstream stage id, its key, and the wall time of the run that made its outputs. */
  readonly upstream: Readonly<Record<string, { readonly id: string; readonly key: string; readonly ms: number | null }>>;
  /** Write every declared output here. Nothing here is kept unless the stage succeeds. */
  readonly outDir: string;
  /** Per-key directory outside the store that survives a crash (resumable checkpoints); created on first access, deleted after success. */
  readonly scratchDir: string;
  /** GPU indices assigned by the scheduler (also in CUDA_VISIBLE_DEVICES). */
  readonly gpus: readonly number[];
  progress(step: number, total: number, info?: string): void;
  log(msg: string): void;
  /** Aborted when the run is cancelled (SIGINT, first failure elsewhere, watch restart). */
  readonly signal: AbortSignal;
}
export type StageFn<P = any> = (ctx: StageContext<P>) => void | Promise<void>;

export interface ShowContext<P = any> {
  readonly id: string;
  readonly params: P;
  /** absolute directory of this stage's outputs */
  readonly outDir: string;
  /** how many items to show (`show --n N`); undefined = the stage's choice */
  readonly n: number | undefined;
}
/** Returns text to print (or prints itself and returns nothing). */
export type ShowFn<P = any> = (ctx: ShowContext<P>) => string | void | Promise<string | void>;

// ---------------------------------------------------------------------------------------------
// Stages

export interface StageSpec<P = Record<string, unknown>> {
  /** Stable readable id: slash-separated segments of [A-Za-z0-9_][A-Za-z0-9._=,+@-]* */
  id: string;
  params?: P;
  /** JSON Schema for params: an object, or a path (relative to the pipeline root) to a .schema.json file. */
  schema?: JsonSchema | string;
  /** input name → upstream stage (object or id). Its outputs appear at `ctx.inputs[name]`. */
  inputs?: Record<string, string | Stage<any>>;
  /** Output names inside the stage's output dir. A trailing `/` declares a directory. */
  outputs: readonly string[];
  /**
   * Outputs that legitimately differ between runs (wall times, logs): stored and restored like the others, but left
   * out of the output digest, so they cause no downstream rebuilds and `verify` ignores them. A subset of outputs.
   */
  volatile?: readonly string[];
  run: FnRef | CommandSpec<P>;
  resources?: Partial<Resources>;
  cost?: Cost;
  env?: Record<string, EnvFact>;
  /** Extra local files whose content goes into the key (scripts a command runs, data files, …). */
  files?: readonly string[];
  /** Pretty-printer for `pipeline show <id>`. */
  show?: FnRef;
  /** Kill the body after this long; part of the key. */
  timeoutMs?: number;
  /**
   * Expected wall time in seconds, a scheduling hint only (not part of the key): ready work is started longest
   * remaining path first (priority.ts). Once the stage has run here, its measured duration is used instead.
   */
  expectedSeconds?: number;
  description?: string;
}

export interface Stage<P = any> {
  readonly id: string;
  readonly params: P;
  readonly schema: JsonSchema | string | undefined;
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: readonly string[];
  readonly volatile: readonly string[];
  readonly body: Body;
  readonly resources: Resources;
  readonly cost: Cost;
  readonly env: Readonly<Record<string, EnvFact>>;
  readonly files: readonly string[];
  readonly show: FnRef | undefined;
  readonly timeoutMs: number | null;
  readonly expectedSeconds: number | null;
  readonly description: string | undefined;
  readonly __stage: true;
}

/** A whole stage id: slash-separated segments, each of letters, digits and ._=,+@- starting with a letter, digit or _. */
export const STAGE_ID = /^[A-Za-z0-9_][A-Za-z0-9._=,+@-]*(?:\/[A-Za-z0-9_][A-Za-z0-9._=,+@-]*)*$/;

export function checkStageId(id: unknown, where = 'stage id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200 || !STAGE_ID.test(id)) {
    throw new EngineError({
      code: 'stage_invalid',
      message: `invalid ${where} ${JSON.stringify(id)}`,
      fields: { id: String(id) },
      hint: 'use slash-separated segments of letters, digits and ._=,+@- (each starting with a letter, digit or _), e.g. train/mamba-d64-lr1e-3',
    });
  }
  return id;
}

/**
 * Names made of stage-id segments (optionally with a trailing `/`) pass every check below; testing
 * them with one regex first keeps declaring a thousand stages cheap.
 */
const PLAIN_OUTPUT = /^[A-Za-z0-9_][A-Za-z0-9._=,+@-]*(?:\/[A-Za-z0-9_][A-Za-z0-9._=,+@-]*)*\/?$/;

/** Output names must stay inside the output dir: no absolute paths, no `..`, no empty segments. */
export function checkOutputName(stageId: string, name: unknown): string {
  if (typeof name === 'string' && PLAIN_OUTPUT.test(name)) return name;
  const bad = (why: string): EngineError =>
    new EngineError({
      code: 'stage_invalid',
      message: `stage '${stageId}' declares an invalid output ${JSON.stringify(name)}: ${why}`,
      fields: { stage: stageId, output: String(name) },
      hint: 'declare outputs as relative names inside the stage output dir, e.g. "model.bin" or "plots/"',
    });
  if (typeof name !== 'string' || name.length === 0) throw bad('not a non-empty string');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('absolute path');
  if (name.includes('\\') || name.includes('\0')) throw bad('backslash or NUL in name');
  const segs = name.replace(/\/$/, '').split('/');
  if (segs.some((s) => s === '..')) throw bad('contains ".."');
  if (segs.some((s) => s === '' || s === '.')) throw bad('empty or "." path segment');
  return name;
}

function nonNegInt(stageId: string, what: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new EngineError({
      code: 'stage_invalid',
      message: `stage '${stageId}': ${what} must be a non-negative integer, got ${JSON.stringify(v)}`,
      fields: { stage: stageId, field: what },
    });
  }
  return v;
}

export function stage<P = Record<string, unknown>>(spec: StageSpec<P>): Stage<P> {
  const id = checkStageId(spec.id);
  const outputs = [...(spec.outputs ?? [])].map((o) => checkOutputName(id, o));
  if (outputs.length === 0) {
    throw new EngineError({ code: 'stage_invalid', message: `stage '${id}' declares no outputs`, fields: { stage: id }, hint: 'every stage must declare at least one output' });
  }
  const norm = outputs.map((o) => o.replace(/\/$/, ''));
  for (const a of norm) {
    for (const b of norm) {
      if (a !== b && b.startsWith(`${a}/`)) throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': outputs '${a}' and '${b}' overlap`, fields: { stage: id } });
    }
    if (norm.indexOf(a) !== norm.lastIndexOf(a)) throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': output '${a}' declared twice`, fields: { stage: id } });
  }
  const volatile = [...(spec.volatile ?? [])];
  for (const v of volatile) {
    if (!outputs.includes(v)) {
      throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': volatile output ${JSON.stringify(v)} is not among its outputs`, fields: { stage: id, output: String(v) }, hint: `volatile must list declared outputs: ${outputs.join(', ')}` });
    }
  }
  const inputs: Record<string, string> = {};
  for (const [name, up] of Object.entries(spec.inputs ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': input name ${JSON.stringify(name)} is not an identifier`, fields: { stage: id, input: name } });
    }
    inputs[name] = typeof up === 'string' ? checkStageId(up, `input '${name}' of stage '${id}'`) : up.id;
  }
  // A frozen private copy: the key may cache its encoding, and nobody can change it under us.
  const params = (spec.params === undefined ? EMPTY_RECORD : deepFreeze(cloneJsonish(spec.params))) as P;
  const run = spec.run as FnRef | CommandSpec<P> | undefined;
  let body: Body;
  if (run && run.kind === 'function') body = run;
  else if (run && run.kind === 'command') {
    const ph = new Proxy({} as Record<string, Placeholder>, {
      get: (_t, name) => {
        if (typeof name !== 'string' || !(name in inputs)) {
          throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': command uses undeclared input ${String(name)}`, fields: { stage: id, input: String(name) }, hint: `declare it under inputs, one of: ${Object.keys(inputs).join(', ') || '(none)'}` });
        }
        return new Placeholder(`input:${name}`);
      },
    });
    const template = run.make({ params, inputs: ph, outDir: new Placeholder('outDir'), scratchDir: new Placeholder('scratchDir') });
    if (!template || !Array.isArray(template.strings)) {
      throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': the command function must return sh\`…\``, fields: { stage: id } });
    }
    body = { kind: 'command', template };
  } else {
    throw new EngineError({ code: 'stage_invalid', message: `stage '${id}' has no body`, fields: { stage: id }, hint: "set run: fn('path/to/module.ts', 'exportName') or run: cmd((c) => sh`…`)" });
  }
  const cost = spec.cost ?? 'cheap';
  if (cost !== 'cheap' && cost !== 'expensive') {
    throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': cost must be 'cheap' or 'expensive', got ${JSON.stringify(cost)}`, fields: { stage: id } });
  }
  const timeoutMs = spec.timeoutMs === undefined ? null : nonNegInt(id, 'timeoutMs', spec.timeoutMs, 0);
  const expectedSeconds = spec.expectedSeconds ?? null;
  if (expectedSeconds !== null && !(typeof expectedSeconds === 'number' && Number.isFinite(expectedSeconds) && expectedSeconds >= 0)) {
    throw new EngineError({ code: 'stage_invalid', message: `stage '${id}': expectedSeconds must be a finite number ≥ 0, got ${JSON.stringify(expectedSeconds)}`, fields: { stage: id } });
  }
  const cpu = nonNegInt(id, 'resources.cpu', spec.resources?.cpu, 1);
  const gpu = nonNegInt(id, 'resources.gpu', spec.resources?.gpu, 0);
  return Object.freeze({
    id,
    params,
    schema: spec.schema,
    inputs: frozenRecord(inputs),
    outputs: Object.freeze(outputs),
    volatile: frozenList(volatile),
    body,
    resources: cpu === 1 && gpu === 0 ? DEFAULT_RESOURCES : Object.freeze({ cpu, gpu }),
    cost,
    env: frozenRecord({ ...(spec.env ?? {}) }),
    files: frozenList([...(spec.files ?? [])]),
    show: spec.show,
    timeoutMs,
    expectedSeconds,
    description: spec.description,
    __stage: true as const,
  });
}

// Most stages declare no env, files, volatile outputs or inputs: they share one frozen empty value
// each, so a thousand stages allocate (and the key encoder encodes) it once, not a thousand times.
const EMPTY_LIST: readonly never[] = Object.freeze([]);
const EMPTY_RECORD: Readonly<Record<string, never>> = Object.freeze({});
const DEFAULT_RESOURCES: Resources = Object.freeze({ cpu: 1, gpu: 0 });
const frozenList = <T>(xs: T[]): readonly T[] => (xs.length === 0 ? EMPTY_LIST : Object.freeze(xs));
const frozenRecord = <T>(r: Record<string, T>): Readonly<Record<string, T>> => (Object.keys(r).length === 0 ? EMPTY_RECORD : Object.freeze(r));

function cloneJsonish(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJsonish);
  if (v && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cloneJsonish(x)]));
  }
  return v; // non-JSON values are kept as they are and reported by validation
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Matrices

type Axes = Record<string, readonly unknown[]>;
export type Combo<A extends Axes> = { [K in keyof A]: A[K][number] };

/** Every combination of the axes, in declaration order (last axis fastest). */
export function combinations<const A extends Axes>(axes: A): Combo<A>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, vals] of Object.entries(axes)) {
    const next: Record<string, unknown>[] = [];
    for (const o of out) for (const v of vals) next.push({ ...o, [k]: v });
    out = next;
  }
  return out as Combo<A>[];
}

/** One stage per combination, e.g. `matrix({ arch, lr, seed }, (v) => stage({ id: matrixId('train', v), … }))`. */
export function matrix<const A extends Axes, P>(axes: A, make: (v: Combo<A>) => Stage<P>): Stage<P>[] {
  return combinations(axes).map(make);
}

/** A readable id for a combination: `prefix/arch=mamba,lr=0.001,seed=0`. */
export function matrixId(prefix: string, v: Record<string, unknown>): string {
  const part = Object.entries(v)
    .map(([k, x]) => `${k}=${String(typeof x === 'object' ? JSON.stringify(x) : x).replace(/[^A-Za-z0-9._+@-]/g, '_')}`)
    .join(',');
  return `${prefix}/${part}`;
}
