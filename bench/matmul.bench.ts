/**
 * The floor under issue 4's speed target: the matrix products of one 2-layer Attention training step at the default
 * study's size (d 64, 352 tokens = batch 32 × L 11), timed one by one on the best tfjs backend here and in PyTorch
 * (one thread, OpenBLAS) in the same run. Forward, input gradient and weight gradient of the four linears per layer
 * (qkv, out, fc1, fc2), with the transposes made explicit as our models do (wasm runs XNNPACK only for plain products).
 * Compare the tfjs total with 1.5× the PyTorch step in `npm run bench -- models`. Prints figures; asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import { tf, initBackend, describeBackend } from '../src/models/tf.ts';

const N = 352, D = 64, LAYERS = 2, REPS = 200;
/** [m, k, n] of every product in one layer's forward + backward: y = x·W, dx = dy·Wᵀ, dW = xᵀ·dy. */
const PRODUCTS: [string, number, number, number][] = [];
for (const [name, din, dout] of [['qkv', D, 3 * D], ['out', D, D], ['fc1', D, 4 * D], ['fc2', 4 * D, D]] as const) {
  PRODUCTS.push([`${name} y`, N, din, dout], [`${name} dx`, N, dout, din], [`${name} dW`, din, N, dout]);
}
const PYTHON = '/usr/bin/python3';

const TORCH = `
import json, sys, time, torch
torch.set_num_threads(1)
out = []
for m, k, n in json.loads(sys.argv[1]):
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(20): a @ b
    t = time.perf_counter()
    for _ in range(${REPS}): a @ b
    out.append((time.perf_counter() - t) / ${REPS} * 1e6)
print(json.dumps(out))
`;

function torchMicros(): number[] | null {
  const r = spawnSync(PYTHON, ['-c', TORCH, JSON.stringify(PRODUCTS.map((p) => p.slice(1)))], {
    encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  return r.status === 0 ? (JSON.parse(r.stdout) as number[]) : null;
}

export async function run(): Promise<void> {
  const info = await initBackend('auto');
  console.log(`backend: ${describeBackend(info)}; the products of one Attention step (d ${D}, ${N} tokens, ${LAYERS} layers), mean of ${REPS} after 20 warm-up`);
  // wasm code tiers up in the background: warm every shape for a second before timing any
  const warm = PRODUCTS.map(([, m, k, n]) => [tf.randomNormal([m, k]), tf.randomNormal([k, n])] as const);
  for (const t0 = performance.now(); performance.now() - t0 < 1000;) for (const [a, b] of warm) tf.matMul(a, b).dispose();
  warm.forEach(([a, b]) => (a.dispose(), b.dispose()));
  const tfjs: number[] = [];
  for (const [, m, k, n] of PRODUCTS) {
    const a = tf.randomNormal([m, k]), b = tf.randomNormal([k, n]);
    for (let i = 0; i < 20; i++) tf.matMul(a, b).dispose();
    const t0 = performance.now();
    for (let i = 0; i < REPS; i++) {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    }
    tfjs.push(((performance.now() - t0) / REPS) * 1000);
    a.dispose();
    b.dispose();
  }
  const torch = torchMicros();
  const gflops = (m: number, k: number, n: number, us: number) => ((2 * m * k * n) / us / 1e3).toFixed(1);
  console.log(`${'product'.padEnd(8)} ${'m×k×n'.padEnd(12)} ${'tfjs µs'.padStart(8)} ${'GFLOP/s'.padStart(8)}   ${torch ? `${'torch µs'.padStart(8)} ${'GFLOP/s'.padStart(8)}  ratio` : 'PyTorch: skipped (not installed)'}`);
  PRODUCTS.forEach(([name, m, k, n], i) => {
    const t = torch?.[i];
    console.log(`${name.padEnd(8)} ${`${m}×${k}×${n}`.padEnd(12)} ${tfjs[i]!.toFixed(0).padStart(8)} ${gflops(m, k, n, tfjs[i]!).padStart(8)}   ${t ? `${t.toFixed(0).padStart(8)} ${gflops(m, k, n, t).padStart(8)}  ${(tfjs[i]! / t).toFixed(2)}×` : ''}`);
  });
  const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
  const flop = LAYERS * sum(PRODUCTS.map(([, m, k, n]) => 2 * m * k * n));
  const tfjsMs = (LAYERS * sum(tfjs)) / 1000;
  console.log(`one step's products (${(flop / 1e6).toFixed(0)} MFLOP): tfjs ${tfjsMs.toFixed(1)} ms` +
    (torch ? `, PyTorch ${((LAYERS * sum(torch)) / 1000).toFixed(1)} ms (${(sum(tfjs) / sum(torch)).toFixed(2)}×)` : '') +
    `; issue 4's target is 1.5× PyTorch's whole step (bench models, default size)`);
}
