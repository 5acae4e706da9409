import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, initBackend, type Tensor3D } from '../../src/models/tf.ts';
import { createLanguageModel } from '../../src/models/lm.ts';
import type { SiteName } from '../../src/models/sites.ts';
import { buildDataset } from '../../src/data/dataset.ts';
import { loadSplit, batchTokens, gatherInt } from '../../src/train/split.ts';
import { sweep } from '../../src/interventions/sweep.ts';
import { attribTable } from '../../src/interventions/attrib.ts';

await initBackend('cpu');

const dir = mkdtempSync(join(tmpdir(), 'mecheval-sweep-'));
buildDataset({ task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 }, sizes: { train: 32, dev: 16, test: 24 }, seed: 5 }, dir);
const split = loadSplit(dir, 'test');
const model = createLanguageModel({ mixer: 'attention', d_model: 16, n_layers: 2, vocab_size: 35, n_positions: 16, pos_emb: true, seed: 3 });

function pAnswer(ids: Int32Array, batch: number, time: number, hooks?: Parameters<typeof model.forward>[0]['hooks']): Float32Array {
  return tf.tidy(() => {
    const h = model.forward({ ids, batch, time, hooks });
    const logits = model.logitsAt(h, Int32Array.from({ length: batch }, (_, i) => i), gatherInt(split.pos.query, Int32Array.from({ length: batch }, (_, i) => i)));
    const oh = tf.oneHot(tf.tensor1d(gatherInt(split.answers, Int32Array.from({ length: batch }, (_, i) => i)), 'int32'), logits.shape[1]).toFloat();
    return tf.sum(tf.mul(tf.softmax(logits), oh), 1).dataSync() as Float32Array;
  });
}

test('patching every position of the layer-0 block input with the clean run restores p(answer) exactly (Attrib = 1)', () => {
  const rows = Int32Array.from({ length: split.n }, (_, i) => i);
  const clean = batchTokens(split, split.tokens, rows);
  const corr = batchTokens(split, split.tokensKeyCorrupted, rows);
  let src: Float32Array | null = null;
  let C = 0;
  const pOrig = pAnswer(clean.ids, clean.batch, clean.time, {
    record: (layer, site, x: Tensor3D) => { if (layer === 0 && site === 'block_input') { src = x.dataSync() as Float32Array; C = x.shape[2]; } },
  });
  const n = split.n * clean.time;
  const values = tf.tensor2d(src!, [n, C]);
  const patchRows = Int32Array.from({ length: n }, (_, i) => Math.floor(i / clean.time));
  const patchPos = Int32Array.from({ length: n }, (_, i) => i % clean.time);
  const pRest = pAnswer(corr.ids, corr.batch, corr.time, { patches: [{ layer: 0, site: 'block_input', rows: patchRows, positions: patchPos, values }] });
  const pCorr = pAnswer(corr.ids, corr.batch, corr.time);
  assert.deepEqual(Array.from(pRest), Array.from(pOrig));
  assert.notDeepEqual(Array.from(pCorr), Array.from(pOrig), 'the corruption must change something for this test to mean anything');
});

test('patching the divider at the layer-0 block input restores nothing (the token is the same in both runs)', () => {
  const r = sweep(model, split, { positions: ['divider', 'key'], sites: [{ layer: 0, site: 'block_input' }] });
  const div = r.patches.find((p) => p.position === 'divider')!;
  const key = r.patches.find((p) => p.position === 'key')!;
  assert.deepEqual(Array.from(div.pRestored), Array.from(r.pCorr));
  // Restoring the corrupted key itself at the model input is the whole difference between the runs.
  for (let i = 0; i < r.n; i++) assert.ok(Math.abs(key.pRestored[i]! - r.pOrig[i]!) < 1e-6, `example ${i}`);
});

test('batched sweep (all positions in one pass, chunks of 7) equals one position per pass', () => {
  const sites: { layer: number; site: SiteName }[] = [{ layer: 1, site: 'block_input' }, { layer: 0, site: 'mixer_output' }, { layer: 1, site: 'mlp_input' }];
  const all = sweep(model, split, { sites, chunk: 7 });
  for (const position of ['key', 'value', 'query'] as const) {
    const one = sweep(model, split, { sites, positions: [position], chunk: 64 });
    for (const p of one.patches) {
      const q = all.patches.find((x) => x.layer === p.layer && x.site === p.site && x.position === position)!;
      for (let i = 0; i < r_n(all); i++) assert.ok(Math.abs(q.pRestored[i]! - p.pRestored[i]!) < 1e-6, `${p.site}@${p.layer} ${position} example ${i}`);
    }
  }
  assert.equal(all.patches.length, sites.length * 6);
});
const r_n = (r: { n: number }) => r.n;

test('the sweep covers every block-level site of every layer by default', () => {
  const r = sweep(model, split, { positions: ['query'], limit: 4 });
  const seen = new Set(r.patches.map((p) => `${p.layer}:${p.site}`));
  for (const layer of [0, 1]) for (const site of ['block_input', 'block_output', 'mixer_input', 'mixer_output', 'mlp_input', 'mlp_output']) {
    assert.ok(seen.has(`${layer}:${site}`), `${site}@${layer} missing from the sweep`);
  }
  const t = attribTable(r);
  assert.equal(t.rows.length, r.patches.length);
});

test('a position after the query is filled in from the corrupted run, and equals patching it for real', () => {
  const fast = sweep(model, split, { positions: ['answer', 'value'], sites: [{ layer: 0, site: 'block_input' }, { layer: 1, site: 'mixer_output' }] });
  for (const p of fast.patches.filter((x) => x.position === 'answer')) assert.deepEqual(Array.from(p.pRestored), Array.from(fast.pCorr));
  // The real patch, done by hand at the answer position (after the query): it must change nothing at the query.
  const rows = Int32Array.from({ length: split.n }, (_, i) => i);
  const clean = batchTokens(split, split.tokens, rows);
  const corr = batchTokens(split, split.tokensKeyCorrupted, rows);
  let src: Float32Array | null = null;
  pAnswer(clean.ids, clean.batch, clean.time, { record: (l, s, x) => { if (l === 1 && s === 'mixer_output') src = x.dataSync() as Float32Array; } });
  const C = 16, T = clean.time;
  const at = gatherInt(split.pos.answer, rows);
  const values = tf.tensor2d(Float32Array.from({ length: split.n * C }, (_, j) => src![(Math.floor(j / C) * T + at[Math.floor(j / C)]!) * C + (j % C)]!), [split.n, C]);
  const real = pAnswer(corr.ids, corr.batch, corr.time, { patches: [{ layer: 1, site: 'mixer_output', rows, positions: at, values }] });
  assert.deepEqual(Array.from(real), Array.from(fast.pCorr));
});

test('resuming patched passes from the stored residual stream gives the numbers of full passes', () => {
  const full = { params: model.params, forward: model.forward.bind(model), logitsAt: model.logitsAt.bind(model) }; // no forwardFrom
  const a = sweep(model, split, { limit: 16 });
  const b = sweep(full, split, { limit: 16 });
  assert.equal(a.patches.length, b.patches.length);
  for (let k = 0; k < a.patches.length; k++) {
    const x = a.patches[k]!, y = b.patches[k]!;
    assert.equal(`${x.layer}:${x.site}:${x.position}`, `${y.layer}:${y.site}:${y.position}`);
    for (let i = 0; i < a.n; i++) assert.ok(Math.abs(x.pRestored[i]! - y.pRestored[i]!) < 1e-6, `${x.site}@${x.layer} ${x.position} example ${i}`);
  }
});
