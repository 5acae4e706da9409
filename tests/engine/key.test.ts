import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, digestJson, keyOf, ENGINE_SALT, EngineError, type Recipe } from '../../src/engine/index.ts';
import { hashBytes } from '../../src/engine/hash.ts';

const recipe: Recipe = {
  kind: 'function',
  body: 'stages/train.ts#train',
  code: { 'stages/train.ts': 'a'.repeat(64), 'src/models/lm.ts': 'b'.repeat(64) },
  packages: { '@tensorflow/tfjs': '4.22.0' },
  params: { lr: 0.001, d: 64, arch: 'mamba', seed: 0 },
  inputs: { data: { stage: 'dataset/ar', digest: 'c'.repeat(64) } },
  env: { backend: 'cpu', tfjs: '4.22.0' },
  outputs: ['model.bin', 'metrics/'],
  timeoutMs: null,
};

test('canonical JSON sorts keys at every depth and has no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson(-0), '0');
  assert.equal(canonicalJson('é\n"'), '"é\\n\\""');
  assert.equal(canonicalJson(1e-3), '0.001');
});

test('canonical JSON rejects non-JSON values and names the pointer', () => {
  assert.throws(() => canonicalJson({ a: [1, Number.NaN] }), (e: unknown) => e instanceof EngineError && /\/a\/1/.test(e.message));
  assert.throws(() => canonicalJson({ a: undefined }), /\/a/);
  assert.throws(() => canonicalJson({ a: new Date(0) }), /Date/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /function/);
});

test('field boundaries are unambiguous (no Dagster #34184 collision)', () => {
  assert.notEqual(digestJson(['ab', 'c']), digestJson(['a', 'bc']));
  assert.notEqual(digestJson({ a: 'b,c' }), digestJson({ a: 'b', c: '' }));
});

test('golden digests are pinned (key stability)', () => {
  assert.equal(ENGINE_SALT, 'mecheval-engine/1');
  assert.equal(hashBytes('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(digestJson({ b: [1, 'x'], a: true }), hashBytes('{"a":true,"b":[1,"x"]}'));
  assert.equal(keyOf(recipe), 'a1a624b854d49a2a96e13d580ec982dd1603bddd27d0bb7d64f4fb9723786368');
});

test('every recipe field moves the key', () => {
  const k0 = keyOf(recipe);
  const variants: Partial<Recipe>[] = [
    { params: { ...(recipe.params as object), lr: 0.0003 } },
    { code: { ...recipe.code, 'src/models/lm.ts': 'd'.repeat(64) } },
    { packages: { '@tensorflow/tfjs': '4.22.1' } },
    { inputs: { data: { stage: 'dataset/ar', digest: 'e'.repeat(64) } } },
    { env: { backend: 'wasm', tfjs: '4.22.0' } },
    { outputs: ['model.bin'] },
    { timeoutMs: 1000 },
    { body: 'stages/train.ts#other' },
  ];
  for (const v of variants) assert.notEqual(keyOf({ ...recipe, ...v }), k0, JSON.stringify(v));
  assert.notEqual(keyOf(recipe, 'other-salt'), k0);
  // key order in the recipe object does not matter
  const shuffled = Object.fromEntries(Object.entries(recipe).reverse()) as unknown as Recipe;
  assert.equal(keyOf(shuffled), k0);
});

test('the hand-written recipe encoding equals generic canonical JSON', async () => {
  const { encodeRecipe } = await import('../../src/engine/key.ts');
  const variants: Recipe[] = [
    recipe,
    { ...recipe, inputs: {}, env: {}, params: null, timeoutMs: 5 },
    { ...recipe, inputs: { z: { stage: 'a', digest: 'd' }, a: { stage: 'b"q', digest: 'e' } }, params: [1, { b: 2, a: [null] }] },
    Object.freeze({ ...recipe, kind: 'command', body: { strings: ['a', 'b'], values: [{ $placeholder: 'outDir' }] } }) as Recipe,
  ];
  for (const r of variants) assert.equal(encodeRecipe(r), canonicalJson(r));
  assert.equal(keyOf(recipe), digestJson({ salt: ENGINE_SALT, recipe: recipe as never }));
});
