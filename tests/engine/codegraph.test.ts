import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodeGraph, analyseSource, resolveLocal, packageNameOf } from '../../src/engine/codegraph.ts';
import { StatCache } from '../../src/engine/statcache.ts';
import { project } from './helpers.ts';

test('normalised digests ignore comments, whitespace, trailing commas and types', () => {
  const a = analyseSource(`import { x } from './a.js'; // note\nexport const f = (p: number) => { return [x, p, ]; };\n`, 'm.ts');
  const b = analyseSource(`import { x } from './a.js';\n\n/* block */\nexport const f = (p: string) =>\n{\n    return [x, p];\n};`, 'm.ts');
  assert.equal(a.digest, b.digest);
  const c = analyseSource(`import { x } from './a.js';\nexport const f = (p: number) => { return [p, x]; };\n`, 'm.ts');
  assert.notEqual(a.digest, c.digest);
  // strings, template literals and regexes are code, not whitespace
  assert.notEqual(analyseSource('const s = "a  b";', 'm.ts').digest, analyseSource('const s = "a b";', 'm.ts').digest);
  assert.notEqual(analyseSource('const r = /a  b/;', 'm.ts').digest, analyseSource('const r = /a b/;', 'm.ts').digest);
  assert.notEqual(analyseSource('const t = `a ${1}  b`;', 'm.ts').digest, analyseSource('const t = `a ${1} b`;', 'm.ts').digest);
});

test('runtime imports of every form are found; type-only imports are not', () => {
  const src = `
    import def, { a } from './a.js';
    import * as ns from "./ns.ts";
    import './side-effect.ts';
    import type { T } from './types.ts';
    import { type U } from './types2.ts';
    export { b } from './b.js';
    export * from './c.ts';
    const lazy = () => import('./lazy.ts');
    import zx from 'zx';
    import { readFile } from 'node:fs/promises';
    const s = "import x from './not-an-import.ts'";
    // import y from './commented.ts'
  `;
  const { imports } = analyseSource(src, 'm.ts');
  assert.deepEqual(new Set(imports), new Set(['./a.js', './ns.ts', './side-effect.ts', './types2.ts', './b.js', './c.ts', './lazy.ts', 'zx', 'node:fs/promises']));
});

test('package names and builtins', () => {
  assert.equal(packageNameOf('@tensorflow/tfjs-node/dist/x'), '@tensorflow/tfjs-node');
  assert.equal(packageNameOf('zx/core'), 'zx');
  assert.equal(packageNameOf('node:fs'), undefined);
  assert.equal(packageNameOf('fs'), undefined);
  assert.equal(packageNameOf('path/posix'), undefined);
});

test('the graph follows local imports transitively, rewrites .js → .ts, and records locked package versions', () => {
  const p = project({
    'package-lock.json': JSON.stringify({ lockfileVersion: 3, packages: { '': {}, 'node_modules/zx': { version: '9.9.9' } } }),
    'stage.ts': `import { h } from './lib/h.js';\nimport 'zx';\nexport const run = () => h();\n`,
    'lib/h.ts': `export { g as h } from './g.ts';\n`,
    'lib/g.ts': `import type { Z } from '../types.ts';\nexport const g = async () => (await import('./late.mjs')).x;\n`,
    'lib/late.mjs': `export const x = 1;\n`,
    'types.ts': `export type Z = number;\n`,
    'unrelated.ts': `export const u = 1;\n`,
  });
  try {
    const g = new CodeGraph(p.dir, new StatCache(undefined));
    const d = g.digest([p.path('stage.ts')]);
    assert.deepEqual(Object.keys(d.code).sort(), ['lib/g.ts', 'lib/h.ts', 'lib/late.mjs', 'stage.ts']);
    assert.deepEqual(d.packages, { zx: '9.9.9' });
    assert.equal(resolveLocal(p.path('stage.ts'), './lib/h.js'), p.path('lib/h.ts'));
    // a comment edit keeps the digest; a code edit in a transitive import changes it
    p.write('lib/late.mjs', `// comment\nexport const x = 1;\n`);
    assert.deepEqual(new CodeGraph(p.dir, new StatCache(undefined)).digest([p.path('stage.ts')]).code, d.code);
    p.write('lib/late.mjs', `export const x = 2;\n`);
    const d2 = new CodeGraph(p.dir, new StatCache(undefined)).digest([p.path('stage.ts')]);
    assert.notEqual(d2.code['lib/late.mjs'], d.code['lib/late.mjs']);
    assert.equal(d2.code['stage.ts'], d.code['stage.ts']);
  } finally {
    p.cleanup();
  }
});

test('the stat cache answers without re-reading unchanged files', () => {
  const p = project({ 'm.ts': 'export const a = 1;\n' });
  try {
    const sc = new StatCache(p.path('stat.json'));
    const d1 = new CodeGraph(p.dir, sc).digest([p.path('m.ts')]);
    const st = { size: 0, mtimeNs: 0n, ino: 0n };
    assert.equal(sc.lookup(p.path('m.ts'), st), undefined); // a different stat never hits
    const d2 = new CodeGraph(p.dir, sc).digest([p.path('m.ts')]);
    assert.deepEqual(d1, d2);
  } finally {
    p.cleanup();
  }
});

test('racy stat-cache entries are kept in memory, then promoted once aged with the same bytes', async () => {
  const { utimesSync, readFileSync: rf, writeFileSync } = await import('node:fs');
  const { statInfo } = await import('../../src/engine/statcache.ts');
  const p = project({ 'a.ts': 'export const a = 1;\n', 'b.ts': 'export const b = 1;\n' });
  try {
    const t = new Date(Date.now() - 1000); // 1 s old: inside the 2 s racy window
    utimesSync(p.path('a.ts'), t, t);
    utimesSync(p.path('b.ts'), t, t);
    const sc = new StatCache(p.path('stat.json'));
    new CodeGraph(p.dir, sc).digest([p.path('a.ts'), p.path('b.ts')]);
    sc.save();
    const persisted = () => Object.keys((JSON.parse(rf(p.path('stat.json'), 'utf8')) as { files: object }).files).sort();
    assert.ok(!p.exists('stat.json') || persisted().length === 0, 'racy entries are not persisted');
    // b changes within its timestamp (same size, mtime put back): must never be promoted
    writeFileSync(p.path('b.ts'), 'export const b = 2;\n'); // same inode, same size
    utimesSync(p.path('b.ts'), t, t);
    await new Promise((r) => setTimeout(r, 1200));
    sc.save();
    assert.deepEqual(persisted(), [p.path('a.ts')]);
    assert.ok(statInfo(p.path('a.ts')));
  } finally {
    p.cleanup();
  }
});
