import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { deltaNet, deltaRule, makeDeltaNet, type DeltaRuleForm } from '../../src/models/delta_net.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { Patch, SiteName } from '../../src/models/sites.ts';
import { assertCausal, buildMixer, gradCheck, randomInput, useBackend, type Built } from './harness.ts';

await useBackend('cpu');

const config = (over: Partial<ModelConfig> = {}): ModelConfig =>
  ({ mixer: 'delta_net', d_model: 8, n_layers: 2, vocab_size: 16, ...over }) as ModelConfig;

const FORMS: DeltaRuleForm[] = ['recurrent', 'chunked', 'fused'];

/** max |a − b| / max(1, max |b|). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, m = 1;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(b[i]!)); }
  return d / m;
}

/** Deterministic float64 normals (Box–Muller over a small LCG), independent of TF. */
function normals(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/**
 * Float64 reference of the delta rule (fla naive.py `delta_rule_recurrence`), written from the equations:
 * qkv (B, T, 3H, Dh) packed as the mixer passes it, β (B, T, H) → o (B, T, H, Dh), o_t = S_tᵀ q_t.
 */
function deltaRuleRef(qkv: Float64Array, beta: Float64Array, B: number, T: number, H: number, Dh: number): Float64Array {
  const o = new Float64Array(B * T * H * Dh);
  const vec = (b: number, t: number, role: number, h: number) => qkv.subarray(((b * T + t) * 3 * H + role * H + h) * Dh, ((b * T + t) * 3 * H + role * H + h + 1) * Dh);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const S = Array.from({ length: Dh }, () => new Float64Array(Dh)); // S[i][j], i: key, j: value
    for (let t = 0; t < T; t++) {
      const q = vec(b, t, 0, h), k = vec(b, t, 1, h), v = vec(b, t, 2, h), bt = beta[(b * T + t) * H + h]!;
      const vOld = new Float64Array(Dh);
      for (let j = 0; j < Dh; j++) for (let i = 0; i < Dh; i++) vOld[j]! += S[i]![j]! * k[i]!;
      for (let i = 0; i < Dh; i++) for (let j = 0; j < Dh; j++) S[i]![j]! += k[i]! * bt * (v[j]! - vOld[j]!);
      for (let j = 0; j < Dh; j++) {
        let acc = 0;
        for (let i = 0; i < Dh; i++) acc += S[i]![j]! * q[i]!;
        o[((b * T + t) * H + h) * Dh + j] = acc;
      }
    }
  }
  return o;
}

/**
 * Redraw every parameter from N(0, 0.5²) (1-D ones around 1). At the init (N(0, 0.02) projections) q and k are
 * tiny vectors that the L2 norm blows up to unit length, so a finite-difference step along a unit-variance direction
 * is not small next to the weights. Even widened, the L2 norm and the output RMSNorm curve enough that a step of 1e-2
 * is off by a few % on q_proj (measured: the central difference converges to autodiff as the step shrinks to 1e-3),
 * so the checks below use eps = 1e-3.
 */
function widen(b: Built, seed = 40): void {
  let s = seed;
  for (const v of b.params.vars.values()) v.assign(tf.tensor(Float32Array.from(normals(v.size, s++)).map((z) => 0.5 * z + (v.rank === 1 ? 1 : 0)), v.shape));
}

/** Random rule inputs: unit-norm q (then scaled by Dh^−½) and k, raw v, β ∈ (0, 1). */
function ruleInputs(B: number, T: number, H: number, Dh: number, seed: number) {
  const qkv = normals(B * T * 3 * H * Dh, seed);
  for (let r = 0; r < B * T * 3 * H; r++) {
    const role = Math.floor((r % (3 * H)) / H);
    if (role === 2) continue;
    const x = qkv.subarray(r * Dh, (r + 1) * Dh);
    const n = Math.hypot(...x);
    for (let i = 0; i < Dh; i++) x[i] = x[i]! / n / (role === 0 ? Math.sqrt(Dh) : 1);
  }
  const beta = normals(B * T * H, seed + 1).map((z) => 1 / (1 + Math.exp(-2 * z)));
  return { qkv, beta };
}

test('delta_net parameters: exactly the names, order and shapes of state-dict.md §5.7 / Appendix', () => {
  const b = buildMixer(deltaNet, config({ d_model: 8, delta_heads: 2 }), 1);
  const P = 'backbone.layers.1.sequence_mixer.';
  assert.deepEqual([...b.params.vars.entries()].map(([n, v]) => [n, v.shape]), [
    [`${P}q_proj.weight`, [8, 8]],
    [`${P}k_proj.weight`, [8, 8]],
    [`${P}v_proj.weight`, [8, 8]],
    [`${P}b_proj.weight`, [2, 8]],
    [`${P}q_conv1d.weight`, [8, 1, 4]],
    [`${P}k_conv1d.weight`, [8, 1, 4]],
    [`${P}v_conv1d.weight`, [8, 1, 4]],
    [`${P}o_norm.weight`, [4]],
    [`${P}o_proj.weight`, [8, 8]],
  ]);
  // tinylang's 1-head variant with conv_size = d_conv; d_conv 0 is fla's use_short_conv=False (no conv weights).
  const one = buildMixer(deltaNet, config({ d_model: 8, delta_heads: 1, d_conv: 3 }));
  assert.deepEqual(one.params.vars.get('backbone.layers.0.sequence_mixer.q_conv1d.weight')!.shape, [8, 1, 3]);
  assert.deepEqual(one.params.vars.get('backbone.layers.0.sequence_mixer.o_norm.weight')!.shape, [8]);
  const none = buildMixer(deltaNet, config({ d_conv: 0 }));
  assert.equal([...none.params.vars.keys()].filter((n) => n.includes('conv1d')).length, 0);
  assert.throws(() => buildMixer(deltaNet, config({ d_model: 9, delta_heads: 2 })), /not divisible/);
});

test('delta_net init: Linear N(0, 0.02) incl. o_proj (not rescaled), convs U(±1/√K), o_norm 1 (architectures.md §1.6)', () => {
  const b = buildMixer(deltaNet, config({ d_model: 64 }));
  const get = (n: string) => Array.from(b.params.get(`backbone.layers.0.sequence_mixer.${n}`).dataSync());
  for (const n of ['q_proj.weight', 'o_proj.weight']) {
    const w = get(n);
    const std = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
    assert.ok(Math.abs(std - 0.02) < 0.002, `${n} std ${std}`);
  }
  const c = get('k_conv1d.weight');
  assert.ok(c.every((x) => Math.abs(x) <= 0.5) && Math.max(...c.map(Math.abs)) > 0.45, 'conv weights span U(±1/2)');
  assert.ok(get('o_norm.weight').every((x) => x === 1));
});

test('delta rule: every form equals a float64 JS reference (fla delta_rule_recurrence) within 1e-5', () => {
  const [B, T, H, Dh] = [2, 11, 2, 4];
  const { qkv, beta } = ruleInputs(B, T, H, Dh, 5);
  const want = deltaRuleRef(qkv, beta, B, T, H, Dh);
  for (const [name, rule] of [['recurrent', deltaRule('recurrent')], ['chunked C=4', deltaRule('chunked', 4)],
    ['chunked C=8', deltaRule('chunked', 8)], ['chunked C=16 (one chunk)', deltaRule('chunked', 16)], ['fused', deltaRule('fused')]] as const) {
    const got = tf.tidy(() => rule(tf.tensor4d(Float32Array.from(qkv), [B, T, 3 * H, Dh]), tf.tensor3d(Float32Array.from(beta), [B, T, H])).dataSync());
    const e = relErr(got, want);
    assert.ok(e < 1e-5, `${name}: error ${e}`);
  }
});

test('delta rule: recurrent vs chunked vs fused agree within 1e-5, outputs and gradients (issue 4)', () => {
  for (const [B, T, H, Dh] of [[2, 37, 2, 8], [3, 5, 1, 5], [1, 16, 2, 4]] as const) {
    const { qkv, beta } = ruleInputs(B, T, H, Dh, 17 + T);
    const w = tf.tensor4d(Float32Array.from(normals(B * T * H * Dh, 3)), [B, T, H, Dh]);
    const run = (form: DeltaRuleForm, chunk?: number) => tf.tidy(() => {
      const rule = deltaRule(form, chunk);
      const x = tf.tensor4d(Float32Array.from(qkv), [B, T, 3 * H, Dh]), bt = tf.tensor3d(Float32Array.from(beta), [B, T, H]);
      const o = rule(x, bt).dataSync();
      const [gx, gb] = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(rule(a as tf.Tensor4D, c as Tensor3D), w)))([x, bt]);
      return [o, gx!.dataSync(), gb!.dataSync()];
    });
    const ref = run('recurrent');
    for (const [name, got] of [['chunked C=8', run('chunked', 8)], ['chunked C=16', run('chunked', 16)], ['chunked C=3', run('chunked', 3)], ['fused', run('fused')]] as const) {
      ['output', 'd qkv', 'd beta'].forEach((what, i) => {
        const e = relErr(got[i]!, ref[i]!);
        assert.ok(e < 1e-5, `${name} vs recurrent, ${what}, (B,T,H,Dh)=(${B},${T},${H},${Dh}): ${e}`);
      });
    }
    w.dispose();
  }
});

test('delta_net mixer equals a float64 JS reference of fla DeltaNet (proj, conv+SiLU, L2 norm, β, rule, RMSNorm, o_proj)', () => {
  const [B, T, D, H, K] = [2, 7, 8, 2, 4];
  const Dh = D / H;
  for (const form of FORMS) {
    const b = buildMixer(makeDeltaNet({ form }), config({ d_model: D, delta_heads: H, d_conv: K, seed: 3 }));
    widen(b); // so β spans (0, 1) and q, k, v are far from zero
    const P = (n: string) => Float64Array.from(b.params.get(`backbone.layers.0.sequence_mixer.${n}`).dataSync());
    const x = randomInput(B, T, D, 9);
    const xs = Float64Array.from(x.dataSync());
    const got = b.run(x).dataSync();

    const lin = (inp: Float64Array, W: Float64Array, out: number, inF: number) => {
      const rows = inp.length / inF, y = new Float64Array(rows * out);
      for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) { let a = 0; for (let i = 0; i < inF; i++) a += W[o * inF + i]! * inp[r * inF + i]!; y[r * out + o] = a; }
      return y;
    };
    const silu = (z: number) => z / (1 + Math.exp(-z));
    const conv = (y: Float64Array, w: Float64Array) => { // PyTorch Conv1d(groups=D, padding=K−1)[..., :T]
      const c = new Float64Array(y.length);
      for (let bb = 0; bb < B; bb++) for (let t = 0; t < T; t++) for (let ch = 0; ch < D; ch++) {
        let a = 0;
        for (let k = 0; k < K; k++) { const src = t - (K - 1) + k; if (src >= 0) a += w[ch * K + k]! * y[(bb * T + src) * D + ch]!; }
        c[(bb * T + t) * D + ch] = silu(a);
      }
      return c;
    };
    const q = conv(lin(xs, P('q_proj.weight'), D, D), P('q_conv1d.weight'));
    const k = conv(lin(xs, P('k_proj.weight'), D, D), P('k_conv1d.weight'));
    const v = conv(lin(xs, P('v_proj.weight'), D, D), P('v_conv1d.weight'));
    const beta = lin(xs, P('b_proj.weight'), H, D).map((z) => 1 / (1 + Math.exp(-z)));
    const qkv = new Float64Array(B * T * 3 * D);
    for (let r = 0; r < B * T; r++) for (let h = 0; h < H; h++) {
      const l2 = (src: Float64Array) => { const seg = src.subarray(r * D + h * Dh, r * D + (h + 1) * Dh); const n = Math.sqrt(seg.reduce((a, z) => a + z * z, 0) + 1e-6); return seg.map((z) => z / n); };
      qkv.set(l2(q).map((z) => z / Math.sqrt(Dh)), (r * 3 * H + h) * Dh);
      qkv.set(l2(k), (r * 3 * H + H + h) * Dh);
      qkv.set(v.subarray(r * D + h * Dh, r * D + (h + 1) * Dh), (r * 3 * H + 2 * H + h) * Dh);
    }
    const o = deltaRuleRef(qkv, beta, B, T, H, Dh);
    const g = P('o_norm.weight');
    for (let r = 0; r < B * T * H; r++) {
      const seg = o.subarray(r * Dh, (r + 1) * Dh);
      const inv = 1 / Math.sqrt(seg.reduce((a, z) => a + z * z, 0) / Dh + 1e-5);
      for (let j = 0; j < Dh; j++) seg[j] = seg[j]! * inv * g[j]!;
    }
    const want = lin(o, P('o_proj.weight'), D, D);
    const e = relErr(got, want);
    assert.ok(e < 1e-5, `${form}: mixer vs float64 reference ${e}`);
    b.params.dispose();
  }
});

for (const form of FORMS) {
  test(`delta_net (${form}): finite-difference gradient check of every parameter`, () => {
    const b = buildMixer(makeDeltaNet({ form, chunk: 4 }), config({ d_model: 8, seed: 2 }));
    widen(b);
    gradCheck(b, randomInput(2, 7, 8, 4), { eps: 1e-3 });
    b.params.dispose();
  });

  test(`delta_net (${form}): causal`, () => {
    const b = buildMixer(makeDeltaNet({ form, chunk: 4 }), config({ d_model: 8 }));
    const x = randomInput(2, 9, 8, 6);
    for (const t of [0, 3, 4, 8]) assertCausal(b, x, t);
    b.params.dispose();
  });
}

test('delta_net with d_conv 0 (no short conv): gradient check and causality', () => {
  const b = buildMixer(deltaNet, config({ d_conv: 0 }));
  const x = randomInput(2, 6, 8, 8);
  widen(b);
  gradCheck(b, x, { eps: 1e-3 });
  assertCausal(b, x, 2);
  b.params.dispose();
});

test('delta_net sites q_conv, k_conv, v_conv: recorded (B, T, d); an identity patch is bit-exact; a patch acts where the rule says', () => {
  const [B, T, D] = [2, 6, 8];
  const b: Built = buildMixer(deltaNet, config({ d_model: D }));
  const x = randomInput(B, T, D, 10);
  const seen = new Map<SiteName, Float32Array>();
  const y0 = b.run(x, { record: (_l, site, t) => { assert.deepEqual(t.shape, [B, T, D]); seen.set(site, t.dataSync() as Float32Array); } }).dataSync();
  assert.deepEqual([...seen.keys()], ['q_conv', 'k_conv', 'v_conv']);
  const p = 3;
  for (const site of ['q_conv', 'k_conv', 'v_conv'] as const) {
    const rec = seen.get(site)!;
    const own = (b0: number) => tf.tensor2d(rec.slice((b0 * T + p) * D, (b0 * T + p + 1) * D), [1, D]);
    const same: Patch = { layer: 0, site, rows: Int32Array.from([1]), positions: Int32Array.from([p]), values: own(1) };
    assert.deepEqual(b.run(x, { patches: [same] }).dataSync(), y0, `identity patch at ${site} changed the output`);
    const other: Patch = { ...same, values: tf.add(own(1), 1) as tf.Tensor2D };
    const y1 = b.run(x, { patches: [other] }).dataSync();
    for (let t = 0; t < T; t++) {
      const row = (bb: number) => Array.from(y1.slice((bb * T + t) * D, (bb * T + t + 1) * D)).some((z, i) => z !== y0[(bb * T + t) * D + i]);
      assert.equal(row(0), false, `${site} patch in row 1 changed row 0 at t=${t}`);
      // k and v are written into the state and read by every later query; q_t is read at step t only.
      const expect = site === 'q_conv' ? t === p : t >= p;
      assert.equal(row(1), expect, `${site} patch at t=${p}: output at t=${t} ${expect ? 'unchanged' : 'changed'}`);
    }
  }
  b.params.dispose();
});

test('delta rule, chunked C=8: still within 1e-5 of float64 in the Neumann worst case (repeated keys, β ≈ 1)', () => {
  const [B, T, H, Dh] = [1, 37, 1, 4];
  const { qkv, beta } = ruleInputs(B, T, H, Dh, 23);
  for (let t = 0; t < T; t++) qkv.set(qkv.subarray(Dh, 2 * Dh), (t * 3 + 1) * Dh); // every key = the first key
  beta.fill(0.999);
  const want = deltaRuleRef(qkv, beta, B, T, H, Dh);
  const got = tf.tidy(() => deltaRule('chunked', 8)(tf.tensor4d(Float32Array.from(qkv), [B, T, 3 * H, Dh]), tf.tensor3d(Float32Array.from(beta), [B, T, H])).dataSync());
  const e = relErr(got, want);
  assert.ok(e < 1e-5, `chunked C=8, repeated keys: ${e}`);
});
