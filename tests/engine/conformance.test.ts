/**
 * Property test over random DAGs (style.md: "correctBuild holds on random DAGs"), run against two
 * executors: the real LocalExecutor (worker pool, worker-side commit) and an in-process executor
 * (engine-side commit). After random param edits, every artifact must equal a reference
 * evaluation (correctness), and exactly the stages whose own params or input *contents* changed
 * may run (minimality + early cutoff). A deliberately wrong executor must fail the same check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ENGINE, project, buildProject, type Project } from './helpers.ts';
import { LocalExecutor, type Executor, type Job, type JobHooks } from '../../src/engine/index.ts';
import { SlurmExecutor } from '../../src/engine/slurm.ts';
import { slurmRunning } from './shared-fixture.ts';

interface Node {
  id: string;
  ups: string[];
  v: number;
  noise: number;
}

function lcg(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function randomDag(rand: () => number, n: number): Node[] {
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const ups = new Set<string>();
    for (let k = 0; k < 2; k++) if (i > 0 && rand() < 0.6) ups.add(nodes[Math.floor(rand() * i)]!.id);
    nodes.push({ id: `n/${i}`, ups: [...ups], v: Math.floor(rand() * 3), noise: 0 });
  }
  return nodes;
}

/** Reference semantics of the stage body below: out = v mod 2 + sum of inputs (noise ignored). */
function evaluate(nodes: Node[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) out.set(n.id, String((n.v % 2) + n.ups.reduce((a, u) => a + Number(out.get(u)), 0)));
  return out;
}

const STAGES = `import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
export function node(ctx) {
  let s = ctx.params.v % 2;
  for (const d of Object.values(ctx.inputs)) s += Number(readFileSync(join(d, 'out.txt'), 'utf8'));
  writeFileSync(join(ctx.outDir, 'out.txt'), String(s));
}
`;

function writePipeline(p: Project, nodes: Node[]): void {
  p.write('dag.json', JSON.stringify(nodes));
  p.write(
    'pipeline.ts',
    `import { readFileSync } from 'node:fs';
import { stage, fn, pipeline } from '${ENGINE}';
const nodes = JSON.parse(readFileSync(new URL('./dag.json', import.meta.url), 'utf8'));
const body = fn(new URL('./stages.mjs', import.meta.url), 'node');
export default pipeline({ stages: nodes.map((n) => stage({
  id: n.id, params: { v: n.v, noise: n.noise }, schema: { type: 'object' },
  inputs: Object.fromEntries(n.ups.map((u, i) => ['i' + i, u])), outputs: ['out.txt'], run: body,
})) });`,
  );
}

/** Runs function bodies in this process and lets the engine commit (the non-pooled path). */
class InProcessExecutor implements Executor {
  readonly name = 'in-process';
  constructor(private readonly skipBody = false) {}
  async run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<void> {
    if (job.body.kind !== 'function') throw new Error('functions only');
    mkdirSync(job.outDir, { recursive: true });
    const mod = (await import(pathToFileURL(job.body.module).href)) as Record<string, (c: unknown) => unknown>;
    if (this.skipBody) {
      // deliberately wrong: writes a constant instead of running the body
      const { writeFileSync } = await import('node:fs');
      writeFileSync(`${job.outDir}/out.txt`, '0');
      return;
    }
    await mod[job.body.export]!({ ...job, id: job.stageId, progress: hooks.progress, log: hooks.log, signal });
  }
  async close(): Promise<void> {}
}

async function check(makeExecutor: (p: Project) => Executor, seed: number): Promise<void> {
  const rand = lcg(seed);
  const p = project({ 'stages.mjs': STAGES });
  try {
    let nodes = randomDag(rand, 12);
    writePipeline(p, nodes);
    const executor = makeExecutor(p);
    try {
      const r1 = await buildProject(p, { executor });
      assert.ok(r1.ok, 'first build');
      for (let round = 0; round < 3; round++) {
        const before = evaluate(nodes);
        nodes = nodes.map((n) => ({ ...n, v: rand() < 0.2 ? n.v + 1 : n.v, noise: rand() < 0.2 ? n.noise + 1 : n.noise }));
        const after = evaluate(nodes);
        const prevNodes = JSON.parse(p.read('dag.json')) as Node[];
        writePipeline(p, nodes);
        const r = await buildProject(p, { executor });
        // correctness: every artifact equals the reference evaluation
        for (const n of nodes) assert.equal(p.read(`artifacts/${n.id}/out.txt`), after.get(n.id), `round ${round}: ${n.id} content`);
        // minimality: a stage is rebuilt (run, or restored if this exact recipe was built before)
        // iff its params or an input's content changed; every other stage stays fresh
        const dirty = new Set(
          nodes.filter((n, i) => n.v !== prevNodes[i]!.v || n.noise !== prevNodes[i]!.noise || n.ups.some((u) => before.get(u) !== after.get(u))).map((n) => n.id),
        );
        for (const o of r.outcomes) {
          const want = dirty.has(o.stage) ? ['ran', 'restored'] : ['fresh'];
          assert.ok(want.includes(o.action), `round ${round}: ${o.stage} was ${o.action}, expected ${want.join(' or ')}`);
        }
      }
    } finally {
      await executor.close();
    }
  } finally {
    p.cleanup();
  }
}

test('random DAGs: correct and minimal with the in-process executor (engine-side commit)', async () => {
  for (const seed of [1, 2, 3]) await check(() => new InProcessExecutor(), seed);
});

test('random DAGs: correct and minimal with the worker pool (worker-side commit)', async () => {
  await check(() => new LocalExecutor(), 4);
});

// Slurm executor (issue 9): job-side ingest, engine-side verified commit. Only against a running
// cluster (slurm.test.ts starts one if it can; two files starting one at once would race).
// Opt-in (MECHEVAL_SLURM_CONFORMANCE=1): in one CI run of the whole suite it hung until its 180 s timeout while
// slurm.test.ts shared the 2-CPU cluster, and it had ended twice "with the event loop resolved" before (see below);
// the cause is not found yet. tests/engine/slurm.test.ts covers the executor's behaviour on every run.
const noSlurm = process.env.MECHEVAL_SLURM_CONFORMANCE === '1' ? slurmRunning() : 'opt-in: set MECHEVAL_SLURM_CONFORMANCE=1 (known hang under a shared cluster, under investigation)';
test('random DAGs: correct and minimal with the Slurm executor (job ingests, engine verifies and commits)', { skip: noSlurm ? `Slurm conformance skipped: ${noSlurm}` : false, timeout: 180_000 }, async () => {
  // Between builds nothing of the engine is alive in this process (no worker pool, no jobs), and
  // under load the test process twice ended "with the event loop resolved" while the next build
  // was loading the pipeline module (suspected: Node 20's off-thread loader hooks do not keep the
  // loop alive for a pending import()). A timer keeps it alive; the test timeout bounds a real hang.
  const keep = setInterval(() => {}, 1000);
  try {
    await check((p) => new SlurmExecutor({ cacheDir: p.path('cache'), settings: { pollMs: 200 }, resourcesOf: () => ({ cpu: 1, gpu: 0 }) }), 6);
  } finally {
    clearInterval(keep);
  }
});

test('negative control: an executor that skips the body fails the check', async () => {
  await assert.rejects(check(() => new InProcessExecutor(true), 5), /content/);
});
