import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import {
  validateDatasetParams, resolveDatasetParams, formatIssues, AR_DEFAULTS, ATR_DEFAULTS, CORRUPTION_DEFAULTS,
  TASK_PRESETS, PAPER_SIZES, type DatasetParams,
} from '../../src/data/params.ts';

const schema = JSON.parse(readFileSync('schemas/dataset.schema.json', 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

const AR: DatasetParams = { task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 }, sizes: { train: 100, dev: 10, test: 10 }, seed: 0 };
const ATR: DatasetParams = { task: { kind: 'atr', numTerminals: 20, maxRhsLen: 5 }, sizes: { train: 100, dev: 10, test: 10 }, seed: 0 };

/** The issues as "pointer: message" lines, for matching. */
const issues = (p: unknown): string => validateDatasetParams(p).map((i) => `${i.path}: ${i.message}`).join('\n');

test('the schema compiles under ajv strict mode and accepts every preset at paper sizes', () => {
  for (const [name, task] of Object.entries(TASK_PRESETS)) {
    const p = { task, sizes: { ...PAPER_SIZES, ...('heldOutFraction' in task ? { gen: 320 } : {}) }, seed: 42 };
    assert.ok(validate(p), `${name}: ${ajv.errorsText(validate.errors)}`);
    assert.deepEqual(validateDatasetParams(p), [], name);
  }
});

test('the schema rejects wrong shapes: bad kind, missing field, sizes ≤ 0, maxRhsLen < 2, unknown field', () => {
  const bad: unknown[] = [
    { ...AR, task: { ...AR.task, kind: 'mqar' } },
    { ...AR, task: { kind: 'ar', pairs: 3, numKeys: 16 } },
    { ...AR, sizes: { train: 0, dev: 10, test: 10 } },
    { ...ATR, task: { kind: 'atr', numTerminals: 20, maxRhsLen: 1 } },
    { ...AR, task: { ...AR.task, numTerminals: 20 } },
    { ...AR, lr: 1e-3 },
    { ...AR, seed: -1 },
    { ...AR, task: { ...AR.task, heldOutFraction: 1 } },
  ];
  for (const p of bad) {
    assert.equal(validate(p), false, `ajv accepted ${JSON.stringify(p)}`);
    assert.notDeepEqual(validateDatasetParams(p), [], `validateDatasetParams accepted ${JSON.stringify(p)}`);
  }
});

test('semantic checks name the field (JSON pointer) and the values', () => {
  assert.match(issues({ ...AR, task: { ...AR.task, pairs: 20 } }), /^\/task\/pairs: 20 pairs need 20 distinct keys, but numKeys is 16$/m);
  assert.match(issues({ ...AR, task: { ...AR.task, numValues: 2 } }), /^\/task\/pairs: 3 pairs need 3 distinct values, but numValues is 2$/m);
  assert.match(issues({ ...AR, task: { ...AR.task, heldOutFraction: 0.2 } }), /^\/sizes\/gen: is required when task.heldOutFraction > 0 \(got 0.2\)/m);
  assert.match(issues({ ...AR, sizes: { ...AR.sizes, gen: 10 } }), /^\/sizes\/gen: is only meaningful with task.heldOutFraction > 0/m);
  assert.match(issues({ ...AR, task: { ...AR.task, pairs: 16 }, corruption: { excludeContext: true } }), /^\/corruption\/excludeContext: needs a key and a value absent/m);
  assert.match(issues({ ...ATR, task: { ...ATR.task, maxRhsLen: 1 } }), /^\/task\/maxRhsLen: must be in \[2, /m);
  assert.match(issues({ ...ATR, task: { ...ATR.task, maxRules: 1, rulesInclusive: false } }), /^\/task\/maxRules: must be in \[2, /m);
  assert.match(issues({ ...AR, sizes: { train: 0, dev: 1, test: 1 } }), /^\/sizes\/train: must be in \[1, .*got 0$/m);
  assert.match(issues({ ...AR, sizes: { train: 1.5, dev: 1, test: 1 } }), /^\/sizes\/train: must be an integer, got 1.5$/m);
  assert.match(issues({ ...AR, task: { kind: 'mqar' } }), /^\/task\/kind: must be "ar" or "atr", got "mqar"$/m);
  assert.match(issues({ ...AR, task: { ...AR.task, numTerminals: 20 } }), /^\/task\/numTerminals: is not a known field/m);
  assert.match(issues({ ...AR, sizes: { train: 2 ** 28, dev: 1, test: 1 }, task: { ...AR.task, pairs: 16, numKeys: 4096, numValues: 4096 } }), /^\/sizes\/train: .* exceed one int32 tensor/m);
  assert.deepEqual(validateDatasetParams(null), [{ path: '', message: 'dataset params must be an object, got null' }]);
  assert.match(formatIssues(validateDatasetParams({ ...AR, seed: 'x' })), /invalid dataset params:\n {2}\/seed: must be an integer, got "x"/);
});

test('code defaults equal the defaults the schema states, and resolve fills every optional field', () => {
  // Task fields state their default in the description ("Default: 40."), not as a `default` keyword, which ajv
  // ignores inside oneOf; Corruption is outside the union and uses the keyword.
  const props = (def: string) => schema.definitions[def].properties as Record<string, { description?: string; default?: unknown }>;
  const stated = (def: string) => Object.fromEntries(Object.entries(props(def)).flatMap(([k, v]) => {
    const m = /Default: (.+)\.$/.exec(v.description ?? '');
    return m ? [[k, JSON.parse(m[1]!)]] : [];
  }));
  assert.deepEqual(stated('ArTask'), { ...AR_DEFAULTS });
  assert.deepEqual(stated('AtrTask'), { ...ATR_DEFAULTS });
  assert.deepEqual({ excludeContext: props('Corruption').excludeContext!.default }, { ...CORRUPTION_DEFAULTS });
  const r = resolveDatasetParams(ATR);
  assert.deepEqual(Object.keys(r.task).sort(), Object.keys(props('AtrTask')).sort());
  assert.equal(r.corruption.excludeContext, false);
});

test('the schema also compiles for an engine that runs ajv with useDefaults in strict mode', () => {
  const v = new Ajv({ useDefaults: true, strict: true }).compile(schema);
  const p = { ...ATR, corruption: {} };
  assert.ok(v(p));
  assert.deepEqual(p.corruption, { excludeContext: false });
});
