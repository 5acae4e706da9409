/**
 * Test helpers: throw-away projects in temp dirs, the CLI as a subprocess, in-process builds.
 * Not a test file itself (no `.test.ts` suffix).
 */
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadPipeline, build, type BuildOptions, type BuildResult, type Reporter, type StageOutcome } from '../../src/engine/index.ts';
import { rmTree } from '../../src/engine/fsutil.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ENGINE = pathToFileURL(join(REPO, 'src/engine/index.ts')).href;
export const CLI = join(REPO, 'src/cli/main.ts');
export const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface Project {
  dir: string;
  write(rel: string, text: string): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  path(rel: string): string;
  cleanup(): void;
}

export function project(files: Record<string, string> = {}): Project {
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-test-'));
  const p: Project = {
    dir,
    write(rel, text) {
      const f = join(dir, rel);
      mkdirSync(dirname(f), { recursive: true });
      rmSync(f, { force: true });
      writeFileSync(f, text);
    },
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    exists: (rel) => existsSync(join(dir, rel)),
    path: (rel) => join(dir, rel),
    cleanup: () => rmTree(dir),
  };
  p.write('package.json', JSON.stringify({ type: 'module', private: true }));
  for (const [k, v] of Object.entries(files)) p.write(k, v);
  return p;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cliSpawn(dir: string, args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: dir, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function cli(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const child = cliSpawn(dir, args, env);
  return collect(child);
}

export function collect(child: ReturnType<typeof spawn>): Promise<CliResult> & { live: { stdout: string; stderr: string } } {
  const live = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (live.stdout += d));
  child.stderr!.on('data', (d) => (live.stderr += d));
  const p = new Promise<CliResult>((res) => child.on('close', (code, signal) => res({ code, signal, ...live })));
  return Object.assign(p, { live });
}

export function recorder(): Reporter & { ends: StageOutcome[]; warnings: string[]; byId(id: string): StageOutcome | undefined } {
  const ends: StageOutcome[] = [];
  const warnings: string[] = [];
  return {
    ends,
    warnings,
    byId: (id) => ends.find((e) => e.stage === id),
    stageStart() {},
    progress() {},
    log() {},
    stageEnd: (o) => void ends.push(o),
    warn: (m) => void warnings.push(m),
    close() {},
  };
}

/** Load the project's pipeline.ts afresh and build it in-process. */
export async function buildProject(p: Project, opts: BuildOptions = {}): Promise<BuildResult & { rec: ReturnType<typeof recorder> }> {
  const loaded = await loadPipeline(p.path('pipeline.ts'), { fresh: true });
  const rec = recorder();
  const r = await build(loaded.pipeline, { root: loaded.root, jobs: 2, reporter: rec, ...opts });
  return { ...r, rec };
}

export const actions = (r: BuildResult): Record<string, string> => Object.fromEntries(r.outcomes.map((o) => [o.stage, o.action]));

export async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
