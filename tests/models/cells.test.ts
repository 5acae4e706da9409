/**
 * forwardFrom(…, at): only the cells (b, at[b]) are wanted, so the last transformer block runs norm2 and the MLP on
 * those cells alone unless a hook looks at them. The result must be the full pass's hidden states at those cells,
 * bit for bit (cpu backend), with and without hooks in the last block.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { createLanguageModel } from '../../src/models/lm.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { Hooks, Patch } from '../../src/models/sites.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const B = 3, T = 7;
/** Different positions per row (a gather), and one position for all rows (a slice). */
const ATS = [Int32Array.from([6, 2, 4]), Int32Array.from([5, 5, 5])];

function bits(x: Tensor3D): number[] {
  return Array.from(new Uint32Array((x.dataSync() as Float32Array).slice().buffer));
}

/** Rows (b, at[b]) of a (B, T, d) tensor as (B, 1, d). */
function cells(x: Tensor3D, at: Int32Array): Tensor3D {
  const d = x.shape[2];
  return tf.stack(Array.from(at, (t, b) => tf.slice(x, [b, t, 0], [1, 1, d]).reshape([1, d]))).reshape([B, 1, d]) as Tensor3D;
}

for (const mixer of ['attention', 'mamba', 'delta_net', 'based'] as const) {
  test(`${mixer}: forwardFrom with cells equals the full pass at those cells (no hooks, a patch before and a patch after the mixer)`, () => {
    const lm = createLanguageModel({ mixer, d_model: 16, n_layers: 2, vocab_size: 12, n_positions: 16, seed: 5 } as ModelConfig);
    const r = tf.randomNormal([B, T, 16], 0, 1, 'float32', 3) as Tensor3D;
    const patch = (site: Patch['site']): Hooks => ({ patches: [{ layer: 1, site, rows: Int32Array.from([0, 1]), positions: Int32Array.from([6, 1]), values: tf.randomNormal([2, 16], 0, 1, 'float32', 8) as tf.Tensor2D }] });
    const cases: [string, Hooks | undefined][] = [['no hooks', undefined], ['mixer_input patch', patch('mixer_input')], ['block_output patch', patch('block_output')]];
    if (mixer !== 'mamba') cases.push(['mlp_input patch', patch('mlp_input')]);
    for (const [what, hooks] of cases) {
      for (const layer of [0, 1]) for (const at of ATS) {
        const full = cells(lm.forwardFrom(layer, r, hooks), at);
        const some = lm.forwardFrom(layer, r, hooks, at);
        assert.deepEqual(some.shape, [B, 1, 16]);
        assert.deepEqual(bits(some), bits(full), `${what}, from layer ${layer}, cells at ${at}`);
      }
    }
    lm.dispose();
  });
}

test('forwardFrom with cells rejects a position outside the sequence or a wrong count', () => {
  const lm = createLanguageModel({ mixer: 'attention', d_model: 16, n_layers: 1, vocab_size: 12, n_positions: 16 });
  const r = tf.zeros([2, 4, 16]) as Tensor3D;
  assert.throws(() => lm.forwardFrom(0, r, undefined, Int32Array.from([1, 4])), /outside/);
  assert.throws(() => lm.forwardFrom(0, r, undefined, Int32Array.from([1])), /positions for 2 rows/);
  lm.dispose();
});
