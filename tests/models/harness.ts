/**
 * Shared checks for every mixer (hono-style conformance helpers): build one mixer alone, finite-difference gradient
 * checks, causality. Each mixer's test file calls these with its own factory and config.
 */
import assert from 'node:assert/strict';
import { tf, initBackend, type Tensor3D } from '../../src/models/tf.ts';
import { ParamStore } from '../../src/models/params.ts';
import { resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from '../../src/models/config.ts';
import { siteContext, type Hooks } from '../../src/models/sites.ts';
import type { Mixer, MixerFactory } from '../../src/models/mixer.ts';

export async function useBackend(name: 'cpu' | 'wasm' = 'cpu'): Promise<void> {
  await initBackend(name);
}

export interface Built {
  cfg: ResolvedModelConfig;
  params: ParamStore;
  mixer: Mixer;
  run(x: Tensor3D, hooks?: Hooks): Tensor3D;
}

export function buildMixer(factory: MixerFactory, config: ModelConfig, layer = 0): Built {
  const cfg = resolveModelConfig(config);
  const params = new ParamStore(cfg.seed);
  const mixer = factory(cfg, layer, params.scope(`backbone.layers.${layer}.sequence_mixer.`));
  return { cfg, params, mixer, run: (x, hooks) => mixer.forward(x, siteContext(hooks, layer)) };
}

/** Deterministic input (B, T, D) from a seed. */
export function randomInput(B: number, T: number, D: number, seed = 1): Tensor3D {
  return tf.randomNormal([B, T, D], 0, 1, 'float32', seed) as Tensor3D;
}

/**
 * Causality: changing the input at time t leaves every output before t unchanged (exactly), and changes some
 * output at or after t (so the check cannot pass on a mixer that ignores its input).
 */
export function assertCausal(b: Built, x: Tensor3D, t: number): void {
  const [B, T, D] = x.shape;
  tf.tidy(() => {
    const y0 = b.run(x);
    const bump = tf.concat([tf.zeros([B, t, D]), tf.randomNormal([B, 1, D], 0, 1, 'float32', 7), tf.zeros([B, T - t - 1, D])], 1);
    const y1 = b.run(tf.add(x, bump) as Tensor3D);
    if (t > 0) {
      const before = tf.max(tf.abs(tf.sub(tf.slice(y0, [0, 0, 0], [B, t, -1]), tf.slice(y1, [0, 0, 0], [B, t, -1])))).dataSync()[0]!;
      assert.equal(before, 0, `output before t=${t} changed by ${before}`);
    }
    const after = tf.max(tf.abs(tf.sub(tf.slice(y0, [0, t, 0], [B, T - t, -1]), tf.slice(y1, [0, t, 0], [B, T - t, -1])))).dataSync()[0]!;
    assert.ok(after > 0, `output at/after t=${t} did not change: the mixer ignores its input`);
  });
}

/**
 * Central finite differences of L = Σ forward(x) ⊙ w (w a fixed random weight) along random directions in each
 * parameter, compared with the autodiff directional derivative. float32 only (tfjs has no float64), so eps and the
 * tolerance are loose: a wrong gradient is off by O(1), rounding by O(1e-3).
 */
export function gradCheck(b: Built, x: Tensor3D, opts: { eps?: number; rtol?: number; skip?: string[] } = {}): void {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const [B, T, D] = x.shape;
  const w = tf.randomNormal([B, T, D], 0, 1, 'float32', 11);
  const loss = () => tf.sum(tf.mul(b.run(x), w)) as tf.Scalar;
  const { grads } = tf.variableGrads(loss);
  let k = 0;
  for (const [name, v] of b.params.vars) {
    if (opts.skip?.includes(name)) continue;
    const g = grads[v.name];
    assert.ok(g, `no gradient for parameter ${name}`);
    const dir = tf.randomNormal(v.shape, 0, 1, 'float32', 100 + k++);
    const analytic = tf.sum(tf.mul(g, dir)).dataSync()[0]!;
    const orig = v.clone();
    v.assign(tf.add(orig, tf.mul(dir, eps)));
    const lp = tf.tidy(() => loss().dataSync()[0]!);
    v.assign(tf.sub(orig, tf.mul(dir, eps)));
    const lm = tf.tidy(() => loss().dataSync()[0]!);
    v.assign(orig);
    orig.dispose();
    const numeric = (lp - lm) / (2 * eps);
    const scale = Math.max(Math.abs(analytic), Math.abs(numeric), 1e-3);
    assert.ok(Math.abs(analytic - numeric) / scale < rtol,
      `gradient of ${name}: autodiff ${analytic.toExponential(4)} vs finite difference ${numeric.toExponential(4)}`);
  }
  for (const g of Object.values(grads)) g.dispose();
}
