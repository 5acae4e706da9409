import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync, readdirSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from './fixture.ts';
import { buildProject, actions, waitFor } from './helpers.ts';
import { loadPipeline, Session, prepare, inspect, readLockFile, EngineError } from '../../src/engine/index.ts';
import { manifestFiles } from '../../src/engine/store.ts';

async function status(p: { path(r: string): string }) {
  const { pipeline, root } = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
  const ses = new Session(pipeline, { root });
  await prepare(ses, pipeline.stages);
  return Object.fromEntries(inspect(ses, pipeline.stages).map((s) => [s.id, s]));
}

test('cold run, then no-op; lock file records keys, params and output digests', async () => {
  const p = fixture();
  try {
    const r1 = await buildProject(p);
    assert.deepEqual(actions(r1), { up: 'ran', down: 'ran', other: 'ran' });
    assert.equal(p.read('artifacts/down/out.txt'), 'A!');
    assert.equal(p.read('artifacts/down/dir/sub/x.txt'), 'A!');
    assert.equal(statSync(p.path('artifacts/down/out.txt')).mode & 0o222, 0, 'artifacts are read-only');
    const r2 = await buildProject(p);
    assert.deepEqual(actions(r2), { up: 'fresh', down: 'fresh', other: 'fresh' });
    assert.deepEqual(p.runs().sort(), ['down', 'other', 'up']);
    const lock = readLockFile(p.path('pipeline.lock.json'))!;
    assert.equal(lock.stages.up!.key, r1.outcomes.find((o) => o.stage === 'up')!.key);
    assert.deepEqual(lock.stages.up!.params, { value: 'a', note: 'n1' });
    assert.deepEqual(Object.keys(lock.stages.down!.outputs).sort(), ['dir', 'out.txt']);
    assert.deepEqual(readdirSync(p.path('cache/tmp')), [], 'no temp leftovers');
    // a hand-edited lock file is noticed (its stat changed) and rewritten by the next run
    const text = p.read('pipeline.lock.json');
    p.write('pipeline.lock.json', JSON.stringify({ version: 1, stages: {} }));
    assert.deepEqual(actions(await buildProject(p)), { up: 'fresh', down: 'fresh', other: 'fresh' });
    assert.equal(p.read('pipeline.lock.json'), text);
  } finally {
    p.cleanup();
  }
});

test('early cutoff: an upstream rerun with identical output does not rerun its dependents', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    p.config({ note: 'n2' }); // changes up's key, not its output
    const r = await buildProject(p);
    assert.deepEqual(actions(r), { up: 'ran', down: 'fresh', other: 'fresh' });
    assert.equal(r.outcomes.find((o) => o.stage === 'up')!.change, 'recomputedSame');
    assert.deepEqual(p.runs().sort(), ['down', 'other', 'up', 'up']);
  } finally {
    p.cleanup();
  }
});

test('run cache: flipping a param back restores old outputs without running', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    p.config({ value: 'b' });
    assert.deepEqual(actions(await buildProject(p)), { up: 'ran', down: 'ran', other: 'fresh' });
    assert.equal(p.read('artifacts/down/out.txt'), 'B!');
    const before = p.runs().length;
    p.config({ value: 'a' });
    const st = await status(p);
    assert.equal(st.up!.action, 'restore');
    assert.equal(st.down!.action, 'restore', 'downstream key is computable from the run cache');
    assert.deepEqual(actions(await buildProject(p)), { up: 'restored', down: 'restored', other: 'fresh' });
    assert.equal(p.runs().length, before, 'nothing ran');
    assert.equal(p.read('artifacts/down/out.txt'), 'A!');
  } finally {
    p.cleanup();
  }
});

test('status names each cause: params, code, upstream, env, output missing/corrupt', async () => {
  const p = fixture();
  try {
    await buildProject(p);
    p.config({ value: 'b' });
    let st = await status(p);
    assert.equal(st.up!.state, 'stale');
    assert.deepEqual(st.up!.causes, [{ kind: 'params', detail: 'value: a → b' }]);
    assert.equal(st.down!.action, 'run?');
    assert.ok(st.down!.causes.some((c) => c.kind === 'upstream' && c.detail.includes('up will be rebuilt')));
    assert.equal(st.other!.state, 'fresh');

    await buildProject(p); // value b built
    p.config({ value: 'a' }); // up restorable → down's new key is known
    st = await status(p);
    assert.deepEqual(st.down!.causes, [{ kind: 'upstream', detail: 'input src: output of up changed' }]);
    p.config({ value: 'b' });

    p.write('helper.mjs', `export const shout = (s) => s + '?';\n`);
    st = await status(p);
    assert.deepEqual(st.up!.causes, [{ kind: 'code', detail: 'helper.mjs changed' }]);
    p.write('helper.mjs', `// a comment only\nexport const shout = (s) =>   s + '!';\n`);
    st = await status(p);
    assert.equal(st.up!.state, 'fresh', 'a cosmetic edit is not a change');

    p.config({ flavour: 'chocolate' });
    st = await status(p);
    assert.deepEqual(st.up!.causes, [
      { kind: 'env', detail: 'flavour: vanilla → chocolate' },
      { kind: 'env', detail: 'probe: probe-vanilla → probe-chocolate' },
    ]);
    p.config({ flavour: 'vanilla' });

    rmSync(p.path('artifacts/other/o.txt'), { force: true });
    st = await status(p);
    assert.equal(st.other!.state, 'stale');
    assert.equal(st.other!.causes[0]!.kind, 'output');
    assert.match(st.other!.causes[0]!.detail, /missing/);

    chmodSync(p.path('artifacts/down/out.txt'), 0o644);
    writeFileSync(p.path('artifacts/down/out.txt'), 'tampered');
    st = await status(p);
    assert.equal(st.down!.causes[0]!.kind, 'output');
    assert.match(st.down!.causes[0]!.detail, /modified/);
    const r = await buildProject(p);
    assert.deepEqual(actions(r), { up: 'fresh', down: 'restored', other: 'restored' });
    assert.equal(p.read('artifacts/down/out.txt'), 'B!');
  } finally {
    p.cleanup();
  }
});

test('a corrupted store object is detected, reported, evicted and rebuilt', async () => {
  const p = fixture();
  try {
    const r1 = await buildProject(p);
    const ses = r1.session;
    const entry = ses.store.readRun(r1.outcomes.find((o) => o.stage === 'up')!.key!)!;
    const [, file] = manifestFiles(entry.outputs)[0]!;
    p.config({ value: 'b' });
    await buildProject(p);
    const obj = ses.store.objectPath(file.digest);
    chmodSync(obj, 0o644);
    writeFileSync(obj, 'bit rot');
    p.config({ value: 'a' });
    const r = await buildProject(p);
    assert.equal(r.rec.byId('up')!.action, 'ran');
    assert.ok(r.rec.warnings.some((w) => /corrupt; evicted, rebuilding up/.test(w)), r.rec.warnings.join('\n'));
    assert.equal(p.read('artifacts/up/out.txt'), 'a!');
    assert.equal(readFileSync(obj, 'utf8'), 'a!', 'the object was rewritten with the right content');
  } finally {
    p.cleanup();
  }
});

test('a failing stage is never cached; first failure cancels, --keep-going finishes unrelated stages', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['boom'] });
    const r = await buildProject(p, { keepGoing: true });
    const a = actions(r);
    assert.equal(a.boom, 'failed');
    assert.equal(a['after-boom'], 'cancelled');
    assert.equal(a.up, 'ran');
    assert.equal(a.down, 'ran');
    const err = r.outcomes.find((o) => o.stage === 'boom')!.error as EngineError;
    assert.equal(err.code, 'stage_failed');
    assert.match(err.message, /boom: deliberate failure/);
    assert.ok(!existsSync(p.path('artifacts/boom')), 'no partial artifacts');
    assert.deepEqual(readdirSync(p.path('cache/tmp')), []);
    const runs = r.session.store.listRuns();
    assert.equal(runs.length, 3, 'only the three successful stages are in the run cache');
    assert.ok(!readLockFile(p.path('pipeline.lock.json'))!.stages.boom);
    const r2 = await buildProject(p);
    assert.equal(actions(r2).boom, 'failed', 'still fails: nothing was cached');
  } finally {
    p.cleanup();
  }
});

test('a stage that does not write a declared output fails with output_missing', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['lazy'] });
    const r = await buildProject(p, { targets: ['lazy'] });
    const o = r.rec.byId('lazy')!;
    assert.equal(o.action, 'failed');
    assert.equal((o.error as EngineError).code, 'output_missing');
    assert.match((o.error as EngineError).message, /never\.txt/);
  } finally {
    p.cleanup();
  }
});

test('a SIGKILLed stage leaves nothing cached and the next run recovers', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['suicide'] });
    p.write('kill.flag', '');
    const r = await buildProject(p, { targets: ['suicide'] });
    const o = r.rec.byId('suicide')!;
    assert.equal(o.action, 'failed');
    assert.match((o.error as Error).message, /worker process died \(SIGKILL\)/);
    assert.equal(r.session.store.listRuns().length, 0);
    assert.ok(!existsSync(p.path('artifacts/suicide')));
    rmSync(p.path('kill.flag'));
    const r2 = await buildProject(p, { targets: ['suicide'] });
    assert.equal(r2.rec.byId('suicide')!.action, 'ran');
    assert.equal(p.read('artifacts/suicide/out.txt'), 'complete');
  } finally {
    p.cleanup();
  }
});

test('independent stages really run in parallel (each waits until the other has started)', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['meet'] });
    const r = await buildProject(p, { targets: ['meet/*'], jobs: 2 });
    assert.deepEqual(actions(r), { 'meet/a': 'ran', 'meet/b': 'ran' });
    const a = JSON.parse(p.read('artifacts/meet/a/times.json')) as { start: number; end: number };
    const b = JSON.parse(p.read('artifacts/meet/b/times.json')) as { start: number; end: number };
    assert.ok(a.start <= b.end && b.start <= a.end, `intervals overlap: ${JSON.stringify({ a, b })}`);
  } finally {
    p.cleanup();
  }
});

test('with -j 1 the meeting stages cannot overlap (the overlap test can fail)', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['meet'] });
    p.write('meet-timeout', '');
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(new Error('test timeout')), 1500);
    const r = await buildProject(p, { targets: ['meet/*'], jobs: 1, signal: ac.signal });
    clearTimeout(t);
    assert.ok(r.outcomes.every((o) => o.action === 'cancelled'), JSON.stringify(actions(r)));
    assert.equal(r.session.store.listRuns().length, 0, 'cancelled stages are not cached');
    assert.deepEqual(readdirSync(p.path('cache/tmp')), []);
  } finally {
    p.cleanup();
  }
});

test('a param with shell metacharacters stays one inert argument', async () => {
  const p = fixture();
  const evil = `$(touch pwned1) \`touch pwned2\`; touch pwned3 && echo "x" | tee pwned4 > pwned5 'q' * ~ \\ $HOME\nline2`;
  try {
    p.config({ extra: ['shell'], msg: evil } as never);
    const r = await buildProject(p, { targets: ['shell'] });
    assert.equal(r.rec.byId('shell')!.action, 'ran', String((r.rec.byId('shell')!.error as Error)?.message));
    assert.equal(p.read('artifacts/shell/msg.txt'), evil);
    assert.equal(p.read('artifacts/shell/argc.txt').trim(), '1');
    for (const f of ['pwned1', 'pwned2', 'pwned3', 'pwned4', 'pwned5']) assert.ok(!p.exists(f), `${f} must not exist`);
  } finally {
    p.cleanup();
  }
});

test('timeouts fail function and command stages; a command is killed with its whole process group', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['timeouts'] });
    const r = await buildProject(p, { targets: ['hang/*'], keepGoing: true });
    for (const id of ['hang/fn', 'hang/cmd']) {
      const o = r.rec.byId(id)!;
      assert.equal(o.action, 'failed', id);
      assert.match((o.error as Error).message, /timed out after 300 ms/, id);
    }
    assert.equal(r.session.store.listRuns().length, 0);
    const pid = Number(p.read('sleep.pid'));
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5000);
  } finally {
    p.cleanup();
  }
});
