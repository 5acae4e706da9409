/**
 * Forward + backward time per training step for each registered architecture (issue 4), in two configurations:
 *   paper-size     d = 64, L = 37, batch 32, V = 8196 (the issue's original measurement);
 *   default study  d = 64, L = 11, batch 32, V = 35 (AR 3 pairs, 16 + 16 keys/values: the size the issue's ≤ 1.5×
 *                  target is about; n_positions 64 and H3 d_state 64 as in bench/train.bench.ts).
 * 2 layers, the trainer's answer loss at one position per row (head at one position), on the best backend here.
 * Position embeddings as in the paper's headline runs: on for attention only (paper-setup.md §3.1).
 * The same step in PyTorch runs only if `/usr/bin/python3 -c 'import torch'` works; otherwise it is reported skipped.
 * Nothing here asserts a timing. `MODELS_BENCH_PROFILE=1` adds the top kernels of one step per architecture.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tf, initBackend, describeBackend } from '../src/models/tf.ts';
import { LanguageModel } from '../src/models/lm.ts';
import { registeredMixers } from '../src/models/mixers.ts';
import { answerLoss } from '../src/train/loop.ts';
import type { MixerKind, ModelConfig } from '../src/models/config.ts';

const D = 64, B = 32, LAYERS = 2;

interface BenchConfig { name: string; T: number; V: number; warmup: number; steps: number; extra: Partial<ModelConfig> }
const CONFIGS: BenchConfig[] = [
  { name: 'paper-size', T: 37, V: 8196, warmup: 3, steps: 10, extra: {} },
  { name: 'default study', T: 11, V: 35, warmup: 5, steps: 30, extra: { n_positions: 64, h3_d_state: 64 } },
];

/** One training step's forward + backward with the trainer's own loss (src/train/loop.ts answerLoss). */
function trainingStep(lm: LanguageModel, ids: Int32Array, T: number, positions: Int32Array, answers: Int32Array): void {
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => answerLoss(lm, ids, B, T, positions, answers));
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync(); // make sure every gradient kernel has run
  });
}

const PYTHON = '/usr/bin/python3'; // Debian's python3-torch lives here, not in the pyenv python on PATH (tfjs-backends.md §5)

function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** Time the PyTorch twins (bench/torch_twin.py) of the same models, one thread, OpenBLAS limited to one thread. */
function torchTimes(mixers: MixerKind[], c: BenchConfig): { header: string; ms: Map<string, number> } {
  const args = JSON.stringify({ mixers, d: D, T: c.T, B, V: c.V, layers: LAYERS, warmup: c.warmup, steps: c.steps, ...c.extra });
  const script = fileURLToPath(new URL('./torch_twin.py', import.meta.url));
  const r = spawnSync(PYTHON, [script, args], {
    encoding: 'utf8', maxBuffer: 1 << 24,
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(`torch_twin.py failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const head = lines[0] as { torch: string; threads: number; blas: string };
  const ms = new Map<string, number>();
  for (const l of lines.slice(1)) ms.set(l.mixer as string, l.ms as number);
  return { header: `PyTorch ${head.torch}, ${head.threads} thread(s), BLAS: ${head.blas}`, ms };
}

export async function run(): Promise<void> {
  const info = await initBackend('auto');
  console.log(`backend: ${describeBackend(info)}`);
  const torch = torchAvailable();
  for (const c of CONFIGS) await runConfig(c, torch);
}

async function runConfig(c: BenchConfig, torchOk: boolean): Promise<void> {
  const { T, V, warmup: WARMUP, steps: STEPS } = c;
  console.log(`\n${c.name}: step = forward + backward, d=${D}, L=${T}, batch ${B}, V=${V}, ${LAYERS} layers, median of ${STEPS} after ${WARMUP} warm-up`);
  const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 7919) % (V - 3)));
  const positions = new Int32Array(B).fill(T - 3); // the query position of an AR document (paper-setup.md §1.2)
  const answers = Int32Array.from({ length: B }, (_, i) => 3 + ((i * 131) % (V - 3)));
  const results: { mixer: MixerKind; ms: number; params: number }[] = [];
  for (const mixer of registeredMixers()) {
    const lm = new LanguageModel({ mixer, d_model: D, n_layers: LAYERS, vocab_size: V, pos_emb: mixer === 'attention', ...c.extra });
    for (let i = 0; i < WARMUP; i++) trainingStep(lm, ids, T, positions, answers);
    const times: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const t0 = performance.now();
      trainingStep(lm, ids, T, positions, answers);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(STEPS / 2)]!;
    results.push({ mixer, ms, params: lm.paramCount() });
    console.log(`${mixer.padEnd(10)} ${ms.toFixed(1).padStart(8)} ms/step   (min ${times[0]!.toFixed(1)}, max ${times[STEPS - 1]!.toFixed(1)}; ${lm.paramCount()} params)`);
    if (process.env.MODELS_BENCH_PROFILE) {
      const prof = await tf.profile(() => trainingStep(lm, ids, T, positions, answers));
      const byKernel = new Map<string, number>();
      for (const k of prof.kernels) {
        const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + t);
      }
      const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 8);
      console.log(`           ${prof.kernels.length} kernels; top: ${top.map(([n, t]) => `${n} ${t.toFixed(1)}`).join(', ')}`);
    }
    lm.dispose();
  }
  if (!torchOk) {
    console.log(`PyTorch: skipped (not installed: ${PYTHON} -c 'import torch' fails)`);
    return;
  }
  const torch = torchTimes(results.map((r) => r.mixer), c);
  console.log(`${torch.header}`);
  console.log('mixer        tfjs ms   torch ms   ratio');
  for (const r of results) {
    const t = torch.ms.get(r.mixer);
    if (t === undefined) { console.log(`${r.mixer.padEnd(10)} no PyTorch time`); continue; }
    console.log(`${r.mixer.padEnd(10)} ${r.ms.toFixed(1).padStart(8)} ${t.toFixed(1).padStart(10)} ${(r.ms / t).toFixed(2).padStart(7)}×`);
  }
}
