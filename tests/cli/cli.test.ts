import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync, writeFileSync } from 'node:fs';
import { fixture } from '../engine/fixture.ts';
import { cli, cliSpawn, collect, waitFor } from '../engine/helpers.ts';

test('malformed params: clear error with JSON pointers, exit 2, nothing runs', async () => {
  const p = fixture();
  try {
    p.config({ value: 42 as never });
    const r = await cli(p.dir, ['run']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /params error/);
    assert.match(r.stderr, /up \/value: must be string/);
    assert.deepEqual(p.runs(), []);
    const s = await cli(p.dir, ['status']);
    assert.equal(s.code, 2);
    const u = await cli(p.dir, ['run', '--jobs', 'x']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /received "x"/);
  } finally {
    p.cleanup();
  }
});

test('run --json, status --json, dag --format json, dry-run, verify and report', async () => {
  const p = fixture();
  try {
    const dry = await cli(p.dir, ['run', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /run\s+up/);
    assert.match(dry.stdout, /run\?\s+down/);

    const r = await cli(p.dir, ['run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 3);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ['stage', 'key', 'action', 'ms']);
      assert.equal(l.action, 'ran');
      assert.match(String(l.key), /^[0-9a-f]{64}$/);
    }

    const st = await cli(p.dir, ['status', '--json']);
    const sj = JSON.parse(st.stdout) as { stages: { id: string; key: string; state: string; causes: unknown[] }[] };
    assert.deepEqual(sj.stages.map((s) => [s.id, s.state, s.causes.length]), [['up', 'fresh', 0], ['down', 'fresh', 0], ['other', 'fresh', 0]]);
    assert.deepEqual(Object.keys(sj.stages[0]!), ['id', 'key', 'state', 'causes']);

    const dag = await cli(p.dir, ['dag', '--format', 'json']);
    assert.deepEqual(JSON.parse(dag.stdout), { stages: [{ id: 'up', deps: [] }, { id: 'down', deps: ['up'] }, { id: 'other', deps: [] }] });
    assert.match((await cli(p.dir, ['dag', '--format', 'dot'])).stdout, /"up" -> "down"/);

    assert.equal((await cli(p.dir, ['verify'])).code, 0);
    p.config({ value: 'b' });
    const v = await cli(p.dir, ['verify']);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /stale\s+up/);
    assert.match(v.stdout, /params: value: a → b/);
    p.config({ value: 'a' });
    const rr = await cli(p.dir, ['verify', '--rerun', 'up']);
    assert.equal(rr.code, 0, rr.stdout + rr.stderr);
    assert.match(rr.stdout, /same\s+up: outputs identical to the lock/);
    assert.equal(p.runs().filter((x) => x === 'up').length, 2, 'verify --rerun really re-executed up');

    const rep = await cli(p.dir, ['report']);
    assert.equal(rep.code, 0, rep.stderr);
    assert.match(rep.stdout, /report down: artifacts\/down\//);

    const show = await cli(p.dir, ['show', 'up', '--n', '3']);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.stdout.trim(), 'value=a n=3 text=a!');
    const showOther = await cli(p.dir, ['show', 'other']);
    assert.match(showOther.stdout, /no show function declared[\s\S]*o\.txt\s+5 bytes/);
    assert.equal((await cli(p.dir, ['show', 'nope'])).code, 2);

    const gc = await cli(p.dir, ['gc', '--dry-run']);
    assert.equal(gc.code, 0);
    assert.match(gc.stdout, /would delete 0 object/);
  } finally {
    p.cleanup();
  }
});

test('SIGKILL of the engine mid-stage: nothing cached, stale lock taken over, next run recovers', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['slow'] });
    const child = cliSpawn(p.dir, ['run', 'slow']);
    const done = collect(child);
    await waitFor(() => p.exists('slow.started'));
    child.kill('SIGKILL');
    await done;
    assert.ok(p.exists('cache/LOCK'), 'the dead run left its lock behind');
    assert.ok(!existsSync(p.path('cache/runs')) || readdirSync(p.path('cache/runs')).length === 0, 'no run entry');
    assert.ok(!p.exists('artifacts/slow'));
    const workerPid = Number(p.read('slow.started'));
    await waitFor(() => {
      try {
        process.kill(workerPid, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000); // the orphaned worker exits when its engine disconnects
    writeFileSync(p.path('slow.release'), '');
    const r = await cli(p.dir, ['run', 'slow']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /took over a stale store lock from dead pid/);
    assert.equal(p.read('artifacts/slow/out.txt'), 'done');
    assert.deepEqual(readdirSync(p.path('cache/tmp')), []);
  } finally {
    p.cleanup();
  }
});

test('two concurrent runs: the second waits (or fails with --no-wait); the stage runs once', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['slow'] });
    const first = collect(cliSpawn(p.dir, ['run', 'slow', '--json']));
    await waitFor(() => p.exists('slow.started'));
    const busy = await cli(p.dir, ['run', 'slow', '--no-wait']);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /locked by another run/);
    const second = collect(cliSpawn(p.dir, ['run', 'slow', '--json']));
    await waitFor(() => second.live.stderr.includes('waiting for the store lock'));
    writeFileSync(p.path('slow.release'), '');
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /waiting for the store lock/);
    assert.equal(JSON.parse(a.stdout.trim()).action, 'ran');
    assert.equal(JSON.parse(b.stdout.trim()).action, 'fresh');
    assert.deepEqual(p.runs(), ['slow']);
  } finally {
    p.cleanup();
  }
});

test('SIGINT cancels cleanly: exit 130, nothing cached, lock released', async () => {
  const p = fixture();
  try {
    p.config({ extra: ['slow'] });
    const child = cliSpawn(p.dir, ['run', 'slow', 'other']);
    const done = collect(child);
    await waitFor(() => p.exists('slow.started'));
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /cancelling/);
    assert.ok(!p.exists('cache/LOCK'));
    assert.ok(!p.exists('artifacts/slow'));
    assert.deepEqual(readdirSync(p.path('cache/tmp')), []);
  } finally {
    p.cleanup();
  }
});

test('the CLI exits as soon as it is done, with all of a large output delivered and its exit code kept', async () => {
  // main() exits explicitly once stdout and stderr are flushed (src/cli/main.ts); 3000 stages make
  // `dag --format json` ≈ 100 KB, more than a pipe holds, so a premature exit would truncate it.
  const { project, ENGINE } = await import('../engine/helpers.ts');
  const p = project({
    'pipeline.mjs': `import { stage, fn, pipeline } from '${ENGINE}';
const body = fn(new URL('./s.mjs', import.meta.url), 'f');
const stages = [];
for (let i = 0; i < 3000; i++) stages.push(stage({ id: 'stage-with-a-long-name/' + i, outputs: ['o'], run: body, inputs: i ? { up: stages[i - 1] } : {} }));
export default pipeline({ stages });
`,
    's.mjs': 'export function f() {}\n',
  });
  try {
    const r = await cli(p.dir, ['dag', '--format', 'json', '--pipeline', 'pipeline.mjs']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 65536, `${r.stdout.length} bytes`);
    const dag = JSON.parse(r.stdout) as { stages: { id: string; deps: string[] }[] };
    assert.equal(dag.stages.length, 3000);
    assert.deepEqual(dag.stages.at(-1)!.deps, ['stage-with-a-long-name/2998']);
    const bad = await cli(p.dir, ['run', '--jobs', '0', '--pipeline', 'pipeline.mjs']);
    assert.equal(bad.code, 2, bad.stderr);
  } finally {
    p.cleanup();
  }
});
