import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv from 'ajv';
import { loadSchema } from '../schemas/index.ts';

const ajv = new Ajv.default({ allErrors: true, strict: false });

test('cross-file refs are inlined and validate like the originals', () => {
  const s = loadSchema('train-stage');
  assert.ok(!/"\$ref":"[^"#]*\.schema\.json/.test(JSON.stringify(s)), 'no file refs left');
  const v = ajv.compile(s);
  assert.ok(v({ model: { mixer: 'mamba', d_model: 64, n_layers: 2, vocab_size: 35 }, train: { lr: 1e-3, steps: 10 } }));
  assert.ok(!v({ model: { mixer: 'lstm', d_model: 64, n_layers: 2, vocab_size: 35 }, train: { lr: 1e-3, steps: 10 } }));
  assert.ok(v.errors!.some((e) => e.instancePath === '/model/mixer'), JSON.stringify(v.errors));
});

test('an embedded schema with its own definitions keeps working (experiment → dataset)', () => {
  const v = ajv.compile(loadSchema('experiment'));
  const ok = {
    name: 'x', tasks: { ar3: { task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 }, sizes: { train: 64, dev: 8, test: 8 }, seed: 1 } },
    groups: [{ name: 'main', task: 'ar3', mixers: ['attention'], d_model: [8], lr: { attention: [3e-4], default: [1e-3] }, steps: 10 }],
  };
  assert.ok(v(ok), JSON.stringify(v.errors));
  const bad = structuredClone(ok) as any;
  bad.tasks.ar3.task.pairs = 0;
  assert.ok(!v(bad));
  assert.ok(v.errors!.some((e) => e.instancePath === '/tasks/ar3/task/pairs' || e.instancePath.startsWith('/tasks/ar3/task')), JSON.stringify(v.errors));
});
