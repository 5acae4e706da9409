/**
 * The forward-only paths of the two hand-written kernels (Mamba's selective scan, DeltaNet's fused delta rule) run
 * whenever no gradient tape is recording (evaluation, the intervention sweep). They must give the numbers of the
 * trainable path bit for bit, and the trainable path must still be what runs under a tape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor, type Tensor2D, type Tensor3D } from '../../src/models/tf.ts';
import { selectiveScan, selectiveScanInference, selectiveScanTrainable } from '../../src/models/mamba-scan.ts';
import { deltaRuleFused, deltaRuleFusedInference, deltaRuleFusedTrainable } from '../../src/models/delta_net.ts';
import { createLanguageModel } from '../../src/models/lm.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

/** Index of the first element whose float32 bit pattern differs, or −1. */
function firstBitDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = new Uint32Array((a.dataSync() as Float32Array).slice().buffer), y = new Uint32Array((b.dataSync() as Float32Array).slice().buffer);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function scanInputs(B: number, T: number, E: number, S: number, seed: number, deltaScale = 1) {
  const n = (shape: number[], s: number, scale = 1) => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed + s), scale);
  return {
    u: n([B, T, E], 0) as Tensor3D, dl: n([B, T, E], 1, deltaScale) as Tensor3D,
    A: tf.neg(tf.exp(n([E, S], 2))) as Tensor2D, Bm: n([B, T, S], 3) as Tensor3D, Cm: n([B, T, S], 4) as Tensor3D, D: n([E], 5),
  };
}

test('selective scan: the forward-only path equals the trainable one bit for bit (with and without softplus, large Δ)', () => {
  for (const [B, T, E, S, seed, scale] of [[2, 7, 6, 4, 1, 1], [3, 11, 16, 16, 2, 1], [2, 5, 8, 3, 3, 40]] as const) {
    for (const deltaSoftplus of [false, true]) {
      const z = scanInputs(B, T, E, S, seed, scale);
      const dl = deltaSoftplus ? z.dl : (tf.abs(z.dl) as Tensor3D); // Δ ≥ 0 when it is passed as is
      const a = selectiveScanInference(z.u, dl, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus });
      const b = selectiveScanTrainable(z.u, dl, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus });
      assert.equal(firstBitDiff(a, b), -1, `B ${B} T ${T} E ${E} S ${S} softplus ${deltaSoftplus}`);
    }
  }
});

/** Packed delta-rule inputs as the mixer makes them (q, k L2-normalised, q scaled by Dh^−½), β ∈ (0, 1). */
function ruleInputs(B: number, T: number, H: number, Dh: number, seed: number) {
  const x = tf.randomNormal([B, T, 3 * H, Dh], 0, 1, 'float32', seed);
  const norm = tf.div(x, tf.sqrt(tf.sum(tf.square(x), 3, true)));
  const scale = new Float32Array(3 * H).map((_, r) => (r < H ? 1 / Math.sqrt(Dh) : 1));
  const isV = new Float32Array(3 * H).map((_, r) => (r >= 2 * H ? 1 : 0));
  const s = tf.tensor4d(scale, [1, 1, 3 * H, 1]), v = tf.tensor4d(isV, [1, 1, 3 * H, 1]);
  const qkv = tf.add(tf.mul(tf.mul(norm, s), tf.sub(1, v)), tf.mul(x, v)) as tf.Tensor4D;
  return { qkv, beta: tf.sigmoid(tf.randomNormal([B, T, H], 0, 1, 'float32', seed + 1)) as Tensor3D };
}

test('fused delta rule: the forward-only path equals the trainable one bit for bit (Dh even, odd, < 4, ≥ 4)', () => {
  for (const [B, T, H, Dh] of [[2, 9, 2, 32], [2, 7, 3, 5], [1, 6, 2, 3], [3, 11, 1, 6], [2, 4, 2, 2], [1, 5, 2, 7]] as const) {
    const { qkv, beta } = ruleInputs(B, T, H, Dh, B * 100 + Dh);
    assert.equal(firstBitDiff(deltaRuleFusedInference(qkv, beta), deltaRuleFusedTrainable(qkv, beta)), -1, `B ${B} T ${T} H ${H} Dh ${Dh}`);
  }
});

test('both kernels run their forward-only path off the tape and the trainable one under it (gradients still flow)', () => {
  const z = scanInputs(2, 5, 4, 3, 7);
  assert.equal(firstBitDiff(selectiveScan(z.u, z.dl, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus: true }), selectiveScanInference(z.u, z.dl, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus: true })), -1);
  const g = tf.grad((u: Tensor) => tf.sum(selectiveScan(u as Tensor3D, z.dl, z.A, z.Bm, z.Cm, z.D, { deltaSoftplus: true })))(z.u);
  assert.ok(tf.max(tf.abs(g)).dataSync()[0]! > 0, 'the scan has a gradient under a tape');
  const { qkv, beta } = ruleInputs(2, 5, 2, 4, 9);
  assert.equal(firstBitDiff(deltaRuleFused(qkv, beta), deltaRuleFusedInference(qkv, beta)), -1);
  const gq = tf.grad((x: Tensor) => tf.sum(deltaRuleFused(x as tf.Tensor4D, beta)))(qkv);
  assert.ok(tf.max(tf.abs(gq)).dataSync()[0]! > 0, 'the delta rule has a gradient under a tape');
});

test('whole models: final hidden states off the tape equal those computed under a tape, bit for bit (Mamba, DeltaNet)', () => {
  for (const mixer of ['mamba', 'delta_net'] as const) {
    const lm = createLanguageModel({ mixer, d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16, seed: 4 });
    const ids = Int32Array.from({ length: 3 * 9 }, (_, i) => (i * 7 + 3) % 12);
    const off = lm.forward({ ids, batch: 3, time: 9 });
    let on: Tensor | null = null;
    tf.variableGrads(() => {
      const h = lm.forward({ ids, batch: 3, time: 9 });
      on = tf.keep(h.clone());
      return tf.sum(h) as tf.Scalar;
    });
    assert.equal(firstBitDiff(off, on!), -1, mixer);
    lm.dispose();
  }
});
