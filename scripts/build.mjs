// `npm run build`: the CLI and the engine as bundled ES modules under dist/ (esbuild, which tsx
// already brings). Why a bundle and not tsc's one-file-per-module output: a no-op `run` of a large
// pipeline is mostly process start-up, and resolving, reading and linking ~30 engine modules cost
// ~10–15 ms of it (bench/engine.bench.ts). Type checking stays with `tsc --noEmit` (npm test).
//
// Entry points keep the paths of the source tree (dist/src/cli/main.js, dist/src/engine/index.js),
// and every module the engine locates beside itself at run time is an entry too: the executor
// forks `worker.js` next to `executor.js`, Slurm submits `slurm-job.js` next to `slurm.js`.
// Code splitting shares one copy of each engine module between the CLI and a pipeline that
// imports dist/src/engine/index.js. npm packages stay external (resolved from node_modules).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
// `--outdir DIR` (tests): another output dir; it must lie inside the repository so that the bundle's
// npm imports resolve from node_modules
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? resolve(process.argv[at + 1]) : `${root}/dist`;
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts', 'src/engine/index.ts', 'src/engine/executor.ts', 'src/engine/worker.ts', 'src/engine/slurm.ts', 'src/engine/slurm-job.ts'],
  outdir,
  outbase: '.',
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

// The executor and the Slurm executor locate worker.js / slurm-job.js beside their own file
// (import.meta.url); if a static import ever pulls them into a shared chunk, that breaks silently.
const { readFileSync } = await import('node:fs');
for (const [file, cls] of [['src/engine/executor.js', 'LocalExecutor'], ['src/engine/slurm.js', 'SlurmExecutor']]) {
  if (!readFileSync(`${outdir}/${file}`, 'utf8').includes(`${cls} = class`)) {
    console.error(`build: ${cls} is no longer defined in ${file} (it moved into a shared chunk); import its module only dynamically`);
    process.exit(1);
  }
}
