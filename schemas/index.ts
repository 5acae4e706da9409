/**
 * @module schemas — the JSON Schemas as objects, with cross-file `$ref`s ("model.schema.json") inlined, for code
 * that needs one self-contained schema (the engine validates each stage's params with ajv against one object).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
type Schema = Record<string, unknown>;

function inline(node: unknown, seen: string[]): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(n, seen));
  if (node === null || typeof node !== 'object') return node;
  const o = node as Schema;
  if (typeof o.$ref === 'string' && o.$ref.endsWith('.schema.json')) {
    if (seen.includes(o.$ref)) throw new Error(`schema cycle: ${[...seen, o.$ref].join(' → ')}`);
    return loadSchema(o.$ref.replace(/\.schema\.json$/, ''), [...seen, o.$ref], true);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, inline(v, seen)]));
}

/** `name` without the extension, e.g. loadSchema('train-stage'). Embedded schemas lose `$schema`/`$id`. */
export function loadSchema(name: string, seen: string[] = [], embedded = false): Schema {
  const raw = JSON.parse(readFileSync(join(here, `${name}.schema.json`), 'utf8')) as Schema;
  const out = inline(raw, seen) as Schema;
  if (embedded) {
    delete out.$schema;
    delete out.$id;
    // local "#/definitions/…" refs would point into the outer document once embedded
    if (out.definitions) throw new Error(`schema ${name} has definitions and cannot be embedded; reference its fields instead`);
  }
  return out;
}
