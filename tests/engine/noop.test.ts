/**
 * The no-op fast path (issue 2's benchmark): a fresh stage is decided synchronously, indexes that
 * did not change are not re-read after taking the lock, and the hot encodings are written by hand.
 * Each shortcut is checked against the general path it replaces, with cases where they must differ
 * from "fresh" so a shortcut that answered too eagerly would fail here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, utimesSync, writeFileSync, rmSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fixture } from './fixture.ts';
import { buildProject, actions } from './helpers.ts';
import { loadPipeline, Session, prepare, inspect, canonicalJson, type Executor } from '../../src/engine/index.ts';
import { schedule, type NodeResult } from '../../src/engine/scheduler.ts';
import { manifestDigest, manifestDigestText, type Manifest } from '../../src/engine/store.ts';
import { hashBytes, digestJson } from '../../src/engine/index.ts';
import { Workspace } from '../../src/engine/trace.ts';

/** A deterministic DAG: node i depends on up to three earlier nodes. */
function randomDag(n: number, seed: number): { order: string[]; deps: Record<string, string[]> } {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const order = Array.from({ length: n }, (_, i) => `n${i}`);
  const deps: Record<string, string[]> = {};
  for (let i = 0; i < n; i++) {
    const ds = new Set<string>();
    for (let k = 0; k < 3 && i > 0; k++) if (rnd() < 0.5) ds.add(`n${Math.floor(rnd() * i)}`);
    deps[`n${i}`] = [...ds];
  }
  return { order, deps };
}

async function trace(order: string[], deps: Record<string, string[]>, answer: (id: string) => NodeResult, sync: boolean, keepGoing: boolean) {
  const started: string[] = [];
  const task = (id: string): NodeResult | Promise<NodeResult> => {
    started.push(id);
    return sync ? answer(id) : Promise.resolve().then(() => answer(id));
  };
  const results = await schedule(order, (id) => deps[id]!, task, { keepGoing });
  return { started, results: Object.fromEntries([...results].sort()) };
}

test('scheduler: synchronous answers settle exactly as awaited ones (results and start order)', async () => {
  for (const seed of [1, 2, 3]) {
    const { order, deps } = randomDag(60, seed);
    const fails = new Set(order.filter((_, i) => (i * 7 + seed) % 13 === 0));
    const answer = (id: string): NodeResult => (fails.has(id) ? 'failed' : 'ok');
    // keep-going: a failure only skips its dependents, so both must agree node for node
    const a = await trace(order, deps, answer, true, true);
    const b = await trace(order, deps, answer, false, true);
    assert.deepEqual(a, b, `seed ${seed}`);
    assert.ok(Object.values(a.results).includes('cancelled') && Object.values(a.results).includes('ok'), 'the case exercises both outcomes');
    // no failures: everything runs, in the same order
    const c = await trace(order, deps, () => 'ok', true, false);
    const d = await trace(order, deps, () => 'ok', false, false);
    assert.deepEqual(c, d);
    assert.equal(c.started.length, order.length);
    for (const id of order) for (const dep of deps[id]!) assert.ok(c.started.indexOf(dep) < c.started.indexOf(id), `${dep} before ${id}`);
  }
});

test('scheduler: a synchronous failure stops the build (no keep-going), and a throwing task counts as failed', async () => {
  const order = ['a', 'b', 'c', 'd'];
  const deps: Record<string, string[]> = { a: [], b: [], c: ['a'], d: [] };
  const r = await trace(order, deps, (id) => (id === 'b' ? 'failed' : 'ok'), true, false);
  assert.deepEqual(r.results, { a: 'ok', b: 'failed', c: 'cancelled', d: 'cancelled' });
  assert.deepEqual(r.started, ['a', 'b'], 'nothing starts after the first failure');
  const thrown = await schedule(order, (id) => deps[id]!, (id): NodeResult => {
    if (id === 'a') throw new Error('sync throw');
    return 'ok';
  }, { keepGoing: true });
  assert.equal(thrown.get('a'), 'failed');
  assert.equal(thrown.get('c'), 'cancelled');
  assert.equal(thrown.get('d'), 'ok');
});

async function plan(p: { path(r: string): string }): Promise<Record<string, string>> {
  const { pipeline, root } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
  const ses = new Session(pipeline, { root });
  await prepare(ses, pipeline.stages);
  const as = { fresh: 'fresh', restore: 'restored', run: 'ran', 'run?': 'ran' } as const;
  return Object.fromEntries(inspect(ses, pipeline.stages).map((s) => [s.id, as[s.action]]));
}

/** An executor that fails the test if a body would run: a no-op build must not need one. */
const noExecutor: Executor = {
  name: 'none',
  run: (job) => Promise.reject(new Error(`no-op build tried to run ${job.stageId}`)),
  close: async () => {},
};

test('build: the synchronous freshness check decides what status predicts, including touched, edited, deleted and re-keyed stages', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    assert.deepEqual(actions(await buildProject(p, { executor: noExecutor })), { up: 'fresh', down: 'fresh', other: 'fresh' });

    // touched (same bytes, new mtime) → still fresh, after a re-hash; edited → put back from the store
    const o = p.path('artifacts/other/o.txt');
    utimesSync(o, new Date(), new Date(Date.now() + 5000));
    const d = p.path('artifacts/down/out.txt');
    chmodSync(d, 0o644);
    writeFileSync(d, 'EDITED');
    const want1 = await plan(p);
    assert.deepEqual(want1, { up: 'fresh', down: 'restored', other: 'fresh' });
    const r1 = await buildProject(p, { executor: noExecutor });
    assert.deepEqual(actions(r1), want1);
    assert.ok(r1.rec.warnings.some((w) => /artifacts\/down\/out\.txt was modified/.test(w)), r1.rec.warnings.join('\n'));
    assert.equal(p.read('artifacts/down/out.txt'), 'A!');
    // the touched file's new stat was recorded: the next check needs no re-hash
    const idx = JSON.parse(readFileSync(p.path('artifacts/.mecheval-index.json'), 'utf8')) as { stages: Record<string, { stats: Record<string, [number, number, number]> }> };
    assert.equal(idx.stages.other!.stats['o.txt']![1], statSync(o).mtimeMs);

    // deleted upstream file → restored; its dependent stays fresh (same content, same key)
    rmSync(p.path('artifacts/up/out.txt'));
    const want2 = await plan(p);
    assert.deepEqual(want2, { up: 'restored', down: 'fresh', other: 'fresh' });
    assert.deepEqual(actions(await buildProject(p, { executor: noExecutor })), want2);

    // a new key for `up` with the same output: it runs; early cutoff keeps `down` fresh
    p.config({ note: 'n2' });
    const want3 = await plan(p);
    assert.deepEqual(want3, { up: 'ran', down: 'ran', other: 'fresh' }, 'status cannot know the output before running');
    const r3 = await buildProject(p);
    assert.deepEqual(actions(r3), { up: 'ran', down: 'fresh', other: 'fresh' });
    assert.deepEqual(actions(await buildProject(p, { executor: noExecutor })), { up: 'fresh', down: 'fresh', other: 'fresh' });
  } finally {
    p.cleanup();
  }
});

test('session reload keeps an index only while its file holds the bytes that were read and nothing changed it here', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    const { pipeline, root } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
    const ses = new Session(pipeline, { root });
    const ws = ses.ws;
    const stat = ses.stat;
    const history = ses.history;
    ses.reload();
    assert.equal(ses.ws, ws, 'unchanged workspace index kept');
    assert.equal(ses.stat, stat, 'unchanged stat cache kept');
    assert.equal(ses.history, history, 'unchanged durations kept');

    // another writer rewrote the index (same length, other bytes): re-read
    const file = p.path('artifacts/.mecheval-index.json');
    const text = readFileSync(file, 'utf8');
    const other = text.replace(/"at":"(\d)/, (_m, c: string) => `"at":"${c === '1' ? '2' : '1'}`);
    assert.notEqual(other, text);
    writeFileSync(file, other);
    ses.reload();
    assert.notEqual(ses.ws, ws, 'changed file re-read');

    // changed in memory (e.g. a stat refreshed): re-read, as before this shortcut
    const ws2 = ses.ws;
    ws2.set('other', { ...ws2.get('other')!, at: 'x' });
    ses.reload();
    assert.notEqual(ses.ws, ws2);
    assert.notEqual(ses.ws.get('other')!.at, 'x');

    // a racy stat-cache entry must not survive a reload
    const st2 = ses.stat;
    const f = join(p.dir, 'fresh.mjs');
    writeFileSync(f, 'export const x = 1;\n');
    ses.graph.digest([f]);
    ses.reload();
    assert.notEqual(ses.stat, st2, 'racy entries force a re-read');
  } finally {
    p.cleanup();
  }
});

test('manifest digests: the hand-written text is canonical JSON of the non-volatile name → digest map', () => {
  const m: Manifest = {
    'z.txt': { type: 'file', digest: 'a'.repeat(64), size: 1 },
    'a "q"\\é': { type: 'file', digest: 'b'.repeat(64), size: 2 },
    metrics: { type: 'file', digest: 'c'.repeat(64), size: 3, volatile: true },
    dir: { type: 'dir', digest: 'd'.repeat(64), files: { 'x/y': { digest: 'e'.repeat(64), size: 4 } } },
    '10': { type: 'file', digest: 'f'.repeat(64), size: 5 },
  } as unknown as Manifest;
  const general = Object.fromEntries(Object.entries(m).filter(([, v]) => !v.volatile).map(([k, v]) => [k, v.digest]));
  assert.equal(manifestDigestText(m), canonicalJson(general));
  assert.equal(manifestDigest(m), digestJson(general));
  assert.equal(manifestDigestText({} as Manifest), '{}');
  assert.equal(manifestDigestText({ v: { type: 'file', digest: 'x', size: 0, volatile: true } } as unknown as Manifest), '{}');
});

test('hashBytes (one-shot) equals a streamed SHA-256 for strings and bytes', () => {
  for (const x of ['', 'abc', 'é☃𝄞\u0000', 'x'.repeat(100_000)]) assert.equal(hashBytes(x), createHash('sha256').update(x).digest('hex'));
  const b = Buffer.from([0, 1, 254, 255]);
  assert.equal(hashBytes(b), createHash('sha256').update(b).digest('hex'));
});

test('stage dirs: concatenation for valid ids equals path.join; anything else is joined', () => {
  const ws = new Workspace('/tmp/x/../ws/');
  for (const id of ['a', 'train/mamba-d64-lr1e-3', 'x/y=1,z+2@3/_w.v']) assert.equal(ws.stageDir(id), join('/tmp/ws', ...id.split('/')));
  assert.equal(ws.stageDir('a/../b'), join('/tmp/ws', 'b'));
  assert.equal(ws.stageDir('a//b'), join('/tmp/ws', 'a', 'b'));
});

test('declaring stages: the one-regex checks accept and reject exactly what the per-part checks do', async () => {
  const { checkStageId, checkOutputName, STAGE_ID } = await import('../../src/engine/task.ts');
  // the per-segment rule checkStageId had before, for comparison
  const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._=,+@-]*$/;
  const ids = ['a', 'a/b', 'train/mamba-d64-lr1e-3', 'x=1,y+2@z', '_a/9.b', '', '/a', 'a/', 'a//b', '../a', 'a/../b', 'a b', '.hidden', 'a/.b', 'é', 'a\nb', 'a/b\n'];
  for (const id of ids) assert.equal(STAGE_ID.test(id), id.split('/').every((s) => SEGMENT.test(s)), JSON.stringify(id));
  for (const id of ids) {
    const ok = id.length > 0 && id.split('/').every((s) => SEGMENT.test(s));
    assert.equal((() => { try { return checkStageId(id) === id; } catch { return false; } })(), ok, JSON.stringify(id));
  }
  const valid = ['out.txt', 'plots/', 'dir/sub/x.bin', '.hidden', 'a/.b', 'a-b_c=1,2+3@4', 'a..b', '...x', 'sp ace'];
  const invalid = ['', '../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a/.', 'a\\b', 'C:/x', 'c:x', 'x\0', '..', 'a/..', 'a//'];
  for (const n of valid) assert.equal(checkOutputName('s', n), n, JSON.stringify(n));
  for (const n of invalid) assert.throws(() => checkOutputName('s', n), /invalid output/, JSON.stringify(n));
  assert.throws(() => checkOutputName('s', 3), /invalid output/);
});

test('lock stamp: the digest a build takes from manifests equals the digest of the entries it wrote, so a no-op skips the lock file', async () => {
  const { builtDigest, readLockFile } = await import('../../src/engine/lockfile.ts');
  const p = fixture();
  try {
    await buildProject(p);
    await buildProject(p);
    const idx = JSON.parse(readFileSync(p.path('artifacts/.mecheval-index.json'), 'utf8')) as { lock?: { built: string; stat: string } };
    const lock = readLockFile(p.path('pipeline.lock.json'))!;
    // in the build's order: ids as declared, entries in topological order
    const { pipeline } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
    const ids = new Set(pipeline.byId.keys());
    const entries = new Map(pipeline.stages.map((s) => [s.id, lock.stages[s.id]!]));
    assert.equal(idx.lock?.built, builtDigest(ids, entries), 'stamp = digest of what the lock file records');
    // a different record (another key) gives another digest: the stamp is not vacuous
    const changed = new Map([...entries].map(([id, e]) => [id, id === 'up' ? { ...e, key: 'f'.repeat(64) } : e]));
    assert.notEqual(idx.lock?.built, builtDigest(ids, changed));
    // a lock file edited behind the engine's back is rewritten by the next no-op run
    const text = p.read('pipeline.lock.json');
    p.write('pipeline.lock.json', text.replace(/"key": "[0-9a-f]+"/, '"key": "edited"'));
    assert.deepEqual(actions(await buildProject(p, { executor: noExecutor })), { up: 'fresh', down: 'fresh', other: 'fresh' });
    assert.equal(p.read('pipeline.lock.json'), text);
  } finally {
    p.cleanup();
  }
});

test('scheduler: a dependency listed twice, and one outside the scheduled set, count as before', async () => {
  const order = ['a', 'b', 'c'];
  const deps: Record<string, string[]> = { a: [], b: ['a', 'a', 'elsewhere'], c: ['b'] };
  for (const sync of [true, false]) {
    const r = await trace(order, deps, () => 'ok', sync, false);
    assert.deepEqual(r.started, ['a', 'b', 'c']);
    assert.deepEqual(r.results, { a: 'ok', b: 'ok', c: 'ok' });
    const f = await trace(order, deps, (id) => (id === 'a' ? 'failed' : 'ok'), sync, true);
    assert.deepEqual(f.results, { a: 'failed', b: 'cancelled', c: 'cancelled' });
  }
});

test('declaring stages: stages without env, files, volatile outputs, inputs or params share frozen empties', async () => {
  const { stage, fn } = await import('../../src/engine/index.ts');
  const body = fn(new URL('file:///x/stages.mjs'), 'f');
  const a = stage({ id: 'a', outputs: ['o'], run: body });
  const b = stage({ id: 'b', outputs: ['o'], run: body, inputs: { up: a } });
  assert.equal(a.env, b.env);
  assert.equal(a.files, b.files);
  assert.equal(a.volatile, b.volatile);
  assert.equal(a.params, b.params);
  assert.equal(a.resources, b.resources);
  for (const v of [a.env, a.files, a.volatile, a.params, a.inputs, a.resources]) assert.ok(Object.isFrozen(v));
  assert.throws(() => ((a.params as Record<string, unknown>).x = 1), TypeError);
  assert.deepEqual(b.inputs, { up: 'a' });
  // declared values are still each stage's own frozen copies
  const c = stage({ id: 'c', outputs: ['o'], run: body, env: { k: 'v' }, files: ['f.json'], params: { p: 1 }, resources: { cpu: 2 } });
  assert.notEqual(c.env, a.env);
  assert.deepEqual([c.env, c.files, c.params, c.resources], [{ k: 'v' }, ['f.json'], { p: 1 }, { cpu: 2, gpu: 0 }]);
  assert.ok(Object.isFrozen(c.env) && Object.isFrozen(c.params) && Object.isFrozen(c.resources));
});

test('the index LocalExecutor loads the worker pool on first run: closing an unused one is a no-op', async () => {
  const { LocalExecutor } = await import('../../src/engine/index.ts');
  const e = new LocalExecutor();
  assert.equal(e.name, 'local');
  await e.close();
  await e.close();
  // running through it is exercised by conformance.test.ts (the real pool behind the same interface)
});
