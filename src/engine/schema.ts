/**
 * @module schema — params are checked against each stage's JSON Schema (ajv) before anything runs.
 *
 * Every violation of every stage is collected and reported together, each with its JSON pointer.
 * A pass is a pure fact about (schema, params), so it is memoised in the stat cache: a no-op run
 * never loads ajv.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { EngineError } from './errors.ts';
import { canonicalJson, digestJson } from './key.ts';
import type { StatCache } from './statcache.ts';
import type { JsonSchema, Stage } from './task.ts';

type AjvLike = {
  compile(schema: JsonSchema): ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] | null };
  removeSchema(id: string): unknown;
};
let ajv: AjvLike | undefined;
const compiled = new Map<string, ReturnType<AjvLike['compile']>>();

function getAjv(): AjvLike {
  if (!ajv) {
    const Ajv = createRequire(import.meta.url)('ajv') as { default: new (o: object) => AjvLike };
    ajv = new Ajv.default({ allErrors: true, strict: false, validateFormats: false });
  }
  return ajv;
}

const schemaFiles = new Map<string, JsonSchema>();
function loadSchema(stage: Stage, root: string): JsonSchema {
  const s = stage.schema;
  if (typeof s !== 'string') return s as JsonSchema;
  const file = isAbsolute(s) ? s : resolve(root, s);
  // keyed by stat too: a long-lived process (watch mode) must see an edited schema file
  let cacheKey = file;
  try {
    const st = statSync(file);
    cacheKey = `${file}\0${st.mtimeMs}\0${st.size}`;
  } catch {
    /* unreadable: reported below */
  }
  let hit = schemaFiles.get(cacheKey);
  if (!hit) {
    try {
      hit = JSON.parse(readFileSync(file, 'utf8')) as JsonSchema;
    } catch (e) {
      throw new EngineError({ code: 'stage_invalid', message: `stage '${stage.id}': cannot read schema ${s}`, fields: { stage: stage.id, schema: file, reason: (e as Error).message } });
    }
    schemaFiles.set(cacheKey, hit);
  }
  return hit;
}

export interface ParamIssue {
  stage: string;
  pointer: string;
  message: string;
}

/** Throws one `params_invalid` error listing every issue of every stage. */
export function validateParams(stages: readonly Stage[], root: string, memo?: StatCache): void {
  const issues: ParamIssue[] = [];
  for (const st of stages) {
    let canon: string;
    try {
      canon = canonicalJson(st.params);
    } catch (e) {
      issues.push({ stage: st.id, pointer: (e as EngineError).fields?.pointer ?? '/', message: (e as Error).message });
      continue;
    }
    const hasParams = canon !== '{}' && canon !== 'null';
    if (st.schema === undefined) {
      if (hasParams) issues.push({ stage: st.id, pointer: '', message: 'stage has params but no schema' });
      continue;
    }
    const schema = loadSchema(st, root);
    const memoKey = `params:${digestJson({ schema: schema as never, params: canon })}`;
    if (memo?.hasMemo(memoKey)) continue;
    const schemaKey = canonicalJson(schema);
    let validate = compiled.get(schemaKey);
    if (!validate) {
      try {
        // An edited schema keeps its $id (watch mode reloads it): ajv refuses a second schema under one id.
        const id = (schema as { $id?: unknown }).$id;
        if (typeof id === 'string') getAjv().removeSchema(id);
        validate = getAjv().compile(schema);
      } catch (e) {
        throw new EngineError({ code: 'stage_invalid', message: `stage '${st.id}': its params schema is not a valid JSON Schema`, fields: { stage: st.id, reason: (e as Error).message } });
      }
      compiled.set(schemaKey, validate);
    }
    if (validate(JSON.parse(canon))) {
      memo?.addMemo(memoKey);
      continue;
    }
    for (const err of validate.errors ?? []) {
      let pointer = err.instancePath;
      if (err.params && typeof err.params.missingProperty === 'string') pointer += `/${err.params.missingProperty}`;
      if (err.params && typeof err.params.additionalProperty === 'string') pointer += `/${err.params.additionalProperty}`;
      issues.push({ stage: st.id, pointer, message: err.message ?? 'invalid' });
    }
  }
  if (issues.length) {
    const lines = issues.map((i) => `${i.stage} ${i.pointer || '/'}: ${i.message}`);
    throw Object.assign(
      new EngineError({
        code: 'params_invalid',
        message: `${issues.length} params error${issues.length > 1 ? 's' : ''} in ${new Set(issues.map((i) => i.stage)).size} stage(s); nothing was run`,
        fields: { errors: lines.join('\n') },
        hint: 'fix the params (or the schema) at the JSON pointers above',
      }),
      { issues },
    );
  }
}
