import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngineConfig } from '../../src/engine/config.ts';
import { SlurmExecutor } from '../../src/engine/slurm.ts';
import { parseArgs } from '../../src/cli/flags.ts';
import { EngineError } from '../../src/engine/index.ts';
import type { Job } from '../../src/engine/executor.ts';
import { project } from './helpers.ts';

test('mecheval.config.json: absent is {}, cache resolves against the root, mistakes name the setting', () => {
  const p = project();
  try {
    assert.deepEqual(loadEngineConfig(p.dir), {});
    p.write('mecheval.config.json', JSON.stringify({ executor: 'slurm', cache: 'shared/cache', slurm: { partition: 'gpu' } }));
    assert.deepEqual(loadEngineConfig(p.dir), { executor: 'slurm', cache: p.path('shared/cache'), slurm: { partition: 'gpu' } });
    p.write('mecheval.config.json', JSON.stringify({ executer: 'slurm' }));
    assert.throws(() => loadEngineConfig(p.dir), (e: unknown) => e instanceof EngineError && e.code === 'usage' && /unknown setting "executer"/.test(e.message));
    p.write('mecheval.config.json', JSON.stringify({ executor: 'k8s' }));
    assert.throws(() => loadEngineConfig(p.dir), /executor must be "local" or "slurm"/);
    p.write('mecheval.config.json', JSON.stringify({ slurm: { partiton: 'x' } }));
    assert.throws(() => loadEngineConfig(p.dir), /unknown slurm setting "partiton"/);
  } finally {
    p.cleanup();
  }
});

test('--executor: parsed for run and report, rejected elsewhere, values checked', () => {
  assert.equal(parseArgs(['run', '--executor', 'slurm']).options.executor, 'slurm');
  assert.equal(parseArgs(['report', '--executor=local']).options.executor, 'local');
  assert.equal(parseArgs(['run']).options.executor, undefined);
  assert.throws(() => parseArgs(['run', '--executor', 'pbs']), /unknown value "pbs" for --executor/);
  assert.throws(() => parseArgs(['status', '--executor', 'slurm']), /--executor does not apply to 'status'/);
});

test('sbatch arguments: resources from the stage, the rest from the config, per-stage globs win', async () => {
  const ex = new SlurmExecutor({
    cacheDir: '/store',
    settings: { partition: 'cpu', account: 'lab', mem: '2G', time: '01:00:00', extraArgs: ['--qos=normal'], stages: { 'train/**': { partition: 'gpu', mem: '32G', extraArgs: ['--constraint=a100'] } } },
    resourcesOf: (id) => (id.startsWith('train/') ? { cpu: 4, gpu: 2 } : { cpu: 1, gpu: 0 }),
  });
  const job = (stageId: string, timeoutMs: number | null): Job => ({ stageId, key: 'k', body: { kind: 'function', module: '/m.js', export: 'f' }, params: {}, inputs: {}, upstream: {}, outDir: '/o', scratchDir: '/s', gpus: [], cwd: '/proj', timeoutMs });
  const small = await ex.sbatchArgs(job('data/x', null), '/a');
  assert.ok(small.includes('--cpus-per-task=1'));
  assert.ok(!small.some((a) => a.startsWith('--gres')), 'no GPU asked, none requested');
  for (const a of ['--partition=cpu', '--account=lab', '--mem=2G', '--time=01:00:00', '--qos=normal', '--chdir=/proj', '--output=/a/job.log']) assert.ok(small.includes(a), `${a} in ${small.join(' ')}`);
  const big = await ex.sbatchArgs(job('train/m1', 150_000), '/a');
  for (const a of ['--cpus-per-task=4', '--gres=gpu:2', '--partition=gpu', '--mem=32G', '--time=4', '--qos=normal', '--constraint=a100']) assert.ok(big.includes(a), `${a} in ${big.join(' ')}`);
  assert.ok(!big.includes('--partition=cpu') && !big.includes('--time=01:00:00'), 'the stage timeout (3 min + 1 for start-up) replaces the default time');
  await ex.close();
});
