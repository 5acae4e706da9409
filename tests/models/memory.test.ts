/**
 * Resuming part-way along the sequence (src/models/memory.ts): a pass over positions [s, T) of recorded rows, from
 * what their mixers kept, must give the full pass's outputs at those positions bit for bit — with rows in another
 * order, from either layer, and with patches inside the window. A mixer that cannot resume must refuse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor3D } from '../../src/models/tf.ts';
import { createLanguageModel } from '../../src/models/lm.ts';
import { Memory } from '../../src/models/memory.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { Hooks, Patch, SiteName } from '../../src/models/sites.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const B = 3, T = 8, d = 16, ROWS = Int32Array.from([2, 0, 1]);

const CONFIGS: ModelConfig[] = [
  { mixer: 'delta_net', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'delta_net', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16, d_conv: 0 },
  { mixer: 'mamba', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16 },
  { mixer: 'mamba', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16, d_conv: 1 },
  { mixer: 'mamba', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16, d_conv: 0 },
] as ModelConfig[];

const bits = (x: Tensor3D) => Array.from(new Uint32Array((x.dataSync() as Float32Array).slice().buffer));

/** Rows ROWS of x, positions [s, T). */
const window = (x: Tensor3D, s: number) => tf.gather(x, tf.tensor1d(ROWS, 'int32')).slice([0, s, 0], [B, T - s, x.shape[2]]) as Tensor3D;

/** A patch of `site` in `layer` at window positions `ts` of every row, with fixed values; `shift` moves it to full-sequence positions. */
function patch(layer: number, site: SiteName, C: number, ts: number[], shift: number, rowMap: Int32Array | null): Hooks {
  const n = B * ts.length;
  const p: Patch = {
    layer, site,
    rows: Int32Array.from({ length: n }, (_, j) => { const b = Math.floor(j / ts.length); return rowMap ? rowMap[b]! : b; }),
    positions: Int32Array.from({ length: n }, (_, j) => ts[j % ts.length]! + shift),
    values: tf.tensor2d(Float32Array.from({ length: n * C }, (_, j) => Math.cos(0.7 * j)), [n, C]),
  };
  return { patches: [p] };
}

for (const cfg of CONFIGS) {
  test(`${cfg.mixer} d_conv ${cfg.d_conv ?? 4}: resuming at s from the memory equals the full pass at positions ≥ s (bit for bit)`, () => {
    const lm = createLanguageModel({ ...cfg, seed: 9 });
    const r0 = tf.randomNormal([B, T, d], 0, 1, 'float32', 4) as Tensor3D;
    let r1: Tensor3D | null = null;
    const mem = new Memory();
    const full = lm.forwardFrom(0, r0, { memory: mem.recording(B, T), record: (l, s, x) => { if (l === 1 && s === 'block_input') r1 = tf.keep(x.clone()); } });
    assert.deepEqual(bits(full), bits(lm.forwardFrom(0, r0)), 'recording changes nothing');
    assert.ok(lm.resumableFrom(0));
    for (const s of [0, 1, 3, T - 1]) {
      assert.deepEqual(bits(lm.forwardFrom(0, window(r0, s), { memory: mem.resuming(s, ROWS) })), bits(window(full, s)), `from layer 0 at ${s}`);
      assert.deepEqual(bits(lm.forwardFrom(1, window(r1!, s), { memory: mem.resuming(s, ROWS) })), bits(window(lm.forwardFrom(1, r1!), s)), `from layer 1 at ${s}`);
      // A patch inside the window: the memory holds the unpatched run, which is what positions before s see.
      const site: SiteName = cfg.mixer === 'mamba' ? 'conv_input' : 'k_conv';
      const C = cfg.mixer === 'mamba' ? 2 * d : d;
      const ts = s === T - 1 ? [0] : [0, 1];
      const want = window(lm.forwardFrom(0, r0, patch(0, site, C, ts, s, ROWS)), s);
      const got = lm.forwardFrom(0, window(r0, s), { ...patch(0, site, C, ts, 0, null), memory: mem.resuming(s, ROWS) });
      assert.deepEqual(bits(got), bits(want), `patched ${site} from layer 0 at ${s}`);
    }
    lm.dispose();
  });
}

test('a resuming pass through a mixer that cannot resume is refused; one with nothing recorded fails', () => {
  const att = createLanguageModel({ mixer: 'attention', d_model: d, n_layers: 1, vocab_size: 12, n_positions: 16 });
  assert.ok(!att.resumableFrom(0));
  const r = tf.zeros([1, 4, d]) as Tensor3D;
  const empty = new Memory();
  empty.recording(1, 4);
  assert.throws(() => att.forwardFrom(0, r, { memory: empty.resuming(1, Int32Array.from([0])) }), /cannot resume/);
  const dn = createLanguageModel({ mixer: 'delta_net', d_model: d, n_layers: 1, vocab_size: 12, n_positions: 16 });
  assert.throws(() => dn.forwardFrom(0, r, { memory: empty.resuming(1, Int32Array.from([0])) }), /nothing kept/);
  assert.throws(() => empty.resuming(1, Int32Array.from([1])), /outside the 1 recorded rows/);
  att.dispose(); dn.dispose();
});

test('states are kept only before the starts the recording was given: resuming there works, elsewhere fails', () => {
  const lm = createLanguageModel({ mixer: 'delta_net', d_model: d, n_layers: 2, vocab_size: 12, n_positions: 16, seed: 2 });
  const r0 = tf.randomNormal([B, T, d], 0, 1, 'float32', 6) as Tensor3D;
  const mem = new Memory();
  const full = lm.forwardFrom(0, r0, { memory: mem.recording(B, T, (b) => [3, 5 + (b % 2)]) });
  assert.deepEqual(bits(lm.forwardFrom(0, window(r0, 3), { memory: mem.resuming(3, ROWS) })), bits(window(full, 3)));
  assert.throws(() => lm.forwardFrom(0, window(r0, 5), { memory: mem.resuming(5, ROWS) }), /was not kept/); // row 1 kept 6, not 5
  assert.throws(() => lm.forwardFrom(0, window(r0, 2), { memory: mem.resuming(2, ROWS) }), /was not kept/);
  lm.dispose();
});
