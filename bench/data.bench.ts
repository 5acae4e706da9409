/**
 * Task-generator benchmark (issue 3): the paper-size AR train set (100,032 documents, 16 pairs, 4096 + 4096) and an
 * ATR (L_max 10, |Σ| 8192) set of 100,032 documents, generated in memory. Targets, one core: AR ≤ 2 s, ATR ≤ 30 s.
 *
 * Each case runs in a fresh child process so that its peak RSS (getrusage maxRSS) is its own and not the bench
 * runner's; the child is this file, selected by an environment variable.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDataset, buildDataset } from '../src/data/dataset.ts';
import { splitTensors } from '../src/data/examples.ts';
import { TASK_PRESETS, type DatasetParams } from '../src/data/params.ts';

const CASE_ENV = 'MECHEVAL_DATA_BENCH_CASE';
const N = 100_032;

interface Case { name: string; params: DatasetParams; targetS: number; write: boolean }

const CASES: Case[] = [
  { name: 'AR 16 pairs, 4096+4096', params: { task: TASK_PRESETS['ar-paper'], sizes: { train: N, dev: 1, test: 1 }, seed: 42 }, targetS: 2, write: true },
  // the (10, 8192) documents average ~60-90 tokens with a tail to ~1000, so the padded files would be ~1 GB: not written
  { name: 'ATR L_max 10, |Σ| 8192', params: { task: TASK_PRESETS['atr-medium-8192'], sizes: { train: N, dev: 1, test: 1 }, seed: 42 }, targetS: 30, write: false },
];

function runCase(c: Case): Record<string, number> {
  const t0 = performance.now();
  const d = generateDataset(c.params);
  const genS = (performance.now() - t0) / 1000;
  const train = d.splits.train!;
  const t1 = performance.now();
  let tensorsS = NaN;
  let writeS = NaN;
  if (c.write) {
    splitTensors(train, d.width);
    tensorsS = (performance.now() - t1) / 1000;
    const dir = mkdtempSync(join(tmpdir(), 'mecheval-bench-'));
    const t2 = performance.now();
    try { buildDataset(c.params, dir); } finally { rmSync(dir, { recursive: true, force: true }); }
    writeS = (performance.now() - t2) / 1000;
  }
  return {
    genS, tensorsS, writeS, docs: train.n, tokens: train.offsets[train.n]!, width: d.width,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

export async function run(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  console.log('case                        generate  target  ×target  tokens      width  peak RSS   (+pad to tensors, full build+write)');
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i]!;
    const r = spawnSync(process.execPath, ['--import', 'tsx', self], { env: { ...process.env, [CASE_ENV]: String(i) }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`data bench case "${c.name}" failed (exit ${r.status}):\n${r.stderr}`);
    const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    const extra = c.write ? `(+${m.tensorsS!.toFixed(2)} s, ${m.writeS!.toFixed(2)} s)` : '(files not written)';
    console.log(`${c.name.padEnd(28)}${m.genS!.toFixed(2).padStart(6)} s  ${String(c.targetS).padStart(4)} s  ` +
      `${(m.genS! / c.targetS).toFixed(2).padStart(6)}  ${String(m.tokens).padEnd(10)}  ${String(m.width).padStart(5)}  ` +
      `${m.peakRssMiB!.toFixed(0).padStart(5)} MiB  ${extra}`);
  }
}

// child-process entry: run one case and print its figures as one JSON line
const which = process.env[CASE_ENV];
if (which !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(runCase(CASES[Number(which)]!)));
}
