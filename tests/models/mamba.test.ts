import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { mamba } from '../../src/models/mamba.ts';
import { fastExp, selectiveScan, selectiveScanOps } from '../../src/models/mamba-scan.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { Hooks, SiteName } from '../../src/models/sites.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const cfgOf = (d: number, d_conv: number, extra: Partial<ModelConfig> = {}): ModelConfig =>
  ({ mixer: 'mamba', d_model: d, n_layers: 2, vocab_size: 16, d_conv, ...extra }) as ModelConfig;

// ---------------------------------------------------------------------------------------------------------------
// float64 references, written from architectures.md §4 without tfjs

/** h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t u_t B_t;  y_t = h_t · C_t + D u_t. Flat row-major arrays, shapes as in the scan. */
function refScan(B: number, T: number, E: number, S: number, u: ArrayLike<number>, dl: ArrayLike<number>, A: ArrayLike<number>,
  Bm: ArrayLike<number>, Cm: ArrayLike<number>, D: ArrayLike<number>): Float64Array {
  const y = new Float64Array(B * T * E);
  for (let b = 0; b < B; b++) {
    for (let e = 0; e < E; e++) {
      const h = new Float64Array(S);
      for (let t = 0; t < T; t++) {
        const i = (b * T + t) * E + e;
        let acc = 0;
        for (let s = 0; s < S; s++) {
          h[s] = Math.exp(dl[i]! * A[e * S + s]!) * h[s]! + dl[i]! * u[i]! * Bm[(b * T + t) * S + s]!;
          acc += h[s]! * Cm[(b * T + t) * S + s]!;
        }
        y[i] = acc + D[e]! * u[i]!;
      }
    }
  }
  return y;
}

const silu64 = (v: number) => v / (1 + Math.exp(-v));
const softplus64 = (v: number) => (v > 30 ? v : Math.log1p(Math.exp(v)));

/** The whole mixer in float64 from the parameter values; `xcOverride` replaces the pre-SiLU conv output. */
function refMamba(b: Built, u: Tensor3D, xcOverride?: ArrayLike<number>) {
  const { d_model: d, expand, d_state: S, dt_rank: R } = b.cfg;
  const K = b.cfg.d_conv!;
  const E = expand * d;
  const [B, T] = u.shape;
  const P = (n: string) => b.params.get(`backbone.layers.0.sequence_mixer.${n}`).dataSync();
  const W_in = P('in_proj.weight'), cw = P('conv1d.weight'), cb = P('conv1d.bias'), W_x = P('x_proj.weight');
  const W_dt = P('dt_proj.weight'), b_dt = P('dt_proj.bias'), A_log = P('A_log'), D = P('D'), W_out = P('out_proj.weight');
  const uu = u.dataSync();
  const N = B * T;
  const x = new Float64Array(N * E), z = new Float64Array(N * E);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < 2 * E; o++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += uu[n * d + i]! * W_in[o * d + i]!;
      if (o < E) x[n * E + o] = acc; else z[n * E + o - E] = acc;
    }
  }
  let xc = new Float64Array(N * E);
  if (K === 0) xc.set(x);
  else {
    for (let bb = 0; bb < B; bb++) for (let t = 0; t < T; t++) for (let c = 0; c < E; c++) {
      let acc = cb[c]!;
      for (let k = 0; k < K; k++) {
        const src = t - (K - 1) + k;
        if (src >= 0) acc += cw[c * K + k]! * x[(bb * T + src) * E + c]!;
      }
      xc[(bb * T + t) * E + c] = acc;
    }
  }
  if (xcOverride) xc = Float64Array.from(xcOverride);
  const xs = xc.map(silu64);
  const J = R + 2 * S;
  const dbc = new Float64Array(N * J);
  for (let n = 0; n < N; n++) for (let j = 0; j < J; j++) {
    let acc = 0;
    for (let c = 0; c < E; c++) acc += xs[n * E + c]! * W_x[j * E + c]!;
    dbc[n * J + j] = acc;
  }
  const delta = new Float64Array(N * E), Bm = new Float64Array(N * S), Cm = new Float64Array(N * S);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < E; c++) {
      let acc = b_dt[c]!;
      for (let r = 0; r < R; r++) acc += dbc[n * J + r]! * W_dt[c * R + r]!;
      delta[n * E + c] = softplus64(acc);
    }
    for (let s = 0; s < S; s++) { Bm[n * S + s] = dbc[n * J + R + s]!; Cm[n * S + s] = dbc[n * J + R + S + s]!; }
  }
  const A = Float64Array.from(A_log, (v) => -Math.exp(v));
  const y = refScan(B, T, E, S, xs, delta, A, Bm, Cm, D);
  const gate = z.map(silu64);
  const out = new Float64Array(N * d);
  for (let n = 0; n < N; n++) for (let o = 0; o < d; o++) {
    let acc = 0;
    for (let c = 0; c < E; c++) acc += y[n * E + c]! * gate[n * E + c]! * W_out[o * E + c]!;
    out[n * d + o] = acc;
  }
  return { x, xc, y, gate, out };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Random scan inputs of realistic ranges: Δ in softplus range, A = −exp(A_log) around −1…−S. */
function scanInputs(B: number, T: number, E: number, S: number, seed: number, deltaScale = 1) {
  return tf.tidy(() => ({
    u: tf.keep(tf.randomNormal([B, T, E], 0, 1, 'float32', seed) as Tensor3D),
    dl: tf.keep(tf.mul(tf.softplus(tf.randomNormal([B, T, E], -1, 1, 'float32', seed + 1)), deltaScale) as Tensor3D),
    A: tf.keep(tf.neg(tf.exp(tf.randomUniform([E, S], 0, Math.log(S), 'float32', seed + 2))) as Tensor2D),
    Bm: tf.keep(tf.randomNormal([B, T, S], 0, 1, 'float32', seed + 3) as Tensor3D),
    Cm: tf.keep(tf.randomNormal([B, T, S], 0, 1, 'float32', seed + 4) as Tensor3D),
    D: tf.keep(tf.randomNormal([E], 1, 0.5, 'float32', seed + 5)),
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// the scan

test('fastExp agrees with Math.exp to 1e-10 relative over the scan range, underflows to 0, keeps NaN', () => {
  let worst = 0;
  for (let i = 0; i <= 200000; i++) {
    const v = -740 + (i / 200000) * 750; // [−740, 10]
    worst = Math.max(worst, Math.abs(fastExp(v) / Math.exp(v) - 1));
  }
  for (const v of [0, -0, -1e-12, -1e-7, -Math.LN2 / 64, 1e-9]) worst = Math.max(worst, Math.abs(fastExp(v) / Math.exp(v) - 1));
  assert.ok(worst < 1e-10, `relative error ${worst}`);
  assert.equal(fastExp(0), 1);
  assert.equal(fastExp(-800), 0);
  assert.ok(Number.isNaN(fastExp(NaN)), 'fastExp(NaN) is not NaN');
});

for (const [name, scan] of [['fused selectiveScan', selectiveScan], ['tf-ops selectiveScanOps', selectiveScanOps]] as const) {
  test(`${name} equals a float64 JS reference of the recurrence within 1e-5`, () => {
    for (const [B, T, E, S, seed] of [[2, 7, 3, 4, 1], [1, 1, 2, 3, 2], [3, 12, 5, 16, 3]] as const) {
      const z = scanInputs(B, T, E, S, seed);
      const got = tf.tidy(() => scan(z.u, z.dl, z.A, z.Bm, z.Cm, z.D).dataSync());
      const want = refScan(B, T, E, S, z.u.dataSync(), z.dl.dataSync(), z.A.dataSync(), z.Bm.dataSync(), z.Cm.dataSync(), z.D.dataSync());
      const err = maxAbsDiff(got, want);
      assert.ok(err < 1e-5, `(B, T, E, S) = (${B}, ${T}, ${E}, ${S}): max |Δ| = ${err}`);
      tf.dispose(Object.values(z));
    }
  });
}

test('deltaSoftplus: both scans apply Δ = softplus(delta) inside, equal to the reference on softplus(delta)', () => {
  const [B, T, E, S] = [2, 6, 3, 4];
  const z = scanInputs(B, T, E, S, 31);
  const pre = tf.randomNormal([B, T, E], -2, 3, 'float32', 32) as Tensor3D; // spans softplus's linear and exp regimes
  const want = refScan(B, T, E, S, z.u.dataSync(), Array.from(pre.dataSync(), softplus64), z.A.dataSync(), z.Bm.dataSync(), z.Cm.dataSync(), z.D.dataSync());
  for (const scan of [selectiveScan, selectiveScanOps]) {
    const got = tf.tidy(() => scan(z.u, pre, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus: true }).dataSync());
    const scale = Math.max(1, ...want.map(Math.abs));
    assert.ok(maxAbsDiff(got, want) < 1e-5 * scale, `max |Δ| ${maxAbsDiff(got, want)} (scale ${scale})`);
  }
  tf.dispose([pre, ...Object.values(z)]);
});

test('the scan stays finite and exact where Δ·A is large and the cumulative decay underflows (no exp of cumsums)', () => {
  // Δ up to ~60 and A down to −16 over 64 steps: Σ|Δ·A| is far beyond float32's exp range; a cumsum-of-log-decays
  // form would overflow here (architectures.md §4 Pitfalls).
  const [B, T, E, S] = [2, 64, 3, 16];
  const z = scanInputs(B, T, E, S, 9, 20);
  for (const scan of [selectiveScan, selectiveScanOps]) {
    const got = tf.tidy(() => scan(z.u, z.dl, z.A, z.Bm, z.Cm, z.D).dataSync());
    assert.ok(got.every(Number.isFinite), 'non-finite output');
    const want = refScan(B, T, E, S, z.u.dataSync(), z.dl.dataSync(), z.A.dataSync(), z.Bm.dataSync(), z.Cm.dataSync(), z.D.dataSync());
    const scale = Math.max(...want.map(Math.abs));
    assert.ok(maxAbsDiff(got, want) < 1e-5 * scale, `max |Δ| ${maxAbsDiff(got, want)} at scale ${scale}`);
  }
  tf.dispose(Object.values(z));
});

test('the fused scan\'s hand-written gradient equals autodiff through the tf-ops scan (all six inputs, with and without deltaSoftplus)', () => {
  const [B, T, E, S] = [2, 9, 4, 5];
  const z = scanInputs(B, T, E, S, 21);
  const w = tf.randomNormal([B, T, E], 0, 1, 'float32', 22);
  const inputs = [z.u, z.dl, z.A, z.Bm, z.Cm, z.D];
  for (const deltaSoftplus of [false, true]) {
    if (deltaSoftplus) inputs[1] = tf.randomNormal([B, T, E], -2, 3, 'float32', 23); // pre-softplus values
    const gradsOf = (scan: typeof selectiveScan) =>
      tf.grads((u: Tensor, dl: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor) =>
        tf.sum(tf.mul(scan(u as Tensor3D, dl as Tensor3D, A as Tensor2D, Bm as Tensor3D, Cm as Tensor3D, D, { deltaSoftplus }), w)))(inputs);
    const fused = gradsOf(selectiveScan), ops = gradsOf(selectiveScanOps);
    ['u', 'Δ', 'A', 'B', 'C', 'D'].forEach((name, k) => {
      assert.deepEqual(fused[k]!.shape, inputs[k]!.shape, `shape of ∂${name}`);
      const want = ops[k]!.dataSync();
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      const err = maxAbsDiff(fused[k]!.dataSync(), want);
      assert.ok(err < 2e-5 * scale, `deltaSoftplus ${deltaSoftplus}, ∂${name}: max |Δ| = ${err} (scale ${scale})`);
    });
    tf.dispose([...fused, ...ops]);
  }
  tf.dispose([w, ...inputs, z.dl]);
});

test('selectiveScan rejects inputs whose shapes do not fit', () => {
  const z = scanInputs(1, 3, 2, 4, 5);
  assert.throws(() => selectiveScan(z.u, z.dl, z.A, z.Cm.slice([0, 0, 0], [1, 3, 3]) as Tensor3D, z.Cm, z.D), /do not fit/);
  tf.dispose(Object.values(z));
});

// ---------------------------------------------------------------------------------------------------------------
// the mixer

const layer0 = 'backbone.layers.0.sequence_mixer.';

for (const K of [0, 1, 2, 3, 4]) {
  test(`d_conv ${K}: parameter names, order and shapes equal state-dict.md §5.6 / §6.1 (d = 32)`, () => {
    const b = buildMixer(mamba, cfgOf(32, K));
    const d = 32, E = 64, S = 16, R = 2;
    const want: [string, number[]][] = [
      ['A_log', [E, S]], ['D', [E]], ['in_proj.weight', [2 * E, d]],
      ['conv1d.weight', [E, 1, K === 0 ? 4 : K]], ['conv1d.bias', [E]], // d_conv 0: tinylang keeps an unused K = 4 conv
      ['x_proj.weight', [R + 2 * S, E]], ['dt_proj.weight', [E, R]], ['dt_proj.bias', [E]], ['out_proj.weight', [d, E]],
    ];
    assert.deepEqual([...b.params.vars.entries()].map(([n, v]) => [n, v.shape]), want.map(([n, s]) => [layer0 + n, s]));
    b.params.dispose();
  });
}

test('parameter count at d = 64 is 32 640 per layer, matching state-dict.md §9 (655 616 for the 2-layer tinylang model)', () => {
  const b = buildMixer(mamba, cfgOf(64, 4));
  assert.equal(b.params.count(), 32640);
  // 2 mixers + 2 RMSNorm [d] + embedding [8196, d] + positions [1024, d] + ln_f [d]×2
  assert.equal(2 * 32640 + 2 * 64 + 8196 * 64 + 1024 * 64 + 2 * 64, 655616);
  b.params.dispose();
});

test('initialisation follows architectures.md §4 (A_log, D, dt bias range, uniform bounds)', () => {
  const b = buildMixer(mamba, cfgOf(64, 3, { n_layers: 3 }));
  const E = 128, S = 16, R = 4, K = 3;
  const get = (n: string) => b.params.get(layer0 + n).dataSync();
  const A_log = get('A_log');
  assert.ok(maxAbsDiff(A_log, Array.from(A_log, (_, i) => Math.log((i % S) + 1))) < 1e-6, 'A_log ≠ log(1..S) per row');
  assert.equal(A_log.length, E * S);
  assert.ok(get('D').every((v) => v === 1));
  const dt = Array.from(get('dt_proj.bias'), softplus64);
  assert.ok(Math.min(...dt) >= 1e-3 * (1 - 1e-4) && Math.max(...dt) <= 0.1 * (1 + 1e-4), `softplus(dt bias) in [${Math.min(...dt)}, ${Math.max(...dt)}]`);
  assert.ok(Math.min(...dt) < 3e-3 && Math.max(...dt) > 3e-2, 'dt should spread log-uniformly over [1e-3, 1e-1]');
  const maxAbs = (n: string) => Math.max(...Array.from(get(n), Math.abs));
  const bounds: [string, number][] = [
    ['in_proj.weight', 1 / Math.sqrt(64)], ['conv1d.weight', 1 / Math.sqrt(K)], ['conv1d.bias', 1 / Math.sqrt(K)],
    ['x_proj.weight', 1 / Math.sqrt(E)], ['dt_proj.weight', R ** -0.5], ['out_proj.weight', 1 / Math.sqrt(E) / Math.sqrt(3)],
  ];
  for (const [n, bound] of bounds) {
    const m = maxAbs(n);
    assert.ok(m <= bound && m > 0.8 * bound, `${n}: max |w| ${m} vs bound ${bound}`);
  }
  b.params.dispose();
});

for (const K of [0, 1, 2, 3, 4]) {
  test(`d_conv ${K}: forward equals a float64 JS reference of the whole mixer`, () => {
    const b = buildMixer(mamba, cfgOf(8, K, { seed: 3 + K }));
    const u = randomInput(2, 6, 8, 5);
    const got = tf.tidy(() => b.run(u).dataSync());
    const want = refMamba(b, u).out;
    const scale = Math.max(...Array.from(want, Math.abs));
    assert.ok(scale > 1e-3, 'reference output is degenerate');
    assert.ok(maxAbsDiff(got, want) < 1e-5 * Math.max(1, scale), `max |Δ| ${maxAbsDiff(got, want)} (scale ${scale})`);
    b.params.dispose();
  });
}

test('d_conv 0 ignores conv1d entirely; d_conv 1 mixes no tokens (per-channel scale + bias)', () => {
  const b0 = buildMixer(mamba, cfgOf(8, 0));
  const u = randomInput(1, 5, 8, 2);
  tf.tidy(() => {
    const before = b0.run(u).dataSync();
    b0.params.get(layer0 + 'conv1d.weight').assign(tf.randomNormal([16, 1, 4], 0, 1, 'float32', 1));
    b0.params.get(layer0 + 'conv1d.bias').assign(tf.randomNormal([16], 0, 1, 'float32', 2));
    assert.equal(maxAbsDiff(b0.run(u).dataSync(), before), 0);
  });
  const b1 = buildMixer(mamba, cfgOf(8, 1));
  const rec: Record<string, Float32Array> = {};
  const hooks: Hooks = { record: (_l, site, x) => { rec[site] = x.dataSync() as Float32Array; } };
  tf.tidy(() => b1.run(u, hooks));
  const w = b1.params.get(layer0 + 'conv1d.weight').dataSync(), bias = b1.params.get(layer0 + 'conv1d.bias').dataSync();
  const x = rec.conv_input!, xc = rec.conv_output!;
  const err = maxAbsDiff(xc, Array.from(x, (v, i) => w[i % 16]! * v + bias[i % 16]!));
  assert.ok(err < 1e-6, `conv_output ≠ w·x + b per channel: max |Δ| ${err}`);
  b0.params.dispose();
  b1.params.dispose();
});

for (const K of [0, 1, 2, 4]) {
  test(`d_conv ${K}: gradient check (finite differences, every parameter${K === 0 ? ' except the unused conv1d' : ''})`, () => {
    const b = buildMixer(mamba, cfgOf(8, K, { d_state: 4, seed: 11 }));
    const x = randomInput(2, 6, 8, 3);
    const skip = K === 0 ? [layer0 + 'conv1d.weight', layer0 + 'conv1d.bias'] : [];
    gradCheck(b, x, { skip });
    // At init Δ ≈ 1e-3…0.1, so exp(Δ·A) ≈ 1 and ∂/∂A_log is tiny; check again with Δ ≈ 0.3…3, where the decays bite.
    b.params.get(layer0 + 'dt_proj.bias').assign(tf.randomUniform([16], -1, 3, 'float32', 12));
    gradCheck(b, x, { skip });
    b.params.dispose();
  });
}

test('d_conv 0: the unused conv1d parameters get no gradient, all others do', () => {
  const b = buildMixer(mamba, cfgOf(8, 0));
  const x = randomInput(2, 4, 8, 3);
  const { grads } = tf.variableGrads(() => tf.sum(b.run(x)) as tf.Scalar);
  const withGrad = [...b.params.vars].filter(([, v]) => grads[v.name] !== undefined).map(([n]) => n);
  assert.deepEqual(withGrad, [...b.params.vars.keys()].filter((n) => !n.includes('conv1d')));
  tf.dispose(Object.values(grads));
  b.params.dispose();
});

for (const K of [0, 1, 2, 3, 4]) {
  test(`d_conv ${K}: causal (changing step t changes nothing before t)`, () => {
    const b = buildMixer(mamba, cfgOf(8, K));
    const x = randomInput(2, 7, 8, 4);
    for (const t of [0, 3, 6]) assertCausal(b, x, t);
    b.params.dispose();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// patch sites

function allCells(B: number, T: number) {
  const rows = new Int32Array(B * T), positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) { rows[b * T + t] = b; positions[b * T + t] = t; }
  return { rows, positions };
}

test('sites: conv_input, conv_output (pre-SiLU), ssm_output (y before the gate) and gate (SiLU z) hold what they name', () => {
  for (const K of [0, 2, 4]) {
    const b = buildMixer(mamba, cfgOf(8, K, { seed: 7 }));
    const u = randomInput(2, 5, 8, 6);
    const rec: Partial<Record<SiteName, Float32Array>> = {};
    const order: SiteName[] = [];
    tf.tidy(() => b.run(u, { record: (_l, site, x) => { order.push(site); assert.deepEqual(x.shape, [2, 5, 16]); rec[site] = x.dataSync() as Float32Array; } }));
    assert.deepEqual(order, ['conv_input', 'conv_output', 'ssm_output', 'gate']);
    const ref = refMamba(b, u);
    for (const [site, want] of [['conv_input', ref.x], ['conv_output', ref.xc], ['ssm_output', ref.y], ['gate', ref.gate]] as const) {
      assert.ok(maxAbsDiff(rec[site]!, want) < 1e-5, `d_conv ${K}, ${site}: max |Δ| ${maxAbsDiff(rec[site]!, want)}`);
    }
    b.params.dispose();
  }
});

test('patching conv_output overwrites the pre-SiLU conv output: zeros give x̃ = SiLU(0) = 0, values v give x̃ = SiLU(v)', () => {
  const [B, T, E] = [2, 5, 16];
  const b = buildMixer(mamba, cfgOf(8, 4, { seed: 8 }));
  const u = randomInput(B, T, 8, 9);
  const { rows, positions } = allCells(B, T);
  for (const fill of ['zeros', 'random'] as const) {
    const v = fill === 'zeros' ? tf.zeros([B * T, E]) as Tensor2D : tf.randomNormal([B * T, E], 0, 2, 'float32', 10) as Tensor2D;
    const got = tf.tidy(() => b.run(u, { patches: [{ layer: 0, site: 'conv_output', rows, positions, values: v }] }).dataSync());
    const want = refMamba(b, u, v.dataSync()).out;
    assert.ok(maxAbsDiff(got, want) < 1e-5, `${fill}: max |Δ| ${maxAbsDiff(got, want)}`);
    if (fill === 'zeros') {
      // x̃ = SiLU(0) = 0 ⇒ B = C = 0 and the D skip is 0, so the output is exactly 0. (A post-SiLU site would give the
      // same here; the random values above are what tell pre- and post-SiLU apart.)
      const clean = tf.tidy(() => b.run(u).dataSync());
      assert.ok(maxAbsDiff(clean, got) > 1e-3, 'the patch had no effect');
      assert.ok(got.every((o) => o === 0), 'output is not exactly 0');
    }
    v.dispose();
  }
  b.params.dispose();
});

test('patching every site with its own recorded value changes nothing (bit-exact)', () => {
  const [B, T] = [2, 5];
  const b = buildMixer(mamba, cfgOf(8, 4, { seed: 12 }));
  const u = randomInput(B, T, 8, 13);
  const rec = new Map<SiteName, Tensor2D>();
  const clean = tf.tidy(() => b.run(u, { record: (_l, site, x) => { rec.set(site, tf.keep(x.reshape([B * T, -1]) as Tensor2D)); } }).dataSync());
  const { rows, positions } = allCells(B, T);
  const patches = [...rec.entries()].map(([site, values]) => ({ layer: 0, site, rows, positions, values }));
  assert.equal(patches.length, 4);
  const patched = tf.tidy(() => b.run(u, { patches }).dataSync());
  assert.equal(maxAbsDiff(patched, clean), 0);
  tf.dispose([...rec.values()]);
  b.params.dispose();
});

test('d_conv must be a non-negative integer', () => {
  assert.throws(() => buildMixer(mamba, cfgOf(8, -1)), /d_conv/);
  assert.throws(() => buildMixer(mamba, cfgOf(8, 1.5)), /d_conv/);
});
