/**
 * PyTorch compatibility (issue 4): every registered mixer's checkpoint loads with `load_state_dict(strict=True)` into
 * the PyTorch module tree of state-dict.md (bench/torch_twin.py: modules named as in zoology / tinylang), the tree's
 * own state-dict key order equals ours, and the PyTorch forward pass on the loaded weights reproduces our hidden
 * states. Skipped, with the reason, where `/usr/bin/python3 -c 'import torch'` fails (Debian's python3-torch installs
 * into /usr/bin/python3, not the pyenv python on PATH). The key lists are checked without torch by checkpoint.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import { registeredMixers } from '../../src/models/mixers.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import { saveCheckpoint, stateDictEntries } from '../../src/models/checkpoint.ts';
import { useBackend } from './harness.ts';

await useBackend('cpu');

const PYTHON = '/usr/bin/python3';
const torchMissing = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0;
const skip = torchMissing ? `PyTorch is not installed (${PYTHON} -c 'import torch' fails; apt-get install python3-torch)` : false;

test('every registered mixer (and the tinylang ablation variants): strict load into the PyTorch module tree, same key order, same hidden states (< 1e-4)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-torch-'));
  try {
    const B = 2, T = 9, V = 37;
    const jobs: { path: string; ids: number[][]; hidden: number[] }[] = [];
    const keys = new Map<string, string[]>();
    const variants: Partial<ModelConfig>[] = [
      { mixer: 'mamba', d_conv: 0 }, { mixer: 'mamba', d_conv: 1 }, { mixer: 'mamba', d_conv: 2 }, // ar_32_mamba_ablation
      { mixer: 'based', d_conv: 1 }, { mixer: 'base_conv', d_conv: 2 }, { mixer: 'based', n_layers: 3 }, // based ablations, 3L
      { mixer: 'attention', n_heads: 2, pos_emb: false }, { mixer: 'delta_net', delta_heads: 1, n_layers: 1 },
    ];
    const configs = [...registeredMixers().map((mixer) => ({ mixer })), ...variants.filter((v) => registeredMixers().includes(v.mixer!))];
    for (const [i, variant] of configs.entries()) {
      const lm = new LanguageModel({ mixer: 'attention', d_model: 16, n_layers: 2, vocab_size: V, n_positions: 24, pos_emb: true, seed: 2, ...variant });
      const mixer = `${lm.cfg.mixer}#${i}`;
      // Off the init (so a loader that keeps its own init cannot agree), but gently: trained-model-like magnitudes.
      for (const [name, v] of lm.params.vars) {
        if (/\.pos_emb\.[zt]$|\.modulation\.deltas$/.test(name)) continue; // fixed features / buffers stay as built
        v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 3)));
      }
      const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 17 + t * 5 + 1) % V));
      const hidden = Array.from(lm.forward({ ids: Int32Array.from(ids.flat()), batch: B, time: T }).dataSync());
      const path = join(dir, `${mixer}.safetensors`);
      saveCheckpoint(lm, path);
      jobs.push({ path, ids, hidden });
      keys.set(path, stateDictEntries(lm).map((e) => e.name));
      lm.dispose();
    }
    const script = fileURLToPath(new URL('./torch_check.py', import.meta.url));
    const r = spawnSync(PYTHON, [script, JSON.stringify(jobs)], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
    assert.equal(r.status, 0, `torch_check.py failed: ${r.stderr.slice(-3000)}`);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; mixer: string; loaded: boolean; error?: string; keys: string[]; max_diff?: number; max_abs?: number });
    assert.equal(results.length, jobs.length);
    const failures: string[] = [];
    for (const res of results) {
      if (!res.loaded) { failures.push(`${res.mixer}: strict load failed: ${res.error}`); continue; }
      if (JSON.stringify(res.keys) !== JSON.stringify(keys.get(res.path))) failures.push(`${res.mixer}: PyTorch key order differs from ours`);
      if (!(res.max_diff! < 1e-4)) failures.push(`${res.mixer}: PyTorch hidden states differ by ${res.max_diff} (max |h| ${res.max_abs})`);
    }
    for (const res of results) console.log(`${res.path.split('/').pop()}: strict load ${res.loaded ? "ok" : "FAILED"}, max |Δh| ${res.max_diff?.toExponential(2)} (max |h| ${res.max_abs?.toFixed(2)})`);
    assert.deepEqual(failures, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
