/**
 * The Slurm executor against a real single-node cluster (scripts/slurm-cluster.sh; `.ci/run`
 * starts it). Every test skips, with the reason, when no cluster can be started here.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, cliSpawn, collect, waitFor, buildProject, actions, project, ENGINE } from './helpers.ts';
import { twoEngines, twinProject, testDir, countLines, checkStore, writeFileIn, slurmCluster, jobIds, cancelJobs } from './shared-fixture.ts';
import { SlurmExecutor } from '../../src/engine/slurm.ts';
import { collectSlurmDirs } from '../../src/engine/shared.ts';
import { rmTree } from '../../src/engine/fsutil.ts';
import { loadPipeline } from '../../src/engine/index.ts';

const cluster = slurmCluster();
after(() => cluster.stop());
const skip = cluster.skip ? `Slurm unavailable: ${cluster.skip}` : false;
if (skip) console.log(`# ${skip}`);

const SLURM = { executor: 'slurm', slurm: { pollMs: 250 } };

function jobState(id: string): string {
  const r = spawnSync('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' });
  return /JobState=(\S+)/.exec(r.stdout)?.[1] ?? 'PURGED';
}

test('slurm: a pipeline run through Slurm has the same keys and output digests as a local run', { skip }, async () => {
  const t = testDir();
  const local = twinProject('alpha');
  const remote = twinProject('alpha', SLURM);
  try {
    const env = { MECHEVAL_TEST_DIR: t };
    const rl = await cli(local.dir, ['run'], env);
    assert.equal(rl.code, 0, rl.stderr);
    const rr = await cli(remote.dir, ['run', '-v'], env);
    assert.equal(rr.code, 0, rr.stderr + rr.stdout);
    assert.match(rr.stdout + rr.stderr, /submitted as Slurm job \d+/);
    assert.equal(jobIds(remote.path('cache')).length, 3, 'one job per stage');
    assert.deepEqual(JSON.parse(remote.read('pipeline.lock.json')), JSON.parse(local.read('pipeline.lock.json')));
    assert.equal(remote.read('artifacts/fnstage/f.json'), local.read('artifacts/fnstage/f.json'));
    assert.deepEqual(checkStore(remote.path('cache')).problems, []);
    // the run cache written through Slurm serves a local no-op
    const again = await cli(remote.dir, ['run', '--executor', 'local'], env);
    assert.match(again.stdout, /0 ran, 0 restored, 3 fresh/);
    // committed keys need their job dirs no more; gc removes them and keeps the results
    const g = await cli(remote.dir, ['gc']);
    assert.match(g.stdout, /deleted 3 finished Slurm job dir\(s\)/, g.stdout + g.stderr);
    assert.deepEqual(jobIds(remote.path('cache')), []);
    assert.match((await cli(remote.dir, ['run'], env)).stdout, /0 ran, 0 restored, 3 fresh/);
  } finally {
    cancelJobs(remote.path('cache'));
    for (const d of [local.dir, remote.dir, t]) rmTree(d);
  }
});

test('slurm: a failing job fails its stage, stops its dependents, and nothing of it is cached', { skip }, async () => {
  const t = testDir();
  const p = project({
    'pipeline.ts': `
import { stage, cmd, sh, pipeline } from '${ENGINE}';
const bad = stage({ id: 'bad', outputs: ['o.txt'], run: cmd(({ outDir }) => sh\`echo partial > \${outDir}/o.txt; echo 'deliberate failure' >&2; exit 3\`) });
const after = stage({ id: 'after', inputs: { bad }, outputs: ['a.txt'], run: cmd(({ outDir }) => sh\`echo ran >> "$MECHEVAL_TEST_DIR/after.count"; touch \${outDir}/a.txt\`) });
export default pipeline({ stages: [bad, after] });
`,
  });
  const { pipeline } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
  const ex = new SlurmExecutor({ cacheDir: p.path('cache'), settings: { pollMs: 250 }, resourcesOf: (id) => pipeline.byId.get(id)!.resources });
  process.env.MECHEVAL_TEST_DIR = t;
  try {
    const r = await buildProject(p, { executor: ex, sharedStore: true });
    assert.equal(r.ok, false);
    assert.deepEqual(actions(r), { bad: 'failed', after: 'cancelled' });
    const o = r.outcomes.find((x) => x.stage === 'bad')!;
    const err = o.error as { code: string; message: string; fields: Record<string, string> };
    assert.equal(err.code, 'stage_failed');
    assert.match(err.message, /command exited with code 3/);
    assert.match(err.fields['slurm job'] ?? '', /^\d+$/);
    assert.match(err.fields.log ?? '', /deliberate failure/);
    assert.equal(countLines(t, 'after.count'), 0, 'the dependent never ran');
    assert.equal(r.session.store.readRun(o.key!), undefined, 'no run entry for the failed key');
    assert.ok(!p.exists('artifacts/bad'));
    assert.equal(collectSlurmDirs(p.path('cache'), false), 1, "a failed key's job dir is collectable");
  } finally {
    delete process.env.MECHEVAL_TEST_DIR;
    await ex.close();
    for (const d of [p.dir, t]) rmTree(d);
  }
});

test('slurm: SIGINT cancels the submitted jobs (scancel); nothing is cached; exit 130', { skip }, async () => {
  const t = testDir();
  const p = twinProject('alpha', SLURM);
  try {
    writeFileIn(t, 'gate'); // never released: only a cancel ends the job
    const child = cliSpawn(p.dir, ['run'], { MECHEVAL_TEST_DIR: t });
    const res = collect(child);
    await waitFor(() => existsSync(join(t, 'shared.started')), 60_000);
    const [id] = jobIds(p.path('cache'));
    assert.ok(id);
    assert.equal(jobState(id!), 'RUNNING');
    child.kill('SIGINT');
    const r = await res;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stdout, /0 ran, .* cancelled/);
    const st = jobState(id!);
    assert.ok(st === 'CANCELLED' || st === 'PURGED', `job ${id} is ${st} after the engine exited`);
    assert.ok(!existsSync(p.path('cache/runs')) || readdirSync(p.path('cache/runs')).length === 0, 'nothing cached');
  } finally {
    cancelJobs(p.path('cache'));
    for (const d of [p.dir, t]) rmTree(d);
  }
});

test('slurm: a job cancelled outside the engine fails its stage (not cached)', { skip }, async () => {
  const t = testDir();
  const p = twinProject('alpha', SLURM);
  try {
    writeFileIn(t, 'gate');
    const res = collect(cliSpawn(p.dir, ['run'], { MECHEVAL_TEST_DIR: t }));
    await waitFor(() => existsSync(join(t, 'shared.started')), 60_000);
    const [id] = jobIds(p.path('cache'));
    spawnSync('scancel', [id!]);
    const r = await res;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`Slurm job ${id} was cancelled outside this engine`));
    assert.match(r.stdout, /0 ran, 0 restored, 0 fresh, 1 failed/);
  } finally {
    cancelJobs(p.path('cache'));
    for (const d of [p.dir, t]) rmTree(d);
  }
});

test('slurm: a restarted engine re-attaches to the running job instead of submitting another', { skip }, async () => {
  const t = testDir();
  const p = twinProject('alpha', SLURM);
  try {
    const env = { MECHEVAL_TEST_DIR: t };
    writeFileIn(t, 'gate');
    const first = cliSpawn(p.dir, ['run'], env);
    const r1 = collect(first);
    await waitFor(() => existsSync(join(t, 'shared.started')), 60_000);
    const [id] = jobIds(p.path('cache'));
    first.kill('SIGKILL'); // the engine dies without cancelling anything
    await r1;
    assert.equal(jobState(id!), 'RUNNING');
    const second = collect(cliSpawn(p.dir, ['run', '-v'], env));
    await waitFor(() => (second.live.stdout + second.live.stderr).includes(`re-attached to Slurm job ${id}`), 60_000);
    writeFileIn(t, 'release');
    const r2 = await second;
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    assert.equal(countLines(t, 'shared.count'), 1, 'the stage body ran once across both engines');
    assert.equal(p.read('artifacts/shared/s.txt'), 'shared-bytes');
    assert.deepEqual(checkStore(p.path('cache')).problems, []);
  } finally {
    cancelJobs(p.path('cache'));
    for (const d of [p.dir, t]) rmTree(d);
  }
});

test('slurm: two engines on one shared store build overlapping pipelines once, without corruption', { skip }, async () => {
  const { a, b, t, store, ra, rb } = await twoEngines('slurm', { slurm: { pollMs: 250 } });
  try {
    assert.equal(ra.code, 0, ra.stderr + ra.stdout);
    assert.equal(rb.code, 0, rb.stderr + rb.stdout);
    assert.equal(countLines(t, 'shared.count'), 1);
    assert.equal(countLines(t, 'fnstage.count'), 1);
    assert.equal(countLines(t, 'mine-alpha.count') + countLines(t, 'mine-beta.count'), 2);
    assert.deepEqual(JSON.parse(a.read('pipeline.lock.json')).stages.shared, JSON.parse(b.read('pipeline.lock.json')).stages.shared);
    const s = checkStore(store);
    assert.deepEqual(s.problems, []);
    assert.equal(s.runs, 4);
  } finally {
    cancelJobs(store);
    for (const d of [a.dir, b.dir, t, store]) rmTree(d);
  }
});
