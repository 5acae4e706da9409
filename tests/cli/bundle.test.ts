import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeEngineProject } from '../../bench/engine/dag.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

// `npm run build` bundles the CLI and the engine (scripts/build.mjs). The bundle must still fork
// its workers (they are located beside executor.js), share one engine between the CLI and a
// pipeline that imports dist/src/engine/index.js, and answer a second run from the trace.
test('the bundled CLI runs a pipeline of function stages, then finds it fresh', () => {
  const out = mkdtempSync(join(REPO, 'node_modules', '.mecheval-bundle-test-'));
  const proj = mkdtempSync(join(tmpdir(), 'mecheval-bundle-proj-'));
  try {
    const b = spawnSync(process.execPath, [join(REPO, 'scripts/build.mjs'), '--outdir', out], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const pipe = writeEngineProject(proj, 20, join(out, 'src/engine/index.js'));
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(out, 'src/cli/main.js'), ...args, '--pipeline', pipe, '--json'], { cwd: proj, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    const actions = (stdout: string) => stdout.trim().split('\n').map((l) => (JSON.parse(l) as { action: string }).action);
    const cold = cli('run', '-j', '2');
    assert.equal(cold.status, 0, cold.stderr);
    assert.deepEqual(new Set(actions(cold.stdout)), new Set(['ran']));
    assert.equal(actions(cold.stdout).length, 20);
    const noop = cli('run');
    assert.equal(noop.status, 0, noop.stderr);
    assert.deepEqual(actions(noop.stdout), Array(20).fill('fresh'));
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(proj, { recursive: true, force: true });
  }
});
