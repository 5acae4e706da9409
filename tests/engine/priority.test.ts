import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remainingWork } from '../../src/engine/priority.ts';
import { Slots } from '../../src/engine/scheduler.ts';
import { stage, fn, type Stage } from '../../src/engine/index.ts';
import { ENGINE, project, buildProject } from './helpers.ts';

const body = fn(new URL('./helpers.ts', import.meta.url));
const mk = (id: string, inputs: Record<string, Stage> = {}, expectedSeconds?: number) =>
  stage({ id, inputs, outputs: ['o'], run: body, ...(expectedSeconds === undefined ? {} : { expectedSeconds }) });

test('remaining work = own estimate + the longest remaining work of any dependent (the critical path)', () => {
  // a(1) → b(10) → d(1);  a → c(2) → d;  e(5) alone
  const a = mk('a', {}, 1), b = mk('b', { a }, 10), c = mk('c', { a }, 2), d = mk('d', { b, c }, 1), e = mk('e', {}, 5);
  const w = remainingWork([a, b, c, d, e], (s) => (s.expectedSeconds ?? 0) * 1000);
  assert.deepEqual(Object.fromEntries(w), { a: 12000, b: 11000, c: 3000, d: 1000, e: 5000 });
  // a deep chain (no recursion to overflow)
  const chain: Stage[] = [mk('s0', {}, 1)];
  for (let i = 1; i < 20000; i++) chain.push(mk(`s${i}`, { u: chain[i - 1]! }, 1));
  assert.equal(remainingWork(chain, () => 1).get('s0'), 20000);
});

test('Slots: waiters get a freed slot highest priority first, first come among equals', async () => {
  const slots = new Slots({ jobs: 1, cpus: 1, gpus: 0 });
  const signal = new AbortController().signal;
  const held = await slots.acquire({ cpu: 1, gpu: 0 }, signal);
  const order: string[] = [];
  const wait = (name: string, p: number) => slots.acquire({ cpu: 1, gpu: 0 }, signal, p).then((g) => { order.push(name); g.release(); });
  const all = Promise.all([wait('low', 1), wait('high', 5), wait('mid', 3), wait('high-later', 5), wait('none', 0)]);
  held.release();
  await all;
  assert.deepEqual(order, ['high', 'high-later', 'mid', 'low', 'none']);
});

test('build: with one job, the stage heading the longest declared chain starts before short ones declared first', async () => {
  const p = project({
    'stages.mjs': `
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
export async function run(ctx) { await appendFile(new URL('./runs.log', import.meta.url), ctx.id + '\\n'); await writeFile(join(ctx.outDir, 'o'), ctx.id); }
`,
    'pipeline.ts': `
import { readFileSync } from 'node:fs';
import { stage, fn, pipeline } from '${ENGINE}';
const hints = JSON.parse(readFileSync(new URL('./hints.json', import.meta.url), 'utf8'));
const m = fn(new URL('./stages.mjs', import.meta.url), 'run');
const s = (id, inputs = {}) => stage({ id, inputs, outputs: ['o'], run: m, ...(hints[id] === undefined ? {} : { expectedSeconds: hints[id] }) });
const short1 = s('short1'), short2 = s('short2'), long = s('long'), tail = s('tail', { long });
export default pipeline({ name: 'prio', stages: [short1, short2, long, tail] });
`,
    'hints.json': JSON.stringify({ short1: 1, short2: 1, long: 60, tail: 30 }),
  });
  try {
    const r = await buildProject(p, { jobs: 1 });
    assert.ok(r.ok);
    assert.deepEqual(p.read('runs.log').trim().split('\n'), ['long', 'tail', 'short1', 'short2']);
    // Without hints (and a fresh store, so no measured history) declaration order decides: the control.
    const q = project({ 'stages.mjs': p.read('stages.mjs'), 'pipeline.ts': p.read('pipeline.ts'), 'hints.json': '{}' });
    try {
      await buildProject(q, { jobs: 1 });
      assert.deepEqual(q.read('runs.log').trim().split('\n'), ['short1', 'short2', 'long', 'tail']);
    } finally {
      q.cleanup();
    }
  } finally {
    p.cleanup();
  }
});

test('expectedSeconds is a hint, not part of the key; a bad value is a clear declaration error', () => {
  assert.throws(() => mk('x', {}, -1), /stage 'x': expectedSeconds must be a finite number ≥ 0, got -1/);
  assert.throws(() => mk('x', {}, Number.NaN), /expectedSeconds must be a finite number/);
});
