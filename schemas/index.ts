/**
 * @module schemas — the JSON Schemas as objects, with cross-file `$ref`s ("model.schema.json") inlined, for code
 * that needs one self-contained schema (the engine validates each stage's params with ajv against one object).
 * An embedded schema's own `definitions` are hoisted to the root under `<file>.<name>` and its local refs rewritten,
 * so two embedded files can never clash.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
type Schema = Record<string, unknown>;

function read(name: string): Schema {
  return JSON.parse(readFileSync(join(here, `${name}.schema.json`), 'utf8')) as Schema;
}

/** `name` without the extension, e.g. loadSchema('train-stage'). */
export function loadSchema(name: string): Schema {
  const hoisted: Record<string, unknown> = {};
  const embedded = new Set<string>();

  // Rewrite one file's tree: local refs get the file's namespace (none for the root file), file refs are embedded.
  const walk = (node: unknown, ns: string | null, stack: string[]): unknown => {
    if (Array.isArray(node)) return node.map((n) => walk(n, ns, stack));
    if (node === null || typeof node !== 'object') return node;
    const o = node as Schema;
    if (typeof o.$ref === 'string') {
      const ref = o.$ref;
      if (ref.endsWith('.schema.json')) {
        const file = ref.replace(/\.schema\.json$/, '');
        if (stack.includes(file)) throw new Error(`schema cycle: ${[...stack, file].join(' → ')}`);
        if (!embedded.has(file)) {
          embedded.add(file);
          const sub = read(file);
          const { definitions, $schema: _s, $id: _i, ...body } = sub;
          for (const [k, v] of Object.entries((definitions ?? {}) as Schema)) hoisted[`${file}.${k}`] = walk(v, file, [...stack, file]);
          hoisted[file] = walk(body, file, [...stack, file]);
        }
        return { $ref: `#/definitions/${file}` };
      }
      if (ns && ref.startsWith('#/definitions/')) return { ...o, $ref: `#/definitions/${ns}.${ref.slice('#/definitions/'.length)}` };
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v, ns, stack)]));
  };

  const root = walk(read(name), null, [name]) as Schema;
  if (Object.keys(hoisted).length) root.definitions = { ...((root.definitions as Schema) ?? {}), ...hoisted };
  return root;
}
