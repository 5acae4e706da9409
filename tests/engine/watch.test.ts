/**
 * Watch mode (src/engine/watch.ts, `pipeline watch`): what it reacts to, what it rebuilds, how it
 * treats a change that lands while stages run, and that it survives broken pipelines and Ctrl-C.
 * Nothing here asserts a duration: tests wait for events (generous timeouts); "nothing happened"
 * is checked over a quiet window and always paired with a positive control that does react.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { watch, type WatchEvent, type Watcher } from '../../src/engine/watch.ts';
import { Store } from '../../src/engine/store.ts';
import { ENGINE, cli, cliSpawn, collect, project, waitFor, type Project } from './helpers.ts';

type CycleEnd = Extract<WatchEvent, { type: 'cycleEnd' }>;

/** a → a2, and b. `a` declares params/a.json as a file it reads; config.json feeds params and extras. */
function watchProject(cfg: Record<string, unknown> = { a: 'a1', b: 'b1' }): Project & { config(c: Record<string, unknown>): void; runs(): string[] } {
  const p = project({
    'config.json': JSON.stringify(cfg),
    'params/a.json': '{ "scale": 1 }',
    'schemas/b.json': JSON.stringify({ $id: 'https://example.test/b.json', type: 'object', properties: { v: { type: 'string' } }, required: ['v'], additionalProperties: false }),
    'stages.mjs': `
import { writeFile, readFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
const here = (f) => new URL('./' + f, import.meta.url);
const note = (id) => appendFile(here('runs.log'), id + '\\n');
export async function a(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'out.txt'), ctx.params.v + ' ' + await readFile(here('params/a.json'), 'utf8')); }
export async function copy(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'out.txt'), (await readFile(join(ctx.inputs.src, 'out.txt'), 'utf8')).toUpperCase()); }
export async function b(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'out.txt'), String(ctx.params.v)); }
// Blocks until <id>.release exists; announces itself in <id>.started; honours cancellation.
export async function slow(ctx) {
  await note(ctx.id);
  await writeFile(join(ctx.outDir, 'out.txt'), 'partial');
  await writeFile(here(ctx.id + '.started'), String(process.pid));
  while (!existsSync(here(ctx.id + '.release'))) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    await new Promise((r) => setTimeout(r, 10));
  }
  await writeFile(join(ctx.outDir, 'out.txt'), 'done ' + ctx.params.v);
}
`,
    'pipeline.ts': `
import { readFileSync } from 'node:fs';
import { stage, fn, pipeline } from '${ENGINE}';
export default () => {
  const cfg = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
  const m = new URL('./stages.mjs', import.meta.url);
  // A pipeline may peek at its own outputs while loading: watch mode must still never watch them.
  if (cfg.peek) for (const f of ['pipeline.lock.json', 'artifacts/b/out.txt']) { try { readFileSync(new URL('./' + f, import.meta.url)); } catch {} }
  const str = { type: 'object', properties: { v: { type: 'string' } }, required: ['v'], additionalProperties: false };
  const a = stage({ id: 'a', params: { v: cfg.a }, schema: str, files: ['params/a.json'], outputs: ['out.txt'], run: fn(m, 'a') });
  const a2 = stage({ id: 'a2', inputs: { src: a }, outputs: ['out.txt'], run: fn(m, 'copy') });
  const b = stage({ id: 'b', params: { v: cfg.b }, schema: 'schemas/b.json', outputs: ['out.txt'], run: fn(m, 'b') });
  const extra = [];
  for (const [id, cost] of [['cheap', 'cheap'], ['pricey', 'expensive']]) {
    if ((cfg.extra ?? []).includes(id)) extra.push(stage({ id, cost, params: { v: String(cfg[id] ?? '') }, schema: { type: 'object' }, outputs: ['out.txt'], run: fn(m, 'slow') }));
  }
  return pipeline({ stages: [a, a2, b, ...extra] });
};
`,
  });
  return Object.assign(p, {
    config: (c: Record<string, unknown>) => p.write('config.json', JSON.stringify(c)),
    runs: () => (p.exists('runs.log') ? p.read('runs.log').split('\n').filter(Boolean) : []),
  });
}

interface Session {
  w: Watcher;
  events: WatchEvent[];
  ends(): CycleEnd[];
  starts(): Extract<WatchEvent, { type: 'cycleStart' }>[];
  /** Wait for the end of cycle n. */
  cycle(n: number): Promise<CycleEnd>;
}

async function startWatch(p: Project, targets: string[] = []): Promise<Session> {
  const events: WatchEvent[] = [];
  const w = await watch({ pipelineFile: p.path('pipeline.ts'), targets, jobs: 2, onEvent: (e) => void events.push(e) });
  const ends = () => events.filter((e): e is CycleEnd => e.type === 'cycleEnd');
  return {
    w,
    events,
    ends,
    starts: () => events.filter((e): e is Extract<WatchEvent, { type: 'cycleStart' }> => e.type === 'cycleStart'),
    async cycle(n) {
      await waitFor(() => ends().some((e) => e.cycle === n), 30_000);
      return ends().find((e) => e.cycle === n)!;
    },
  };
}

const acts = (e: CycleEnd): Record<string, string> => Object.fromEntries(e.outcomes.filter((o) => o.action !== 'fresh').map((o) => [o.stage, o.action]));
const quiet = (ms = 1500) => new Promise((r) => setTimeout(r, ms));

test('editing a param file reruns only its dependents; a config edit reruns only the stage it feeds', async () => {
  const p = watchProject();
  const s = await startWatch(p);
  try {
    const c1 = await s.cycle(1);
    assert.deepEqual(acts(c1), { a: 'ran', a2: 'ran', b: 'ran' });
    assert.ok(s.w.files().includes(p.path('params/a.json')), 'a declared file is watched');
    assert.ok(s.w.files().includes(p.path('config.json')), 'a file the pipeline read while loading is watched');
    assert.ok(!s.w.files().some((f) => f.includes('/cache/') || f.includes('/artifacts/')), s.w.files().join('\n'));

    p.write('params/a.json', '{ "scale": 2 }');
    const c2 = await s.cycle(2);
    assert.deepEqual(s.starts()[1]!.changed, ['params/a.json']);
    assert.deepEqual(acts(c2), { a: 'ran', a2: 'ran' });
    assert.equal(c2.counts.fresh, 1);
    assert.deepEqual(c2.stale.map((x) => x.id), ['a', 'a2']);
    assert.ok(c2.stale[0]!.causes.some((c) => c.kind === 'code' && c.detail.includes('params/a.json')), JSON.stringify(c2.stale));
    assert.equal(p.read('artifacts/a2/out.txt'), 'A1 { "SCALE": 2 }');

    p.config({ a: 'a1', b: 'b2' });
    const c3 = await s.cycle(3);
    assert.deepEqual(acts(c3), { b: 'ran' });
    assert.deepEqual(c3.stale.map((x) => [x.id, x.causes.map((c) => `${c.kind}: ${c.detail}`)]), [['b', ['params: v: b1 → b2']]]);
    assert.deepEqual([...p.runs()].sort(), ['a', 'a', 'a2', 'a2', 'b', 'b']);
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test('50 rapid edits cause at most two builds, end on the last value, and do not loop', async () => {
  const p = watchProject();
  const s = await startWatch(p);
  try {
    await s.cycle(1);
    for (let i = 0; i < 50; i++) {
      writeFileSync(p.path('config.json'), JSON.stringify({ a: 'a1', b: `b-${i}` }));
      await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => p.exists('artifacts/b/out.txt') && p.read('artifacts/b/out.txt') === 'b-49' && s.ends().length === s.starts().length, 30_000);
    await quiet();
    const builds = s.starts().length - 1;
    assert.ok(builds >= 1 && builds <= 2, `${builds} builds after the burst: ${JSON.stringify(s.starts())}`);
    assert.equal(s.ends().length, s.starts().length, 'no cycle started after the last one ended (no loop)');
    assert.ok(p.runs().filter((r) => r === 'b').length <= 3, p.runs().join(','));
    assert.equal(p.runs().filter((r) => r === 'a').length, 1, 'a was not rebuilt');
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test("the engine's own writes and files under artifacts/ and cache/ trigger nothing, even when the pipeline reads them", async () => {
  const p = watchProject({ a: 'a1', b: 'b1', peek: true });
  const s = await startWatch(p);
  try {
    await s.cycle(1);
    await quiet(); // the build's own writes (store, artifacts, lock file, stat cache) land in this window
    assert.equal(s.starts().length, 1, 'no cycle from the first build writing its outputs');
    p.write('artifacts/junk.txt', 'x');
    p.write('artifacts/new-stage/out.txt', 'x');
    p.write('cache/junk.txt', 'x');
    p.write('.mecheval-scratch/junk.txt', 'x');
    p.write('pipeline.lock.json', p.read('pipeline.lock.json') + ' ');
    p.write('unrelated.txt', 'x');
    await quiet();
    assert.equal(s.starts().length, 1, JSON.stringify(s.starts()));
    // positive control: the watcher is alive and reacts to a watched file
    p.config({ a: 'a1', b: 'b2', peek: true });
    const c2 = await s.cycle(2);
    assert.deepEqual(s.starts()[1]!.changed, ['config.json']);
    assert.deepEqual(acts(c2), { b: 'ran' });
    // cycle 2's load read artifacts/b/out.txt and the lock file, and its build rewrote both
    const files = s.w.files();
    assert.ok(!files.includes(p.path('artifacts/b/out.txt')) && !files.includes(p.path('pipeline.lock.json')), files.join('\n'));
    await quiet();
    assert.equal(s.starts().length, 2, `no loop: ${JSON.stringify(s.starts())}`);
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test('a broken config or pipeline is reported and watching continues; the next good edit builds', async () => {
  const p = watchProject();
  p.write('config.json', '{ "a": "a1", "b": '); // broken from the start: still watched (the load read it)
  const s = await startWatch(p);
  try {
    const c1 = await s.cycle(1);
    assert.ok(c1.error, 'cycle 1 reports the error');
    assert.match(String((c1.error as Error).message), /pipeline/);
    assert.equal(c1.outcomes.length, 0);
    assert.ok(s.w.files().includes(p.path('config.json')));

    p.config({ a: 'a1', b: 'b1' });
    const c2 = await s.cycle(2);
    assert.equal(c2.error, undefined);
    assert.deepEqual(acts(c2), { a: 'ran', a2: 'ran', b: 'ran' });

    p.config({ a: 'a1', b: 7 }); // invalid params: the schema says string
    const c3 = await s.cycle(3);
    assert.equal((c3.error as { code?: string }).code, 'params_invalid');

    p.config({ a: 'a1', b: 'b3' });
    const c4 = await s.cycle(4);
    assert.deepEqual(acts(c4), { b: 'ran' });

    // an edited schema file (same $id) is re-read and re-compiled in the same process
    const schema = JSON.parse(p.read('schemas/b.json')) as { properties: { v: Record<string, unknown> } };
    schema.properties.v.maxLength = 1; // b3 is longer
    p.write('schemas/b.json', JSON.stringify(schema));
    const c4b = await s.cycle(5);
    assert.equal((c4b.error as { code?: string }).code, 'params_invalid', String(c4b.error));
    schema.properties.v.maxLength = 20;
    p.write('schemas/b.json', JSON.stringify(schema));
    const c4c = await s.cycle(6);
    assert.equal(c4c.error, undefined, String(c4c.error));

    const good = p.read('pipeline.ts');
    p.write('pipeline.ts', good.replace('export default', 'export default ((')); // syntax error
    const c5 = await s.cycle(7);
    assert.equal((c5.error as { code?: string }).code, 'pipeline_load');
    p.write('pipeline.ts', good);
    const c6 = await s.cycle(8);
    assert.equal(c6.error, undefined);
    assert.deepEqual(acts(c6), {});
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test('a change while a cheap stage runs cancels it and restarts it in the next cycle', async () => {
  const p = watchProject({ a: 'a1', b: 'b1', extra: ['cheap'], cheap: 'v1' });
  const s = await startWatch(p, ['cheap']);
  try {
    await waitFor(() => p.exists('cheap.started'));
    rmSync(p.path('cheap.started'));
    p.config({ a: 'a1', b: 'b1', extra: ['cheap'], cheap: 'v2' });
    const c1 = await s.cycle(1);
    assert.deepEqual(acts(c1), { cheap: 'cancelled' });
    const busy = s.events.find((e) => e.type === 'busy') as Extract<WatchEvent, { type: 'busy' }>;
    assert.deepEqual(busy.cancelled, ['cheap']);
    await waitFor(() => p.exists('cheap.started')); // restarted by cycle 2
    p.write('cheap.release', '');
    const c2 = await s.cycle(2);
    assert.deepEqual(acts(c2), { cheap: 'ran' });
    assert.equal(p.read('artifacts/cheap/out.txt'), 'done v2');
    assert.deepEqual(readdirSync(p.path('cache/tmp')), [], 'the cancelled run left nothing behind');
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test("a change that cannot touch a running cheap stage's key lets it finish", async () => {
  const p = watchProject({ a: 'a1', b: 'b1', extra: ['cheap'], cheap: 'v1' });
  const s = await startWatch(p, ['cheap', 'a']);
  try {
    await waitFor(() => p.exists('cheap.started') && p.exists('artifacts/a/out.txt'));
    p.write('params/a.json', '{ "scale": 9 }'); // a's own file: cheap's key cannot change
    await waitFor(() => s.events.some((e) => e.type === 'busy'));
    const busy = s.events.find((e) => e.type === 'busy') as Extract<WatchEvent, { type: 'busy' }>;
    assert.deepEqual(busy, { type: 'busy', cycle: 1, cancelled: [], finishing: ['cheap'] });
    p.write('cheap.release', '');
    const c1 = await s.cycle(1);
    assert.deepEqual(acts(c1), { a: 'ran', cheap: 'ran' });
    const c2 = await s.cycle(2);
    assert.deepEqual(acts(c2), { a: 'ran' });
    assert.equal(p.runs().filter((r) => r === 'cheap').length, 1);
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test('a change while an expensive stage runs lets it finish and queues the next cycle', async () => {
  const p = watchProject({ a: 'a1', b: 'b1', extra: ['pricey'], pricey: 'v1' });
  const s = await startWatch(p, ['pricey', 'b']);
  try {
    await waitFor(() => p.exists('pricey.started'));
    p.config({ a: 'a1', b: 'b2', extra: ['pricey'], pricey: 'v1' });
    await waitFor(() => s.events.some((e) => e.type === 'busy'));
    const busy = s.events.find((e) => e.type === 'busy') as Extract<WatchEvent, { type: 'busy' }>;
    assert.deepEqual(busy.finishing, ['pricey']);
    assert.equal(s.ends().length, 0, 'cycle 1 waits for the expensive stage');
    p.write('pricey.release', '');
    const c1 = await s.cycle(1);
    assert.equal(acts(c1).pricey, 'ran');
    assert.ok(c1.superseded);
    const c2 = await s.cycle(2);
    assert.deepEqual(acts(c2), { b: 'ran' }, 'the queued cycle rebuilds what the change made stale, not the finished stage');
    assert.equal(p.read('artifacts/pricey/out.txt'), 'done v1');
  } finally {
    await s.w.close();
    p.cleanup();
  }
});

test('Ctrl-C on `watch --json` during a stage exits 130 and leaves the store consistent; the next run works', async () => {
  const p = watchProject({ a: 'a1', b: 'b1', extra: ['pricey'], pricey: 'v1' });
  try {
    const child = cliSpawn(p.dir, ['watch', 'pricey', '--json']);
    const res = collect(child);
    await waitFor(() => p.exists('pricey.started'), 30_000);
    child.kill('SIGINT');
    const r = await res;
    assert.equal(r.code, 130, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { event: 'cycle-start', cycle: 1, changed: [] });
    assert.ok(lines.some((l) => l.stage === 'pricey' && l.action === 'cancelled'), r.stdout);
    assert.ok(lines.some((l) => l.event === 'cycle-end' && l.cancelled === 1), r.stdout);
    assert.ok(!existsSync(p.path('artifacts/pricey')), 'no partial artifacts');
    assert.deepEqual(readdirSync(p.path('cache/tmp')), [], 'no temp leftovers');
    const store = new Store(p.path('cache'));
    assert.ok(store.listRuns().every((k) => store.readRun(k)!.stage !== 'pricey'), 'nothing cached for the cancelled stage');
    p.write('pricey.release', '');
    const again = await cli(p.dir, ['run', 'pricey']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(p.read('artifacts/pricey/out.txt'), 'done v1');
  } finally {
    p.cleanup();
  }
});

test('without a TTY `watch` prints plain lines: a summary per cycle with root causes, then keeps watching', async () => {
  const p = watchProject();
  try {
    const child = cliSpawn(p.dir, ['watch', 'a2']);
    const res = collect(child);
    await waitFor(() => /watching \d+ files/.test(res.live.stdout), 30_000);
    p.write('params/a.json', '{ "scale": 5 }');
    await waitFor(() => /^cycle 2: \d+ ran/m.test(res.live.stdout), 30_000);
    child.kill('SIGINT');
    const r = await res;
    assert.equal(r.code, 130, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /\x1b\[/, 'no terminal escapes');
    assert.match(r.stdout, /^cycle 1: 2 ran, 0 restored, 0 failed, 0 cancelled, 0 fresh in /m);
    assert.match(r.stdout, /^cycle 2: params\/a\.json changed$/m);
    assert.match(r.stdout, /^cycle 2: 2 ran, 0 restored, 0 failed, 0 cancelled, 0 fresh in /m);
    assert.match(r.stdout, /^ {2}code: params\/a\.json changed {2}\(a\)$/m);
    assert.match(r.stderr, /✓ ran +a2 /);
  } finally {
    p.cleanup();
  }
});
