import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { ENGINE, project, buildProject, actions } from './helpers.ts';
import { fixture } from './fixture.ts';
import { loadPipeline, build, gc, readLockFile, consoleReporter, EngineError, stage, fn, pipeline, Session } from '../../src/engine/index.ts';
import { validateParams } from '../../src/engine/schema.ts';
import * as api from '../../src/engine/index.ts';

test('the public surface is pinned', () => {
  const surface = Object.fromEntries(Object.entries(api).map(([k, v]) => [k, typeof v]).sort());
  assert.deepEqual(surface, {
    ENGINE_SALT: 'string', EngineError: 'function', LocalExecutor: 'function', Placeholder: 'function', Session: 'function', Slots: 'function',
    build: 'function', canonicalJson: 'function', cmd: 'function', combinations: 'function', consoleReporter: 'function', defaultCapacity: 'function',
    defaultPipelineFile: 'function', diffJson: 'function', diffRecipes: 'function', digestJson: 'function', exitCodeOf: 'function', firstFailure: 'function',
    fmtMs: 'function', fn: 'function', formatError: 'function', gc: 'function', hashBytes: 'function', hashFile: 'function', inspect: 'function',
    isEngineError: 'function', isPipeline: 'function', keyOf: 'function', loadPipeline: 'function', loadPipelineTracked: 'function', lockText: 'function', matrix: 'function',
    matrixId: 'function', pipeline: 'function', prepare: 'function', readLockFile: 'function', rerunAndCompare: 'function', schedule: 'function',
    selectTargets: 'function', sh: 'function', silentReporter: 'object', stage: 'function', updateLockFile: 'function', upstreamClosure: 'function',
    verifyKeys: 'function', watch: 'function',
  });
});

test('the pipeline function receives --config, and each config can keep its own lock file', async () => {
  const p = project({
    'stages.mjs': `import { writeFile } from 'node:fs/promises'; import { join } from 'node:path';\nexport async function w(ctx) { await writeFile(join(ctx.outDir, 'o.txt'), String(ctx.params.size)); }\n`,
    'pipeline.ts': `import { stage, fn, pipeline } from '${ENGINE}';
export default ({ config }: { config?: string }) => pipeline({
  lockFile: 'pipeline.' + (config ?? 'default') + '.lock.json',
  stages: [stage({ id: 'w', params: { size: config === 'big' ? 100 : 1 }, schema: { type: 'object' }, outputs: ['o.txt'], run: fn(new URL('./stages.mjs', import.meta.url), 'w') })],
});`,
  });
  try {
    for (const config of ['small', 'big']) {
      const { pipeline: pl, root } = await loadPipeline(p.path('pipeline.ts'), { config, fresh: true });
      const r = await build(pl, { root });
      assert.ok(r.ok);
    }
    assert.deepEqual(readLockFile(p.path('pipeline.small.lock.json'))!.stages.w!.params, { size: 1 });
    assert.deepEqual(readLockFile(p.path('pipeline.big.lock.json'))!.stages.w!.params, { size: 100 });
    assert.equal(p.read('artifacts/w/o.txt'), '100');
  } finally {
    p.cleanup();
  }
});

test('a stage can resume from its scratch dir after a failure; the scratch dir goes after success', async () => {
  const p = project({
    'stages.mjs': `import { writeFile, readFile } from 'node:fs/promises'; import { existsSync } from 'node:fs'; import { join } from 'node:path';
export async function train(ctx) {
  const ck = join(ctx.scratchDir, 'checkpoint');
  if (!existsSync(ck)) { await writeFile(ck, 'step 5'); throw new Error('interrupted at step 5'); }
  await writeFile(join(ctx.outDir, 'model.txt'), 'resumed from ' + await readFile(ck, 'utf8'));
}\n`,
    'pipeline.ts': `import { stage, fn, pipeline } from '${ENGINE}';\nexport default pipeline({ stages: [stage({ id: 'train', outputs: ['model.txt'], run: fn(new URL('./stages.mjs', import.meta.url), 'train'), cost: 'expensive' })] });`,
  });
  try {
    const r1 = await buildProject(p);
    assert.equal(actions(r1).train, 'failed');
    assert.equal(readdirSync(p.path('.mecheval-scratch')).length, 1, 'the checkpoint survives the failure');
    const r2 = await buildProject(p);
    assert.equal(actions(r2).train, 'ran');
    assert.equal(p.read('artifacts/train/model.txt'), 'resumed from step 5');
    assert.equal(readdirSync(p.path('.mecheval-scratch')).length, 0, 'deleted after success');
    assert.equal(r2.session.pipeline.byId.get('train')!.cost, 'expensive');
  } finally {
    p.cleanup();
  }
});

test('gc deletes unreferenced objects and run entries, keeps what the lock and the workspace use', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    p.config({ value: 'b' });
    await buildProject(p);
    p.config({ value: 'c' });
    const r = await buildProject(p);
    const ses = new Session(r.session.pipeline, { root: p.dir });
    const before = ses.store.listRuns().length;
    assert.equal(before, 7, '3 up, 3 down, 1 other');
    const dry = gc(ses, readLockFile(p.path('pipeline.lock.json')), { dryRun: true, keepRuns: 1 });
    assert.equal(ses.store.listRuns().length, before, 'dry run deletes nothing');
    const res = gc(ses, readLockFile(p.path('pipeline.lock.json')), { dryRun: false, keepRuns: 1 });
    assert.deepEqual(res, dry);
    assert.equal(res.runs, 4, 'the a and b builds of up and down go');
    assert.ok(res.objects >= 2 && res.bytes > 0);
    const r2 = await buildProject(p);
    assert.ok(r2.outcomes.every((o) => o.action === 'fresh'), 'what is in use survived');
    p.config({ value: 'a' });
    assert.equal(actions(await buildProject(p)).up, 'ran', 'collected results are rebuilt');
  } finally {
    p.cleanup();
  }
});

test('a stage asking for more GPUs than the run has is a usage error (exit 2)', async () => {
  const s = stage({ id: 'train', outputs: ['m'], run: fn('x.mjs', 'x'), resources: { gpu: 1 } });
  await assert.rejects(build(pipeline({ stages: [s] }), { root: '/nonexistent', gpus: 0 }), (e: unknown) => e instanceof EngineError && e.code === 'resources' && e.exitCode === 2 && /--gpus/.test(e.hint ?? ''));
  assert.ok(!existsSync('/nonexistent'));
});

test('params schemas may live in files (schemas/*.schema.json)', () => {
  const p = project({ 'schemas/s.schema.json': JSON.stringify({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }) });
  try {
    validateParams([stage({ id: 'a', params: { n: 1 }, schema: 'schemas/s.schema.json', outputs: ['o'], run: fn('x.mjs') })], p.dir);
    assert.throws(() => validateParams([stage({ id: 'a', params: { n: 1.5 }, schema: 'schemas/s.schema.json', outputs: ['o'], run: fn('x.mjs') })], p.dir), (e: unknown) => e instanceof EngineError && /a \/n: must be integer/.test(e.fields.errors ?? ''));
  } finally {
    p.cleanup();
  }
});

test('console reporter: --json prints exactly one object per stage; plain mode prints results, not noise', () => {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
  const json = consoleReporter({ json: true, out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
  json.stageStart('a', 'run');
  json.progress('a', 1, 2);
  json.stageEnd({ stage: 'a', key: 'k', action: 'ran', ms: 12.4 });
  json.close();
  assert.equal(out, '{"stage":"a","key":"k","action":"ran","ms":12}\n');
  out = '';
  const plain = consoleReporter({ plain: true, out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
  plain.stageStart('b', 'run');
  plain.progress('b', 5, 10, 'loss=1.2');
  plain.stageEnd({ stage: 'b', key: 'k', action: 'ran', ms: 1500 });
  plain.stageEnd({ stage: 'c', key: 'k', action: 'fresh', ms: 0 });
  plain.stageEnd({ stage: 'd', key: null, action: 'failed', ms: 3, error: new EngineError({ code: 'stage_failed', message: "stage 'd' failed: boom", fields: { stage: 'd' } }) });
  plain.close();
  assert.match(err, /b 5\/10 loss=1\.2/);
  assert.match(err, /✓ ran\s+b 1\.5 s/);
  assert.doesNotMatch(err, /\bc\b.*fresh/);
  assert.match(err, /✗ failed\s+d[\s\S]*stage 'd' failed: boom/);
  assert.equal(out, '');
});

test('stageSignal cancels one stage (and its dependents) while the rest of the build goes on', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['slow'] });
    const ac = new AbortController();
    const timer = setInterval(() => {
      if (p.exists('slow.started')) ac.abort(new Error('file changed'));
    }, 20);
    const r = await buildProject(p, { stageSignal: (id) => (id === 'slow' ? ac.signal : undefined) });
    clearInterval(timer);
    assert.deepEqual(actions(r), { up: 'ran', down: 'ran', other: 'ran', slow: 'cancelled' });
    assert.ok(!p.exists('artifacts/slow'));
    assert.equal(r.session.store.listRuns().length, 3);
  } finally {
    p.cleanup();
  }
});

test('BLAKE3 store: objects carry the b3- prefix, restores verify them, no-op runs stay fresh', async () => {
  const p = fixture();
  try {
    const r = await buildProject(p, { hashAlgorithm: 'blake3' });
    const objs = r.session.store.listObjects();
    assert.ok(objs.length >= 3 && objs.every((d) => d.startsWith('b3-')), objs.join(' '));
    assert.deepEqual(Object.values(actions(await buildProject(p, { hashAlgorithm: 'blake3' }))), ['fresh', 'fresh', 'fresh']);
    p.config({ value: 'b' });
    await buildProject(p, { hashAlgorithm: 'blake3' });
    p.config({ value: 'a' });
    assert.equal(actions(await buildProject(p, { hashAlgorithm: 'blake3' })).up, 'restored');
  } finally {
    p.cleanup();
  }
});

test('symbolic links among outputs are refused (they would be moved, not copied, into the store)', async () => {
  const p = project({
    'stages.mjs': `import { writeFileSync, symlinkSync, mkdirSync } from 'node:fs'; import { join } from 'node:path';
export function link(ctx) { writeFileSync(join(ctx.outDir, 'real'), 'x'); symlinkSync('/etc/hostname', join(ctx.outDir, 'out.txt')); }
export function dirlink(ctx) { mkdirSync(join(ctx.outDir, 'd')); symlinkSync('/etc/hostname', join(ctx.outDir, 'd', 'l')); }\n`,
    'pipeline.ts': `import { stage, fn, pipeline } from '${ENGINE}';
const m = new URL('./stages.mjs', import.meta.url);
export default pipeline({ stages: [stage({ id: 'link', outputs: ['out.txt'], run: fn(m, 'link') }), stage({ id: 'dirlink', outputs: ['d/'], run: fn(m, 'dirlink') })] });`,
  });
  try {
    const r = await buildProject(p, { keepGoing: true });
    for (const id of ['link', 'dirlink']) {
      const o = r.rec.byId(id)!;
      assert.equal(o.action, 'failed');
      assert.equal((o.error as EngineError).code, 'output_missing');
      assert.match((o.error as EngineError).message, /symbolic link/);
    }
    assert.equal(r.session.store.listObjects().length, 0);
  } finally {
    p.cleanup();
  }
});

test('sourceFiles lists what a stage key reads (for watch mode): module, imports, schema file', async () => {
  const p = fixture();
  try {
    const { pipeline: pl, root } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
    const ses = new Session(pl, { root });
    assert.deepEqual(ses.sourceFiles(pl.byId.get('up')!), [p.path('helper.mjs'), p.path('stages.mjs')]);
  } finally {
    p.cleanup();
  }
});
