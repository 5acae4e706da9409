/**
 * The sharing Identity kernel on wasm (src/models/tf.ts shareIdentityOnWasm): a clone shares its buffer instead of
 * copying it, and training gradients are bit-identical to those with the backend's own copying kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend, shareIdentityOnWasm } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { answerLoss } from '../../src/train/loop.ts';
import type { MixerKind } from '../../src/models/config.ts';

await initBackend('wasm');

const buffers = () => tf.backend().numDataIds();

test('a clone on wasm shares the buffer (no new one); the copying kernel, put back, allocates one', () => {
  const x = tf.tensor1d([1, 2, 3, 4]);
  for (const share of [true, false]) {
    shareIdentityOnWasm(share);
    const before = buffers();
    const y = tf.clone(x);
    assert.equal(buffers() - before, share ? 0 : 1);
    x.dataSync(); // touch both
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
    y.dispose();
    assert.deepEqual(Array.from(x.dataSync()), [1, 2, 3, 4], 'disposing the clone must not free the original');
  }
  shareIdentityOnWasm(true);
  x.dispose();
});

function gradsOf(mixer: MixerKind): Map<string, Float32Array> {
  const B = 4, T = 9, V = 21;
  const lm = new LanguageModel({ mixer, d_model: 16, n_layers: 2, vocab_size: V, n_positions: 16, pos_emb: true, seed: 3 });
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % V);
  const positions = new Int32Array(B).fill(T - 2), answers = Int32Array.from([1, 4, 7, 9]);
  const { value, grads } = tf.variableGrads(() => answerLoss(lm, ids, B, T, positions, answers));
  const out = new Map<string, Float32Array>([['loss', value.dataSync() as Float32Array]]);
  for (const [name, v] of lm.params.vars) if (grads[v.name]) out.set(name, grads[v.name]!.dataSync() as Float32Array);
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  lm.dispose();
  return out;
}

for (const mixer of ['attention', 'hyena', 'mamba'] as MixerKind[]) {
  test(`${mixer}: gradients with the sharing Identity equal those with the copying one, bit for bit, and nothing leaks`, () => {
    shareIdentityOnWasm(false);
    const copied = gradsOf(mixer);
    shareIdentityOnWasm(true);
    const tensors = tf.memory().numTensors, before = buffers();
    const shared = gradsOf(mixer);
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    assert.equal(buffers(), before, 'wasm buffers leaked');
    assert.deepEqual([...shared.keys()], [...copied.keys()]);
    for (const [name, g] of copied) assert.ok(Buffer.from(shared.get(name)!.buffer).equals(Buffer.from(g.buffer)), `${name} differs`);
  });
}
