import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyseSource, resolveLocal, packageNameOf } from '../../src/engine/codegraph.ts';
import { REPO } from './helpers.ts';

const dirs = ['src/engine', 'src/cli', 'src/cli/commands'];
const files = dirs.flatMap((d) => readdirSync(join(REPO, d)).filter((f) => f.endsWith('.ts')).map((f) => join(REPO, d, f)));
const graph = new Map(files.map((f) => [f, analyseSource(readFileSync(f, 'utf8'), f).imports]));

test('the engine imports only Node built-ins, engine files and its few packages; never ML code', () => {
  const allowed = new Set(['ajv', 'typescript', 'tsx', 'zx', 'hash-wasm', 'picomatch', 'chokidar']); // chokidar: watch.ts only
  for (const [f, imports] of graph) {
    if (!f.includes('/src/engine/')) continue;
    for (const spec of imports) {
      if (spec.startsWith('.')) {
        const r = resolveLocal(f, spec);
        assert.ok(r && r.includes('/src/engine/'), `${f} imports ${spec} outside src/engine`);
      } else {
        const pkg = packageNameOf(spec);
        assert.ok(pkg === undefined || allowed.has(pkg), `${f} imports package ${spec}`);
      }
    }
  }
});

test('no import cycles in src/engine and src/cli (runtime imports)', () => {
  const state = new Map<string, 1 | 2>();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 2) return;
    assert.notEqual(state.get(f), 1, `cycle: ${[...path, f].map((p) => p.slice(REPO.length + 1)).join(' → ')}`);
    state.set(f, 1);
    for (const spec of graph.get(f) ?? []) {
      if (!spec.startsWith('.')) continue;
      const r = resolveLocal(f, spec);
      if (r && graph.has(r)) visit(r, [...path, f]);
    }
    state.set(f, 2);
  };
  for (const f of graph.keys()) visit(f, []);
});
