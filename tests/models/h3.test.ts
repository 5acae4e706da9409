/**
 * H3 (src/models/h3.ts): state-dict names and shapes, init, the convolution form against zoology's step-by-step
 * recurrence (issue 4 "H3 Toeplitz vs direct"), the S4D kernel against its complex closed form, causality, gradients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf, type Tensor } from '../../src/models/tf.ts';
import { h3, s4dKernel, HEAD_DIM } from '../../src/models/h3.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const fixture = JSON.parse(readFileSync(new URL('./fixtures/tinylang-state-dict.json', import.meta.url), 'utf8')) as {
  config: { d_model: number; n_positions: number };
  keys: Record<string, [string, number[]][]>;
};
const cfg = (over: Partial<ModelConfig> = {}): ModelConfig => ({ mixer: 'h3', d_model: 6, n_layers: 2, vocab_size: 5, n_positions: 16, h3_d_state: 8, ...over });
const P = (name: string) => `backbone.layers.0.sequence_mixer.${name}`;
const arr = (b: Built, name: string) => Float64Array.from(b.params.get(P(name)).dataSync());

/**
 * Give every parameter a non-trivial value: projections and skips N(0, 0.5), a dense shift B, faster and varied
 * modes (Δ up to 0.5, random frequencies), a non-unit complex B — so every path of the kernels matters.
 */
function randomise(b: Built, seed = 20): void {
  let k = 0;
  const draw = (name: string, f: (v: tf.Variable) => Tensor) => {
    const v = b.params.get(P(name));
    v.assign(tf.tidy(() => f(v)));
  };
  for (const n of ['ssm_k_D', 'D', 'q_proj.weight', 'q_proj.bias', 'k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias',
    'output_linear.weight', 'output_linear.bias', 'ssm_k_kernel.kernel.B', 'ssm_k_kernel.kernel.C', 'kernel.kernel.C', 'kernel.kernel.B']) {
    draw(n, (v) => tf.randomNormal(v.shape, 0, 0.5, 'float32', seed + k++));
  }
  draw('kernel.kernel.log_dt', (v) => tf.randomUniform(v.shape, Math.log(0.05), Math.log(0.5), 'float32', seed + k++));
  draw('kernel.kernel.inv_A_real', (v) => tf.randomUniform(v.shape, -2, 0.5, 'float32', seed + k++));
  draw('kernel.kernel.A_imag', (v) => tf.randomUniform(v.shape, -4, 4, 'float32', seed + k++));
}

/** Complex numbers as [re, im]. */
type Cx = [number, number];
const cmul = (a: Cx, b: Cx): Cx => [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]];
const cdiv = (a: Cx, b: Cx): Cx => { const n = b[0] * b[0] + b[1] * b[1]; return [(a[0] * b[0] + a[1] * b[1]) / n, (a[1] * b[0] - a[0] * b[1]) / n]; };

/**
 * zoology's `H3.step` run over the sequence in float64 (h3.py, ss_kernel_shift.py `step`, ss_kernel_diag.py
 * `_setup_step`/`step`): the shift SSM's state is the FIFO s ← shift(s) + B_s·k, output C_s·s; the diagonal SSM's
 * state is x ← dA·x + dB·kv with dA = (1 + ΔA/2)/(1 − ΔA/2), dB = B·Δ/(1 − ΔA/2), output 2·Re(C·x); skips D.
 */
function recurrence(b: Built, u: Float64Array, B: number, T: number): Float64Array {
  const d = b.cfg.d_model, N = b.cfg.h3_d_state, H = d / HEAD_DIM, M = Math.floor(N / 2);
  const W = (n: string) => arr(b, n);
  const qW = W('q_proj.weight'), qB = W('q_proj.bias'), kW = W('k_proj.weight'), kB = W('k_proj.bias');
  const vW = W('v_proj.weight'), vB = W('v_proj.bias'), oW = W('output_linear.weight'), oB = W('output_linear.bias');
  const kD = W('ssm_k_D'), D = W('D'), sB = W('ssm_k_kernel.kernel.B'), sC = W('ssm_k_kernel.kernel.C');
  const C = W('kernel.kernel.C'), Bc = W('kernel.kernel.B'), logDt = W('kernel.kernel.log_dt'), iar = W('kernel.kernel.inv_A_real'), aim = W('kernel.kernel.A_imag');
  const dA: Cx[] = [], dB: Cx[] = [], dC: Cx[] = [];
  for (let h = 0; h < H; h++) for (let m = 0; m < M; m++) {
    const dt = Math.exp(logDt[h]!), i = h * M + m;
    const half: Cx = [(-Math.exp(iar[i]!) * dt) / 2, (aim[i]! * dt) / 2];
    const den: Cx = [1 - half[0], -half[1]];
    dA.push(cdiv([1 + half[0], half[1]], den));
    dB.push(cdiv([Bc[2 * i]! * dt, Bc[2 * i + 1]! * dt], den));
    dC.push([C[2 * i]!, C[2 * i + 1]!]);
  }
  const lin = (Wt: Float64Array, bias: Float64Array, x: Float64Array, off: number, n: number) =>
    Float64Array.from({ length: n }, (_, o) => { let s = bias[o]!; for (let j = 0; j < n; j++) s += Wt[o * n + j]! * x[off + j]!; return s; });
  const out = new Float64Array(B * T * d);
  for (let bi = 0; bi < B; bi++) {
    const sState = Array.from({ length: d }, () => new Float64Array(N));
    const xState: Cx[][] = Array.from({ length: 4 * H }, () => Array.from({ length: M }, (): Cx => [0, 0]));
    for (let t = 0; t < T; t++) {
      const off = (bi * T + t) * d;
      const q = lin(qW, qB, u, off, d), k = lin(kW, kB, u, off, d), v = lin(vW, vB, u, off, d);
      const k2 = new Float64Array(d);
      for (let c = 0; c < d; c++) {
        const s = sState[c]!;
        for (let n = N - 1; n > 0; n--) s[n] = s[n - 1]! + sB[c * N + n]! * k[c]!;
        s[0] = sB[c * N]! * k[c]!;
        let y = 0;
        for (let n = 0; n < N; n++) y += sC[c * N + n]! * s[n]!;
        k2[c] = y + kD[c]! * k[c]!;
      }
      const o = new Float64Array(d); // zoology order: channel j·H + h
      for (let h = 0; h < H; h++) for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
        const kv = k2[2 * h + i]! * v[2 * h + j]!;
        const x = xState[h * 4 + i * 2 + j]!;
        let y = 0;
        for (let m = 0; m < M; m++) {
          const a = cmul(dA[h * M + m]!, x[m]!), bb = dB[h * M + m]!;
          x[m] = [a[0] + bb[0] * kv, a[1] + bb[1] * kv];
          y += 2 * cmul(dC[h * M + m]!, x[m]!)[0];
        }
        o[j * H + h] = o[j * H + h]! + q[2 * h + i]! * (y + D[h]! * kv);
      }
      out.set(lin(oW, oB, o, 0, d), off);
    }
  }
  return out;
}

const maxRel = (got: Float32Array | Float64Array, want: Float64Array) => {
  let m = 0, s = 0;
  for (let i = 0; i < want.length; i++) { m = Math.max(m, Math.abs(got[i]! - want[i]!)); s = Math.max(s, Math.abs(want[i]!)); }
  return { err: m / s, scale: s };
};

test('parameter names, shapes and order equal state-dict.md §5.4 (tinylang fixture, d = 16, N = P = 24)', () => {
  const { d_model, n_positions } = fixture.config;
  const b = buildMixer(h3, { mixer: 'h3', d_model, n_layers: 2, vocab_size: 37, n_positions });
  const want = fixture.keys['h3']!.filter(([n]) => n.startsWith('backbone.layers.0.sequence_mixer.'));
  assert.deepEqual([...b.params.vars].map(([n, v]) => [n, v.shape]), want);
  assert.equal(want.length, 17);
  b.params.dispose();
});

test('init: B_s = e₁, B = 1, inv_A_real = log ½, A_imag = −πm, Δ in [1e-3, 1e-1], projections N(0, 0.02) with zero bias', () => {
  const b = buildMixer(h3, cfg({ d_model: 8, h3_d_state: 10 }));
  const d = 8, N = 10, H = 4, M = 5;
  const sB = arr(b, 'ssm_k_kernel.kernel.B');
  for (let c = 0; c < d; c++) for (let n = 0; n < N; n++) assert.equal(sB[c * N + n], n === 0 ? 1 : 0);
  const sC = arr(b, 'ssm_k_kernel.kernel.C');
  assert.ok(sC.every((x) => Math.abs(x) <= 1 / Math.sqrt(N)) && sC.some((x) => x !== 0), 'C_s ~ U(±1/√N)');
  const Bc = arr(b, 'kernel.kernel.B');
  for (let i = 0; i < H * M; i++) assert.deepEqual([Bc[2 * i], Bc[2 * i + 1]], [1, 0]);
  assert.ok(arr(b, 'kernel.kernel.inv_A_real').every((x) => Math.abs(x - Math.log(0.5)) < 1e-6));
  const ai = arr(b, 'kernel.kernel.A_imag');
  for (let h = 0; h < H; h++) for (let m = 0; m < M; m++) assert.ok(Math.abs(ai[h * M + m]! + Math.PI * m) < 1e-5);
  assert.ok(arr(b, 'kernel.kernel.log_dt').every((x) => x >= Math.log(1e-3) - 1e-6 && x <= Math.log(1e-1) + 1e-6));
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'output_linear']) {
    const w = arr(b, `${n}.weight`);
    const std = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
    assert.ok(std > 0.01 && std < 0.03, `${n}.weight std ${std}`); // output_linear is not rescaled (architectures.md §1.6)
    assert.ok(arr(b, `${n}.bias`).every((x) => x === 0));
  }
  b.params.dispose();
});

for (const [label, over, B, T] of [
  ['N < T (shift kernel shorter than the sequence)', { d_model: 6, h3_d_state: 8, n_positions: 16 }, 2, 12],
  ['odd N, T < N', { d_model: 4, h3_d_state: 7, n_positions: 16 }, 2, 5],
  ['T = 37, l_max = 64 = N', { d_model: 4, h3_d_state: 64, n_positions: 64 }, 2, 37],
] as const) {
  test(`Toeplitz vs direct: the materialised-kernel convolution equals zoology's step recurrence (${label})`, () => {
    const b = buildMixer(h3, cfg(over));
    randomise(b);
    const x = randomInput(B, T, b.cfg.d_model, 5);
    const want = recurrence(b, Float64Array.from(x.dataSync()), B, T);
    const { err, scale } = maxRel(b.run(x).dataSync() as Float32Array, want);
    assert.ok(scale > 0.1, `reference output is degenerate (max ${scale})`);
    assert.ok(err < 2e-5, `relative error ${err}`);
    b.params.dispose();
  });
}

test('S4D kernel at tinylang sizes (M = 512 modes, T = 37, init values) equals 2·Re Σ C̃·λ^l in float64', () => {
  const H = 4, M = 512, T = 37;
  const logDt = tf.randomUniform([H], Math.log(1e-3), Math.log(1e-1), 'float32', 1);
  const C = tf.randomNormal([1, H, M, 2], 0, Math.SQRT1_2, 'float32', 2);
  const Bc = tf.randomNormal([H, M, 2], 1, 0.1, 'float32', 3);
  const iar = tf.fill([H, M], Math.log(0.5));
  const ai = tf.tensor2d(Float32Array.from({ length: H * M }, (_, i) => -Math.PI * (i % M)), [H, M]);
  const got = s4dKernel(logDt, C, Bc, iar, ai, T).dataSync();
  const f64 = (t: Tensor) => Float64Array.from(t.dataSync());
  const ld = f64(logDt), c = f64(C), bb = f64(Bc), ar = f64(iar), am = f64(ai);
  const want = new Float64Array(H * T);
  for (let h = 0; h < H; h++) for (let m = 0; m < M; m++) {
    const dt = Math.exp(ld[h]!), i = h * M + m;
    const half: Cx = [(-Math.exp(ar[i]!) * dt) / 2, (am[i]! * dt) / 2];
    const den: Cx = [1 - half[0], -half[1]];
    const lam = cdiv([1 + half[0], half[1]], den);
    const ct = cdiv(cmul(cmul([c[2 * i]!, c[2 * i + 1]!], [bb[2 * i]!, bb[2 * i + 1]!]), [dt, 0]), den);
    // λ^l from its polar form: exp(l·log|λ|)·(cos lθ, sin lθ)
    const r = Math.hypot(lam[0], lam[1]), th = Math.atan2(lam[1], lam[0]);
    for (let l = 0; l < T; l++) want[h * T + l] = want[h * T + l]! + 2 * cmul(ct, [r ** l * Math.cos(l * th), r ** l * Math.sin(l * th)])[0];
  }
  const { err } = maxRel(got as Float32Array, want);
  assert.ok(err < 1e-5, `relative error ${err}`);
});

test('causal: changing the input at t changes no output before t (exactly), and some output at or after t', () => {
  const b = buildMixer(h3, cfg());
  randomise(b);
  const x = randomInput(2, 11, 6, 3);
  for (const t of [0, 5, 10]) assertCausal(b, x, t);
  b.params.dispose();
});

test('gradients of every parameter match finite differences', () => {
  const b = buildMixer(h3, cfg({ d_model: 4, h3_d_state: 6, n_positions: 8 }));
  randomise(b, 40);
  gradCheck(b, randomInput(2, 7, 4, 9));
  b.params.dispose();
});

test('sequence longer than l_max = n_positions is refused', () => {
  const b = buildMixer(h3, cfg({ n_positions: 8 }));
  assert.throws(() => b.run(randomInput(1, 9, 6, 1)), /exceeds l_max/);
  b.params.dispose();
});
