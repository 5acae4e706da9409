/**
 * The smoke study end to end, in temp stores: every stage kind runs; two fresh stores give the same output digests;
 * a warm rerun does nothing; changing one architecture's learning rate reruns only its train/evaluate/intervene
 * stages, the aggregate and the report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, silentReporter, readLockFile, type BuildResult } from '../../src/engine/index.ts';
import { configFile, loadExperiment, studyPipeline, ROOT } from '../../stages/study.ts';

const tmp = mkdtempSync(join(tmpdir(), 'mecheval-smoke-'));
const smoke = loadExperiment(configFile('smoke'));

async function buildIn(dir: string, experiment = smoke): Promise<BuildResult> {
  return build(studyPipeline(experiment), {
    root: ROOT, cacheDir: join(dir, 'cache'), artifactsDir: join(dir, 'artifacts'), lockFile: join(dir, 'lock.json'),
    reporter: silentReporter, jobs: 2,
  });
}

const acted = (r: BuildResult, action: string) => r.outcomes.filter((o) => o.action === action).map((o) => o.stage).sort();

test('smoke study: every stage kind runs, and a warm rerun does nothing', async () => {
  const a = join(tmp, 'a');
  const r1 = await buildIn(a);
  assert.ok(r1.ok, JSON.stringify(r1.outcomes.filter((o) => o.action === 'failed').map((o) => [o.stage, String(o.error)])));
  const kinds = new Set(r1.outcomes.map((o) => o.stage.split('/')[0]));
  assert.deepEqual([...kinds].sort(), ['aggregate', 'dataset', 'evaluate', 'intervene', 'report', 'train']);
  for (const f of ['index.html', 'report.md', 'results.json']) assert.ok(existsSync(join(a, 'artifacts/report', f)), f);
  const results = JSON.parse(readFileSync(join(a, 'artifacts/report/results.json'), 'utf8')) as { runs: unknown[]; stages: { key: string }[] };
  assert.equal(results.runs.length, 13);
  assert.ok(results.stages.every((s) => /^[0-9a-f]{64}$/.test(s.key)), 'every upstream stage is listed with its key');
  const r2 = await buildIn(a);
  assert.deepEqual(acted(r2, 'ran'), []);
  assert.equal(acted(r2, 'fresh').length, r1.outcomes.length);
});

test('smoke study: two fresh stores give identical output digests (determinism)', async () => {
  await buildIn(join(tmp, 'b'));
  const la = readLockFile(join(tmp, 'a', 'lock.json'))!;
  const lb = readLockFile(join(tmp, 'b', 'lock.json'))!;
  assert.deepEqual(Object.keys(lb.stages).sort(), Object.keys(la.stages).sort());
  for (const id of Object.keys(la.stages)) {
    assert.deepEqual(lb.stages[id]!.outputs, la.stages[id]!.outputs, `${id}: outputs differ between two fresh stores`);
    assert.equal(lb.stages[id]!.key, la.stages[id]!.key, id);
  }
});

test("smoke study: changing one architecture's learning rate reruns only its stages, the aggregate and the report", async () => {
  const x = structuredClone(smoke);
  x.groups[0]!.lr = { attention: [0.001], default: [0.003] };
  const r = await buildIn(join(tmp, 'a'), x);
  assert.ok(r.ok);
  assert.deepEqual(acted(r, 'ran'), [
    'aggregate',
    'evaluate/ar/attention-d16-L2-pe-lr1e-3-s0',
    'intervene/ar/attention-d16-L2-pe-lr1e-3-s0',
    'report',
    'train/ar/attention-d16-L2-pe-lr1e-3-s0',
  ]);
});

test('a config error names the file and the JSON pointer', () => {
  const bad = structuredClone(smoke) as any;
  bad.groups[1].task = 'nope';
  bad.groups[0].d_model = ['64'];
  const f = join(tmp, 'bad.json');
  writeFileSync(f, JSON.stringify(bad));
  assert.throws(() => loadExperiment(f), (e: Error) => e.message.includes(f) && e.message.includes('/groups/0/d_model/0'));
  delete bad.groups[0].d_model;
  bad.groups[0].d_model = [16];
  writeFileSync(f, JSON.stringify(bad));
  assert.throws(() => loadExperiment(f), /\/groups\/1\/task names task "nope", which is not in \/tasks/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
