import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINE, project, buildProject, actions } from './helpers.ts';
import { readLockFile, stage, fn } from '../../src/engine/index.ts';

/** up writes data.txt (a function of `value`) and timing.txt (different every run, declared volatile). */
function volatileProject() {
  return project({
    'config.json': JSON.stringify({ value: 'a', note: 1 }),
    'stages.mjs': `
import { writeFile, readFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
export async function up(ctx) {
  await appendFile(new URL('./runs.log', import.meta.url), ctx.id + '\\n');
  await writeFile(join(ctx.outDir, 'data.txt'), ctx.params.value);
  await writeFile(join(ctx.outDir, 'timing.txt'), String(process.hrtime.bigint()));
}
export async function down(ctx) {
  await appendFile(new URL('./runs.log', import.meta.url), ctx.id + '\\n');
  const t = await readFile(join(ctx.inputs.src, 'data.txt'), 'utf8');
  await writeFile(join(ctx.outDir, 'out.json'), JSON.stringify({ t, upstream: ctx.upstream }));
}
`,
    'pipeline.ts': `
import { readFileSync } from 'node:fs';
import { stage, fn, pipeline } from '${ENGINE}';
const cfg = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
const m = new URL('./stages.mjs', import.meta.url);
const up = stage({ id: 'up', params: cfg, schema: { type: 'object' }, outputs: ['data.txt', 'timing.txt'], volatile: ['timing.txt'], run: fn(m, 'up') });
const down = stage({ id: 'down', inputs: { src: up }, outputs: ['out.json'], run: fn(m, 'down') });
export default pipeline({ stages: [up, down] });
`,
  });
}

test('volatile outputs: stored and restored, but no early-cutoff break, no lock-file digest', async () => {
  const p = volatileProject();
  try {
    const r1 = await buildProject(p);
    assert.deepEqual(actions(r1), { up: 'ran', down: 'ran' });
    const t1 = p.read('artifacts/up/timing.txt');
    p.write('config.json', JSON.stringify({ value: 'a', note: 2 })); // new key for up, same data.txt
    const r2 = await buildProject(p);
    assert.notEqual(p.read('artifacts/up/timing.txt'), t1, 'the volatile output was rewritten and restored into artifacts/');
    assert.deepEqual(actions(r2), { up: 'ran', down: 'fresh' }, 'a changed volatile output does not rerun dependents');
    assert.equal(r2.outcomes.find((o) => o.stage === 'up')!.change, 'recomputedSame');
    const lock = readLockFile(p.path('pipeline.lock.json'))!;
    assert.deepEqual(Object.keys(lock.stages.up!.outputs), ['data.txt']);
    p.write('config.json', JSON.stringify({ value: 'b', note: 2 }));
    assert.deepEqual(actions(await buildProject(p)), { up: 'ran', down: 'ran' }, 'a changed non-volatile output still does');
  } finally {
    p.cleanup();
  }
});

test('a stage sees the id, key and wall time of each upstream (provenance)', async () => {
  const p = volatileProject();
  try {
    const r = await buildProject(p);
    const out = JSON.parse(p.read('artifacts/down/out.json')) as { upstream: Record<string, { id: string; key: string; ms: number | null }> };
    assert.equal(out.upstream.src!.id, 'up');
    assert.equal(out.upstream.src!.key, r.outcomes.find((o) => o.stage === 'up')!.key);
    assert.equal(typeof out.upstream.src!.ms, 'number');
  } finally {
    p.cleanup();
  }
});

test('volatile must name declared outputs', () => {
  assert.throws(() => stage({ id: 'x', outputs: ['a'], volatile: ['b'], run: fn('m.mjs', 'f') }), /volatile output "b" is not among its outputs/);
});
