/**
 * Projects for the shared-store and Slurm tests, and the single-node Slurm cluster they use.
 * Not a test file itself (no `.test.ts` suffix).
 */
import { mkdtempSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { ENGINE, REPO, project, type Project } from './helpers.ts';
import { rmTree } from '../../src/engine/fsutil.ts';

/**
 * A project whose stages count their runs in $MECHEVAL_TEST_DIR (outside the store, not in any key):
 *   shared  — the same in every project: notes its start, waits for `release` if `gate` is set
 *   mine    — depends on shared, differs per project (`name`)
 *   fnstage — a function stage (runs in a pooled worker, locally or inside the job)
 */
export function twinProject(name: string, config: Record<string, unknown> = {}): Project {
  return project({
    'mecheval.config.json': JSON.stringify(config),
    'stages.mjs': `
import { writeFile, readFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
export async function fnstage(ctx) {
  await appendFile(join(process.env.MECHEVAL_TEST_DIR, 'fnstage.count'), 'x\\n');
  const s = await readFile(join(ctx.inputs.shared, 's.txt'), 'utf8');
  await writeFile(join(ctx.outDir, 'f.json'), JSON.stringify({ s, k: ctx.params.k }));
}
`,
    'pipeline.ts': `
import { stage, fn, cmd, sh, pipeline } from '${ENGINE}';
const shared = stage({ id: 'shared', outputs: ['s.txt', 'd/'], run: cmd(({ outDir }) => sh\`
  T="$MECHEVAL_TEST_DIR"; echo run >> "$T/shared.count"; touch "$T/shared.started"
  if [ -e "$T/gate" ]; then while [ ! -e "$T/release" ] && [ -d "$T" ]; do sleep 0.1; done; fi
  mkdir -p \${outDir}/d/e && printf 'shared-bytes' > \${outDir}/s.txt && seq 1 50 > \${outDir}/d/e/n.txt\`) });
const fnstage = stage({ id: 'fnstage', params: { k: 7 }, schema: { type: 'object', properties: { k: { type: 'integer' } } }, inputs: { shared }, outputs: ['f.json'], run: fn('stages.mjs', 'fnstage') });
const mine = stage({ id: 'mine', params: { name: ${JSON.stringify(name)} }, schema: { type: 'object', properties: { name: { type: 'string' } } }, inputs: { shared }, outputs: ['m.txt'],
  run: cmd(({ params, inputs, outDir }) => sh\`echo run >> "$MECHEVAL_TEST_DIR/mine-\${params.name}.count"; cat \${inputs.shared}/s.txt > \${outDir}/m.txt; echo \${params.name} >> \${outDir}/m.txt\`) });
export default pipeline({ stages: [shared, fnstage, mine] });
`,
  });
}

export function countLines(dir: string, file: string): number {
  const f = join(dir, file);
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0;
}

export function testDir(): string {
  return mkdtempSync(join(tmpdir(), 'mecheval-count-'));
}

/** Every object re-hashes to its name and every run entry's objects exist: the store is not corrupt. */
export function checkStore(cacheDir: string): { objects: number; runs: number; problems: string[] } {
  const problems: string[] = [];
  let objects = 0;
  let runs = 0;
  const objDir = join(cacheDir, 'objects');
  const have = new Set<string>();
  for (const pre of existsSync(objDir) ? readdirSync(objDir) : []) {
    for (const d of readdirSync(join(objDir, pre))) {
      if (d.startsWith('.')) {
        problems.push(`temp file left in objects/: ${d}`);
        continue;
      }
      objects++;
      have.add(d);
      const h = createHash('sha256').update(readFileSync(join(objDir, pre, d))).digest('hex');
      if (h !== d) problems.push(`object ${d} hashes to ${h}`);
    }
  }
  const runDir = join(cacheDir, 'runs');
  for (const pre of existsSync(runDir) ? readdirSync(runDir) : []) {
    for (const f of readdirSync(join(runDir, pre))) {
      if (f.startsWith('.')) continue;
      runs++;
      const e = JSON.parse(readFileSync(join(runDir, pre, f), 'utf8')) as { key: string; outputs: Record<string, { type: string; digest: string; files?: Record<string, { digest: string }> }> };
      if (`${e.key}.json` !== f) problems.push(`run entry ${f} names key ${e.key}`);
      for (const o of Object.values(e.outputs)) for (const d of o.type === 'file' ? [o.digest] : Object.values(o.files ?? {}).map((x) => x.digest)) if (!have.has(d)) problems.push(`run ${f} refers to missing object ${d}`);
    }
  }
  return { objects, runs, problems };
}

// ---------------------------------------------------------------------------------------------
// The cluster

export interface Cluster {
  /** why Slurm is unavailable (the tests skip with this message), or undefined when it is up */
  skip: string | undefined;
  /** stops the daemons if this process started them */
  stop(): void;
}

const SCRIPT = join(REPO, 'scripts/slurm-cluster.sh');

/** Undefined when a cluster answers (`.ci/run` starts one), else why not; never starts one. */
export function slurmRunning(): string | undefined {
  process.env.SLURM_CONF ??= join(process.env.MECHEVAL_SLURM_DIR ?? '/tmp/mecheval-slurm', 'slurm.conf');
  return spawnSync(SCRIPT, ['status'], { encoding: 'utf8' }).status === 0 ? undefined : 'no Slurm cluster is running (scripts/slurm-cluster.sh start)';
}

/** Use a running cluster (`.ci/run` starts one), else start one with scripts/slurm-cluster.sh, else say why not. */
export function slurmCluster(): Cluster {
  process.env.SLURM_CONF ??= join(process.env.MECHEVAL_SLURM_DIR ?? '/tmp/mecheval-slurm', 'slurm.conf');
  const status = () => spawnSync(SCRIPT, ['status'], { encoding: 'utf8' }).status === 0;
  if (status()) return { skip: undefined, stop: () => {} };
  if (spawnSync('sh', ['-c', 'command -v sbatch && command -v slurmctld || test -x /usr/sbin/slurmctld'], { encoding: 'utf8' }).status !== 0) {
    return { skip: 'Slurm is not installed (apt-get install -y --no-install-recommends slurm-wlm munge; see scripts/slurm-cluster.sh)', stop: () => {} };
  }
  if (process.getuid?.() !== 0) return { skip: 'Slurm is installed but no cluster runs and starting one needs root (scripts/slurm-cluster.sh start)', stop: () => {} };
  const r = spawnSync(SCRIPT, ['start'], { encoding: 'utf8', timeout: 90_000 });
  if (r.status !== 0) return { skip: `the Slurm cluster did not start: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, stop: () => {} };
  // stop only what this process started (a slow `status` under load must not stop a shared cluster)
  if (/already running/.test(r.stdout)) return { skip: undefined, stop: () => {} };
  return { skip: undefined, stop: () => void spawnSync(SCRIPT, ['stop'], { encoding: 'utf8' }) };
}

export function writeFileIn(dir: string, name: string, text = ''): void {
  writeFileSync(join(dir, name), text);
}

// ---------------------------------------------------------------------------------------------
// Two engines, two working dirs, one store

/**
 * Engine A starts `shared` (held at a gate), engine B, in another project on the same store,
 * reaches the same key and must wait for A's claim; then the gate opens. Returns what the test
 * asserts on: run counts, both outcomes, both workspaces and the store.
 */
export async function twoEngines(executor: 'local' | 'slurm', extra: Record<string, unknown> = {}) {
  const { cliSpawn, collect, waitFor } = await import('./helpers.ts');
  const store = mkdtempSync(join(tmpdir(), 'mecheval-shared-store-'));
  const t = testDir();
  const cfg = { executor, cache: store, sharedStore: true, ...extra };
  const a = twinProject('alpha', cfg);
  const b = twinProject('beta', cfg);
  const env = { MECHEVAL_TEST_DIR: t };
  writeFileIn(t, 'gate');
  const children: ReturnType<typeof cliSpawn>[] = [];
  try {
    const ca = cliSpawn(a.dir, ['run', '-v'], env);
    children.push(ca);
    const ea = collect(ca);
    await waitFor(() => existsSync(join(t, 'shared.started')), 60_000);
    const cb = cliSpawn(b.dir, ['run', '-v'], env);
    children.push(cb);
    const eb = collect(cb);
    await waitFor(() => /waiting for pid \d+ on/.test(eb.live.stdout + eb.live.stderr), 60_000);
    writeFileIn(t, 'release');
    const [ra, rb] = await Promise.all([ea, eb]);
    return { a, b, t, store, ra, rb };
  } catch (e) {
    // leave nothing running: engines killed, their gated stage ends once its dir is gone
    for (const c of children) c.kill('SIGKILL');
    if (executor === 'slurm') cancelJobs(store);
    for (const d of [a.dir, b.dir, t, store]) rmTree(d);
    throw e;
  }
}

/** Slurm job ids a store submitted (from slurm/<kk>/<key>/job.json). */
export function jobIds(cacheDir: string): string[] {
  const root = join(cacheDir, 'slurm');
  const out: string[] = [];
  for (const pre of existsSync(root) ? readdirSync(root) : []) {
    for (const key of readdirSync(join(root, pre))) {
      const f = join(root, pre, key, 'job.json');
      if (existsSync(f)) out.push((JSON.parse(readFileSync(f, 'utf8')) as { jobId: string }).jobId);
    }
  }
  return out;
}

/** Leave no job behind when a test fails half-way (a gated job would otherwise hold a CPU). */
export function cancelJobs(cacheDir: string): void {
  const ids = jobIds(cacheDir);
  if (ids.length) spawnSync('scancel', ids);
}
