import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_CONFIGS, configFile, loadExperiment, studyPipeline, fmtLr } from '../../stages/study.ts';

for (const name of BUILTIN_CONFIGS) {
  test(`built-in config '${name}' validates and expands to a DAG ending in the report`, () => {
    const p = studyPipeline(loadExperiment(configFile(name)));
    const ids = p.stages.map((s) => s.id);
    assert.equal(ids.at(-1), 'report');
    assert.ok(ids.includes('aggregate'));
    const trains = ids.filter((i) => i.startsWith('train/'));
    assert.ok(trains.length > 0);
    for (const t of trains) {
      const tail = t.slice('train/'.length);
      assert.ok(ids.includes(`evaluate/${tail}`), `evaluate stage for ${t}`);
    }
    assert.equal(p.lockFile, name === 'default' ? 'pipeline.lock.json' : `pipeline.${name}.lock.json`);
  });
}

test('learning rates read the same way in every run id', () => {
  assert.deepEqual([1e-3, 3e-4, 0.0015, 0.03].map(fmtLr), ['1e-3', '3e-4', '1.5e-3', '3e-2']);
});

test('an unknown --config is a usage error that lists the built-in configs', () => {
  assert.throws(() => configFile('no-such-config'), (e: Error & { hint?: string }) =>
    /neither a built-in config nor a file/.test(e.message) && /default, smoke, cpu-full, paper/.test(String(e.hint)));
});

test('stage bodies keep the build engine out of their code digest (editing src/engine retrains nothing)', async () => {
  const { Session } = await import('../../src/engine/index.ts');
  const { ROOT } = await import('../../stages/study.ts');
  const p = studyPipeline(loadExperiment(configFile('smoke')));
  const ses = new Session(p, { root: ROOT });
  for (const kind of ['dataset/', 'train/', 'evaluate/', 'intervene/', 'aggregate', 'report']) {
    const s = p.stages.find((x) => x.id.startsWith(kind))!;
    const files = ses.sourceFiles(s);
    assert.ok(files.some((f) => f.includes('/stages/')), `${s.id}: its body module is in the digest`);
    const engine = files.filter((f) => f.includes('/src/engine/'));
    assert.deepEqual(engine, [], `${s.id} hashes engine files: ${engine.join(', ')}`);
  }
  const train = ses.sourceFiles(p.stages.find((x) => x.id.startsWith('train/'))!);
  assert.ok(train.some((f) => f.endsWith('/src/train/loop.ts')), 'the training loop is in the train stage digest');
});
