/**
 * Cost of the intervention sweep (issue 6) for one checkpoint at the default study's size (AR 3 pairs, 16 + 16; d = 64;
 * 320 test examples; every layer × site × the six positions; key corruption), relative to one clean evaluation pass
 * over the same examples and to the checkpoint's training (steps × measured step time). Target: sweep ≤ 10% of
 * training. Prints figures and ratios; asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, describeBackend } from '../src/models/tf.ts';
import { createLanguageModel } from '../src/models/index.ts';
import { buildDataset } from '../src/data/dataset.ts';
import { loadSplit } from '../src/train/split.ts';
import { train } from '../src/train/loop.ts';
import { evaluate } from '../src/train/evaluate.ts';
import { sweep } from '../src/interventions/sweep.ts';

const D = 64, KEYS = 16, PAIRS = 3, N = 320;
/** The default study's training steps for these mixers (configs/default.json). */
const STEPS: Record<string, number> = { attention: 3000, based: 1500, mamba: 2000, delta_net: 800 };

export async function run(): Promise<void> {
  const info = await initBackend('auto');
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-bench-iv-'));
  buildDataset({ task: { kind: 'ar', pairs: PAIRS, numKeys: KEYS, numValues: KEYS }, sizes: { train: 32 * 25, dev: 32, test: N }, seed: 1 }, dir);
  const data = loadSplit(dir, 'train'), test = loadSplit(dir, 'test');
  console.log(`backend: ${describeBackend(info)}; ${N} examples, all sites × 6 positions, key corruption`);
  console.log(`${'mixer'.padEnd(10)} ${'sweep s'.padStart(8)} ${'eval s'.padStart(7)} ${'sweep/eval'.padStart(10)} ${'train s (est.)'.padStart(15)} ${'sweep/train'.padStart(11)}`);
  for (const mixer of Object.keys(STEPS)) {
    const lm = createLanguageModel({ mixer: mixer as 'attention', d_model: D, n_layers: 2, vocab_size: 3 + 2 * KEYS, n_positions: 64, pos_emb: mixer === 'attention' });
    const stamps: number[] = [];
    train(lm, data, null, { lr: 1e-3, steps: 25, eval_every: 0, checkpoint_every: 0 }, { afterStep: () => stamps.push(performance.now()) });
    const stepMs = (stamps.at(-1)! - stamps[4]!) / 20;
    let t = performance.now();
    evaluate(lm, test);
    const evalS = (performance.now() - t) / 1000;
    t = performance.now();
    const r = sweep(lm, test, { limit: N });
    const sweepS = (performance.now() - t) / 1000;
    const trainS = (STEPS[mixer]! * stepMs) / 1000;
    console.log(`${mixer.padEnd(10)} ${sweepS.toFixed(2).padStart(8)} ${evalS.toFixed(2).padStart(7)} ${(sweepS / evalS).toFixed(1).padStart(9)}× ${trainS.toFixed(0).padStart(15)} ${((100 * sweepS) / trainS).toFixed(1).padStart(10)}%   (${r.patches.length} patch sets)`);
    lm.dispose();
  }
  rmSync(dir, { recursive: true, force: true });
}
