/**
 * @module key — canonical JSON and stage keys.
 *
 * A key is SHA-256 over the canonical JSON of a *recipe*: sorted object keys, no insignificant
 * whitespace, strings escaped by JSON itself. JSON is a structural encoding, so field boundaries
 * are unambiguous ("ab"+"c" and "a"+"bc" differ), which is the property Bazel gets from
 * length-prefixing and Dagster lacks (dagster-io/dagster#34184). The salt disowns every old key
 * at once (REAPI `salt`): bump it when the meaning of a recipe changes.
 */
import { hashBytes, type Hash } from './hash.ts';
import { EngineError } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Bump to invalidate every cached result (e.g. after a change in how outputs are recorded). */
export const ENGINE_SALT = 'mecheval-engine/1';

/**
 * Canonical JSON: object keys sorted by UTF-16 code units, `-0` written as `0`.
 * Rejects what JSON cannot represent faithfully (undefined, NaN, ±Infinity, functions,
 * class instances, bigint), naming the JSON pointer of the offending value.
 */
export function canonicalJson(value: unknown): string {
  try {
    return encode(value);
  } catch (e) {
    if (e !== NOT_JSON) throw e;
    const [pointer, what] = findNonJson(value, '') ?? ['', 'unknown'];
    throw notJson(pointer, what);
  }
}

const NOT_JSON = Symbol('not JSON');
const frozenCache = new WeakMap<object, string>();

/** The hot path: no pointer bookkeeping; on failure `findNonJson` locates the culprit. */
function encode(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw NOT_JSON;
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      const frozen = Object.isFrozen(value);
      if (frozen) {
        // Frozen values cannot change, so their encoding is cached (shared code maps, params).
        const hit = frozenCache.get(value);
        if (hit !== undefined) return hit;
      }
      let text: string;
      if (Array.isArray(value)) text = `[${value.map(encode).join(',')}]`;
      else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw NOT_JSON;
        const obj = value as Record<string, unknown>;
        const keys = Object.keys(obj).sort();
        const parts: string[] = new Array(keys.length);
        for (let i = 0; i < keys.length; i++) {
          const v = obj[keys[i]!];
          if (v === undefined) throw NOT_JSON;
          parts[i] = `${JSON.stringify(keys[i])}:${encode(v)}`;
        }
        text = `{${parts.join(',')}}`;
      }
      if (frozen) frozenCache.set(value, text);
      return text;
    }
    default:
      throw NOT_JSON;
  }
}

function findNonJson(value: unknown, pointer: string): [string, string] | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : [pointer, String(value)];
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const r = findNonJson(value[i], `${pointer}/${i}`);
          if (r) return r;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return [pointer, `an instance of ${proto?.constructor?.name ?? 'a class'}`];
      for (const [k, v] of Object.entries(value)) {
        const p = `${pointer}/${escapePointer(k)}`;
        if (v === undefined) return [p, 'undefined'];
        const r = findNonJson(v, p);
        if (r) return r;
      }
      return undefined;
    }
    default:
      return [pointer, typeof value];
  }
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function notJson(pointer: string, what: string): EngineError {
  return new EngineError({
    code: 'stage_invalid',
    message: `value at ${pointer || '/'} is not JSON (${what})`,
    fields: { pointer: pointer || '/' },
    hint: 'params, env facts and keys must be plain JSON: use null, finite numbers, strings, arrays and plain objects',
  });
}

export function digestJson(value: unknown): Hash {
  return hashBytes(canonicalJson(value));
}

/**
 * Everything a stage's result may depend on. Stored next to each build so `explain` can diff an
 * old recipe against a new one field by field.
 */
export interface Recipe {
  /** 'function' | 'command' */
  kind: string;
  /** function: `module#export` (root-relative); command: the template with placeholders. */
  body: Json;
  /** root-relative path → normalised content digest, for every local module reached. */
  code: Record<string, string>;
  /** npm package name → locked version, for every package the code imports. */
  packages: Record<string, string>;
  params: Json;
  /** input name → `{ stage, digest }` of the upstream's whole output manifest. */
  inputs: Record<string, { stage: string; digest: string }>;
  /** declared environment facts, evaluated. */
  env: Record<string, Json>;
  /** declared output names. */
  outputs: string[];
  /** volatile outputs; present only when the stage declares some, so other keys are unchanged. */
  volatile?: string[];
  /** timeouts change what a run can produce (REAPI puts the timeout in the action key). */
  timeoutMs: number | null;
}

/** The stage key: SHA-256 over the canonical JSON of salt + recipe. */
export function keyOf(recipe: Recipe, salt: string = ENGINE_SALT): Hash {
  return hashBytes(`{"recipe":${encodeRecipe(recipe)},"salt":${JSON.stringify(salt)}}`);
}

/**
 * Canonical JSON of a recipe, written field by field in sorted key order; equal to
 * `canonicalJson(recipe)` (a test checks it) but cheaper on the hot path of a no-op run, since the
 * shared frozen parts (code map, params, env, outputs) hit the encoding cache.
 */
export function encodeRecipe(r: Recipe): string {
  const keys = Object.keys(r);
  if (keys.length !== RECIPE_KEYS.length || !RECIPE_KEYS.every((k) => k in r)) return canonicalJson(r);
  const inputNames = Object.keys(r.inputs).sort();
  let inputs = '{';
  for (let i = 0; i < inputNames.length; i++) {
    const n = inputNames[i]!;
    const x = r.inputs[n]!;
    inputs += `${i ? ',' : ''}${JSON.stringify(n)}:{"digest":${JSON.stringify(x.digest)},"stage":${JSON.stringify(x.stage)}}`;
  }
  inputs += '}';
  return (
    `{"body":${canonicalJson(r.body)},"code":${canonicalJson(r.code)},"env":${canonicalJson(r.env)},"inputs":${inputs},` +
    `"kind":${JSON.stringify(r.kind)},"outputs":${canonicalJson(r.outputs)},"packages":${canonicalJson(r.packages)},` +
    `"params":${canonicalJson(r.params)},"timeoutMs":${canonicalJson(r.timeoutMs)}}`
  );
}

const RECIPE_KEYS = ['body', 'code', 'env', 'inputs', 'kind', 'outputs', 'packages', 'params', 'timeoutMs'] as const;
