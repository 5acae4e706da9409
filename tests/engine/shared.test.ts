import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliSpawn, collect, waitFor, project } from './helpers.ts';
import { ClaimingExecutor, claimPath } from '../../src/engine/shared.ts';
import type { Executor, Job } from '../../src/engine/executor.ts';
import { twoEngines, twinProject, testDir, countLines, checkStore, writeFileIn } from './shared-fixture.ts';
import { rmTree } from '../../src/engine/fsutil.ts';

test('two engines on one shared store (separate working dirs) build overlapping pipelines once, without corruption', async () => {
  const { a, b, t, store, ra, rb } = await twoEngines('local');
  try {
    assert.equal(ra.code, 0, ra.stderr + ra.stdout);
    assert.equal(rb.code, 0, rb.stderr + rb.stdout);
    assert.equal(countLines(t, 'shared.count'), 1, `the shared stage ran once, not once per engine\nA: ${ra.stdout}${ra.stderr}\nB: ${rb.stdout}${rb.stderr}`);
    assert.equal(countLines(t, 'fnstage.count'), 1, 'the shared function stage ran once');
    assert.equal(countLines(t, 'mine-alpha.count'), 1);
    assert.equal(countLines(t, 'mine-beta.count'), 1);
    assert.match(rb.stdout + rb.stderr, /reused the result another engine committed/);
    for (const p of [a, b]) {
      assert.equal(p.read('artifacts/shared/s.txt'), 'shared-bytes');
      assert.equal(p.read('artifacts/shared/d/e/n.txt').split('\n')[49], '50');
    }
    assert.equal(a.read('pipeline.lock.json').includes('"shared"'), true);
    const la = JSON.parse(a.read('pipeline.lock.json')).stages;
    const lb = JSON.parse(b.read('pipeline.lock.json')).stages;
    assert.deepEqual(la.shared, lb.shared, 'same key and output digests in both projects');
    assert.notEqual(la.mine.key, lb.mine.key);
    const s = checkStore(store);
    assert.deepEqual(s.problems, []);
    assert.equal(s.runs, 4, 'shared, fnstage, mine(alpha), mine(beta): one run entry each');
    assert.ok(!existsSync(join(store, 'LOCK')), 'the store lock was only held to register');
    // both are fresh now, and a third build restores without running anything
    const again = await cli(b.dir, ['run'], { MECHEVAL_TEST_DIR: t });
    assert.match(again.stdout, /0 ran, 0 restored, 3 fresh/);
  } finally {
    for (const d of [a.dir, b.dir, t, store]) rmTree(d);
  }
});

test('gc refuses while another engine is live on the store, and keeps what that run produced', async () => {
  const t = testDir();
  const a = twinProject('alpha', { sharedStore: true });
  const b = twinProject('beta', { sharedStore: true });
  try {
    const env = { MECHEVAL_TEST_DIR: t };
    writeFileIn(t, 'gate');
    const ea = collect(cliSpawn(a.dir, ['run'], env));
    await waitFor(() => existsSync(join(t, 'shared.started')), 60_000);
    // b's gc on a's store: a is live, so nothing may be deleted
    const g1 = await cli(b.dir, ['gc', '--no-wait', '--cache', a.path('cache')]);
    assert.equal(g1.code, 1, g1.stdout + g1.stderr);
    assert.match(g1.stderr, /1 engine\(s\) are using the store/);
    writeFileIn(t, 'release');
    assert.equal((await ea).code, 0);
    const g2 = await cli(a.dir, ['gc']);
    assert.equal(g2.code, 0, g2.stderr);
    assert.match((await cli(a.dir, ['run'], env)).stdout, /0 ran, 0 restored, 3 fresh/);
    assert.deepEqual(checkStore(a.path('cache')).problems, []);
  } finally {
    for (const d of [a.dir, b.dir, t]) rmTree(d);
  }
});

test('claims: a key is committed before its claim is released, so a waiting engine never runs it again (issue 9)', async () => {
  const p = project();
  try {
    const cache = p.path('cache');
    let calls = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    // like LocalExecutor for a command stage: writes the outputs and leaves the commit to the engine
    const inner = (wait: boolean): Executor => ({
      name: 'fake',
      async run(job: Job) {
        calls++;
        mkdirSync(job.outDir, { recursive: true });
        writeFileSync(join(job.outDir, 'o.txt'), 'bytes');
        if (wait) await gate;
      },
      close: async () => {},
    });
    const job = (n: string): Job => ({
      stageId: 's', key: 'ab'.repeat(32), body: { kind: 'function', module: '/m.js', export: 'f' }, params: {}, inputs: {}, upstream: {},
      outDir: p.path(`tmp-${n}`), scratchDir: p.path('scratch'), gpus: [], cwd: p.dir, timeoutMs: null,
      commit: { objectsDir: join(cache, 'objects'), outputs: ['o.txt'], runPath: join(cache, 'runs/ab', `${'ab'.repeat(32)}.json`), recipe: {} as never, artifactDir: p.path(`artifacts-${n}/s`) },
    });
    const hooks = { progress() {}, log() {} };
    const first = new ClaimingExecutor(inner(true), cache, 20).run(job('a'), hooks, new AbortController().signal);
    await waitFor(() => calls === 1);
    const logs: string[] = [];
    const second = new ClaimingExecutor(inner(false), cache, 20).run(job('b'), { progress() {}, log: (l) => void logs.push(l) }, new AbortController().signal);
    await waitFor(() => logs.some((l) => /waiting for pid/.test(l)));
    open();
    const [r1, r2] = await Promise.all([first, second]);
    assert.equal(calls, 1, 'the second engine reused the first one\'s result');
    assert.deepEqual(r1 && r1.manifest, r2 && r2.manifest);
    assert.equal(readFileSync(p.path('artifacts-b/s/o.txt'), 'utf8'), 'bytes');
    assert.ok(!existsSync(claimPath(cache, 'ab'.repeat(32))), 'claim released');
  } finally {
    p.cleanup();
  }
});
