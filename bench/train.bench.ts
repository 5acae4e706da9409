/**
 * Training throughput (issue 5): examples/s of the real training loop (src/train/loop.ts: forward, backward, AdamW,
 * schedule) per architecture at the default study's size (AR 3 pairs, 16 + 16 keys/values: V = 35, L = 11; d = 64,
 * 2 layers, batch 32), beside the PyTorch twin of the same model (bench/torch_twin.py, forward + backward only, one
 * thread) when `/usr/bin/python3 -c 'import torch'` works. Prints figures and ratios; asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend, describeBackend } from '../src/models/tf.ts';
import { createLanguageModel, registeredMixers } from '../src/models/index.ts';
import { buildDataset } from '../src/data/dataset.ts';
import { loadSplit } from '../src/train/split.ts';
import { train } from '../src/train/loop.ts';

const D = 64, B = 32, PAIRS = 3, KEYS = 16, STEPS = 40, WARMUP = 5;
const V = 3 + 2 * KEYS, T = 2 * PAIRS + 5;
const PYTHON = '/usr/bin/python3';

function torchMs(mixers: string[]): Map<string, number> | null {
  if (spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return null;
  const script = fileURLToPath(new URL('./torch_twin.py', import.meta.url));
  const r = spawnSync(PYTHON, [script, JSON.stringify({ mixers, d: D, T, B, V, layers: 2, warmup: 3, steps: 20, n_positions: 64, h3_d_state: 64 })], {
    encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0) return null;
  const out = new Map<string, number>();
  for (const l of r.stdout.trim().split('\n').slice(1)) {
    const j = JSON.parse(l) as { mixer: string; ms: number };
    out.set(j.mixer, j.ms);
  }
  return out;
}

export async function run(): Promise<void> {
  const info = await initBackend('auto');
  console.log(`backend: ${describeBackend(info)}; AR ${PAIRS} pairs (V=${V}, L=${T}), d=${D}, batch ${B}, ${STEPS} timed steps after ${WARMUP}`);
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-bench-train-'));
  buildDataset({ task: { kind: 'ar', pairs: PAIRS, numKeys: KEYS, numValues: KEYS }, sizes: { train: B * (STEPS + WARMUP), dev: 32, test: 32 }, seed: 1 }, dir);
  const data = loadSplit(dir, 'train');
  const mixers = registeredMixers();
  const torch = torchMs(mixers);
  console.log(`${'mixer'.padEnd(10)} ${'ms/step'.padStart(8)} ${'examples/s'.padStart(11)}   ${torch ? 'PyTorch fwd+bwd ms  ratio' : 'PyTorch: skipped (not installed)'}`);
  for (const mixer of mixers) {
    const lm = createLanguageModel({ mixer, d_model: D, n_layers: 2, vocab_size: V, n_positions: 64, pos_emb: mixer === 'attention', h3_d_state: 64 });
    const stamps: number[] = [];
    train(lm, data, null, { lr: 1e-3, steps: STEPS + WARMUP, batch_size: B, eval_every: 0, checkpoint_every: 0 }, {
      afterStep: () => stamps.push(performance.now()),
    });
    const ms = (stamps.at(-1)! - stamps[WARMUP - 1]!) / STEPS;
    const t = torch?.get(mixer);
    console.log(`${mixer.padEnd(10)} ${ms.toFixed(1).padStart(8)} ${((1000 * B) / ms).toFixed(0).padStart(11)}   ${t ? `${t.toFixed(1).padStart(8)}  ${(ms / t).toFixed(2)}×` : ''}`);
    lm.dispose();
  }
  rmSync(dir, { recursive: true, force: true });
}
