/**
 * A small deterministic probe of a LanguageModel, used by conformance.test.ts to compare backends: tfjs allows one
 * backend per process, so the test runs this file in a child process as
 *   node --import tsx tests/models/lm-probe.ts <cpu|wasm> '<ModelConfig JSON>'
 * which prints the probe's JSON on stdout. The same function runs in the test process on the other backend.
 */
import { pathToFileURL } from 'node:url';
import { tf, initBackend } from '../../src/models/tf.ts';
import { LanguageModel } from '../../src/models/lm.ts';
import type { ModelConfig } from '../../src/models/config.ts';

export interface ProbeResult {
  backend: string;
  hidden: number[];
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

export const PROBE_B = 3, PROBE_T = 9;

export function probe(config: ModelConfig): ProbeResult {
  const lm = new LanguageModel(config);
  const V = lm.cfg.vocab_size;
  const ids = Int32Array.from({ length: PROBE_B * PROBE_T }, (_, i) => (i * 7 + 3) % V);
  const rows = Int32Array.from([0, 1, 2]), pos = Int32Array.from([PROBE_T - 1, 3, PROBE_T - 2]);
  const hidden = lm.forward({ ids, batch: PROBE_B, time: PROBE_T });
  const logits = lm.logitsAt(hidden, rows, pos);
  const target = tf.oneHot(tf.tensor1d([1, 2, 5], 'int32'), V);
  const { value, grads } = tf.variableGrads(() =>
    tf.losses.softmaxCrossEntropy(target, lm.logitsAt(lm.forward({ ids, batch: PROBE_B, time: PROBE_T }), rows, pos)) as tf.Scalar);
  const byName: Record<string, number[]> = {};
  for (const [name, v] of lm.params.vars) if (grads[v.name]) byName[name] = Array.from(grads[v.name]!.dataSync());
  return { backend: tf.getBackend(), hidden: Array.from(hidden.dataSync()), logits: Array.from(logits.dataSync()), loss: value.dataSync()[0]!, grads: byName };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [backend, json] = process.argv.slice(2);
  await initBackend(backend as 'cpu' | 'wasm');
  process.stdout.write(JSON.stringify(probe(JSON.parse(json!) as ModelConfig)));
}
