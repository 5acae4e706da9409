/**
 * Engine benchmark (issue 2): a generated 1000-stage pipeline of trivial function stages —
 * cold run, no-op run, no-op status — each timed as a whole process with the compiled CLI
 * (`node dist/src/cli/main.js`, bundled by `npm run build`), plus the `npm run pipeline` figure, plus file-hashing throughput
 * beside `openssl dgst -sha256`, plus Snakemake on the same DAG if it is installed.
 * Prints figures and ratios; asserts nothing. Targets: no-op run ≤ 0.15 s, cold ≤ 3 s,
 * hashing ≥ 0.75× openssl.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, availableParallelism } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeEngineProject, writeSnakefile } from './engine/dag.ts';
import { hashFile } from '../src/engine/hash.ts';
import { rmTree } from '../src/engine/fsutil.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.BENCH_STAGES ?? 1000);

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const cpuTimes: number[] = [];

/** Wall time of a whole process; CPU time (user+sys, from /usr/bin/time) goes to `cpuTimes`. */
function timeProcess(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): { s: number; cpu: number | undefined; code: number | null; out: string } {
  const [c, a] = TIME ? [TIME, ['-f', '@@cpu %U %S', cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const r = spawnSync(c, a, { cwd, env: { ...process.env, CI: 'true', ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const s = (performance.now() - t0) / 1000;
  const m = /@@cpu ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
  const cpu = m ? Number(m[1]) + Number(m[2]) : undefined;
  return { s, cpu, code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}
const cpuOf = (xs: { cpu: number | undefined }[]): string => {
  const v = xs.map((x) => x.cpu).filter((x): x is number => x !== undefined);
  return v.length ? `   cpu ${median(v).toFixed(3)} s` : '';
};
void cpuTimes;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f3 = (x: number): string => x.toFixed(3);
const row = (name: string, s: number, target?: number, cpu = ''): void =>
  console.log(`  ${name.padEnd(44)} ${f3(s).padStart(8)} s${cpu}${target !== undefined ? `   (target ≤ ${target} s: ${s <= target ? 'met' : 'missed'})` : ''}`);

export async function run(): Promise<void> {
  const jobs = availableParallelism();
  console.log(`engine: ${N} trivial function stages (chains of 10), -j ${jobs}; load average ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')}`);
  const build = timeProcess('npm', ['run', '--silent', 'build'], REPO);
  const cliJs = join(REPO, 'dist/src/cli/main.js');
  if (!existsSync(cliJs)) {
    console.log(`  npm run build did not produce ${cliJs}; skipping the process timings\n${build.out.slice(-2000)}`);
  } else {
    if (build.code !== 0) console.log(`  note: npm run build exited ${build.code} (type errors elsewhere in the tree); using the emitted dist/ anyway`);
    const dir = mkdtempSync(join(tmpdir(), 'mecheval-bench-'));
    try {
      const pipe = writeEngineProject(dir, N, join(REPO, 'dist/src/engine/index.js'));
      const cliArgs = (cmd: string[]) => [cliJs, ...cmd, '--pipeline', pipe, '-j', String(jobs)];
      const node = (cmd: string[]) => timeProcess(process.execPath, cmd[0] === 'status' ? [cliJs, 'status', '--pipeline', pipe] : cliArgs(cmd), dir);
      const zeros = [0, 1, 2].map(() => timeProcess(process.execPath, ['-e', '0'], dir));
      const nodeZero = median(zeros.map((z) => z.s));
      const cold = node(['run']);
      if (cold.code !== 0) console.log(`  cold run failed (exit ${cold.code}):\n${cold.out.slice(-3000)}`);
      const noops = [0, 1, 2, 3, 4].map(() => node(['run']));
      const noop = median(noops.map((x) => x.s));
      const statuses = [0, 1, 2].map(() => node(['status']));
      const status = median(statuses.map((x) => x.s));
      const check = node(['run', '--json']);
      const fresh = check.out.split('\n').filter((l) => l.includes('"action":"fresh"')).length;
      const viaNpm = timeProcess('npm', ['run', '--silent', 'pipeline', '--', 'run', '--pipeline', pipe], REPO);
      console.log('  (wall time of the whole process; cpu = user+sys of the process and the workers it reaped)');
      row('node -e 0 (process floor)', nodeZero, undefined, cpuOf(zeros));
      row('cold run (node dist/src/cli/main.js run)', cold.s, 3, cpuOf([cold]));
      row('no-op run (median of 5)', noop, 0.15, cpuOf(noops));
      row('no-op status (median of 3)', status, undefined, cpuOf(statuses));
      row('no-op run via `npm run pipeline` (tsx)', viaNpm.s, undefined, cpuOf([viaNpm]));
      console.log(`  no-op run check: ${fresh}/${N} stages reported fresh`);
      console.log(`  per stage: cold ${f3((cold.s * 1000) / N)} ms, no-op ${f3(((noop - nodeZero) * 1000) / N)} ms above the node floor`);
      const snake = spawnSync('snakemake', ['--version'], { encoding: 'utf8' });
      if (snake.status === 0) {
        const sdir = join(dir, 'snake');
        writeSnakefile(sdir, N);
        const sc = timeProcess('snakemake', ['-j', String(jobs), '--quiet'], sdir);
        const sn = timeProcess('snakemake', ['-j', String(jobs), '--quiet'], sdir);
        console.log(`  snakemake ${snake.stdout.trim()}: cold ${f3(sc.s)} s (ratio ${f3(sc.s / cold.s)}×), no-op ${f3(sn.s)} s (ratio ${f3(sn.s / noop)}×)`);
      } else console.log('  snakemake: not installed (Debian `snakemake`); skipped');
    } finally {
      rmTree(dir);
    }
  }

  // Hashing throughput: 256 MiB of random bytes, our SHA-256 (1 MiB reads) vs openssl.
  const hdir = mkdtempSync(join(tmpdir(), 'mecheval-hash-'));
  const file = join(hdir, 'big.bin');
  try {
    const fd = openSync(file, 'w');
    const chunk = randomBytes(1 << 20);
    for (let i = 0; i < 256; i++) {
      chunk[0] = i;
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const bytes = 256 * (1 << 20);
    await hashFile(file); // warm the page cache
    const ours = median(await Promise.all([0, 1, 2].map(async () => 0)).then(async () => {
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await hashFile(file);
        xs.push((performance.now() - t0) / 1000);
      }
      return xs;
    }));
    const b3: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await hashFile(file, 'blake3');
      b3.push((performance.now() - t0) / 1000);
    }
    const ossl = median([0, 1, 2].map(() => timeProcess('openssl', ['dgst', '-sha256', file], hdir).s));
    const gbs = (s: number) => (bytes / s / 1e9).toFixed(2);
    console.log(`hashing 256 MiB:`);
    console.log(`  openssl dgst -sha256        ${gbs(ossl)} GB/s`);
    console.log(`  engine SHA-256 (1 MiB reads) ${gbs(ours)} GB/s   ratio ${(ossl / ours).toFixed(2)}× openssl (target ≥ 0.75)`);
    console.log(`  engine BLAKE3 (hash-wasm)    ${gbs(median(b3))} GB/s   ratio ${(ossl / median(b3)).toFixed(2)}× openssl`);
  } finally {
    rmSync(hdir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await run();
