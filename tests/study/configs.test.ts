import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

test("a group's evaluate overrides the experiment's; 'gen' needs a task that holds pairs out; d_conv −1 names the run 'klong'", () => {
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-config-'));
  try {
    const x = JSON.parse(readFileSync(configFile('smoke'), 'utf8'));
    x.tasks['atr-ho'] = { ...x.tasks.atr, task: { ...x.tasks.atr.task, heldOutFraction: 0.25 } };
    x.groups = [
      { name: 'main', task: 'ar', mixers: ['based'], d_model: [16], d_conv: [null, -1], lr: [0.003], steps: 5 },
      { name: 'gen', task: 'atr-ho', mixers: ['attention'], d_model: [16], lr: [0.003], steps: 5, evaluate: { split: 'gen' } },
    ];
    const f = join(dir, 'x.json');
    writeFileSync(f, JSON.stringify(x));
    const p = studyPipeline(loadExperiment(f));
    const params = (id: string) => p.stages.find((s) => s.id === id)!.params as { split: string };
    assert.equal(params('evaluate/atr-ho/attention-d16-L2-pe-lr3e-3-s0').split, 'gen');
    assert.equal(params('evaluate/ar/based-d16-L2-nope-lr3e-3-s0').split, 'test');
    assert.ok(p.stages.some((s) => s.id === 'train/ar/based-d16-L2-klong-nope-lr3e-3-s0'));
    // The same run declared by two groups with different evaluation settings is a conflict, not a silent pick.
    x.groups.push({ ...x.groups[1], name: 'gen-again', evaluate: { split: 'test' } });
    writeFileSync(f, JSON.stringify(x));
    assert.throws(() => studyPipeline(loadExperiment(f)), /two groups declare run train\/atr-ho\/attention-d16-L2-pe-lr3e-3-s0 with different settings/);
    // 'gen' on a task without held-out pairs fails at load time, naming the pointer.
    x.groups = [{ ...x.groups[1], task: 'atr' }];
    writeFileSync(f, JSON.stringify(x));
    assert.throws(() => loadExperiment(f), /\/groups\/0\/evaluate\/split is 'gen', but task "atr" \(group "gen"\) holds no pairs out/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
