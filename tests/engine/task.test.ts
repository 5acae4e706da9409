import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stage, fn, cmd, sh, matrix, matrixId, pipeline, EngineError, exitCodeOf, selectTargets } from '../../src/engine/index.ts';
import { validateParams } from '../../src/engine/schema.ts';

const body = fn('stages.ts', 'run');
const isCode = (code: string) => (e: unknown) => e instanceof EngineError && e.code === code;

test('output names that escape the output dir are rejected', () => {
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', '', 'a//b', './a', 'a\\b', 'C:/x']) {
    assert.throws(() => stage({ id: 's', outputs: [bad], run: body }), (e: unknown) => isCode('stage_invalid')(e) && exitCodeOf(e) === 2, bad);
  }
  assert.throws(() => stage({ id: 's', outputs: ['a', 'a/b'], run: body }), /overlap/);
  assert.throws(() => stage({ id: 's', outputs: [], run: body }), /no outputs/);
  const ok = stage({ id: 's', outputs: ['model.bin', 'plots/', 'a/b.txt'], run: body });
  assert.deepEqual(ok.outputs, ['model.bin', 'plots/', 'a/b.txt']);
});

test('stage ids are readable path segments', () => {
  for (const bad of ['', '/a', 'a/', 'a//b', '../a', 'a/../b', 'a b', '.hidden']) {
    assert.throws(() => stage({ id: bad, outputs: ['x'], run: body }), isCode('stage_invalid'), bad);
  }
  stage({ id: 'train/mamba-d64-lr1e-3', outputs: ['x'], run: body });
});

test('matrices expand to one stage per combination with readable ids', () => {
  const ss = matrix({ arch: ['mamba', 'attn'], lr: [1e-3, 3e-4], seed: [0, 1] }, (v) =>
    stage({ id: matrixId('train', v), params: v, outputs: ['m'], run: body }),
  );
  assert.equal(ss.length, 8);
  assert.equal(ss[0]!.id, 'train/arch=mamba,lr=0.001,seed=0');
  assert.equal(ss[7]!.id, 'train/arch=attn,lr=0.0003,seed=1');
  assert.equal(new Set(ss.map((s) => s.id)).size, 8);
});

test('pipelines reject duplicates, unknown inputs, cycles and nested ids', () => {
  const a = stage({ id: 'a', outputs: ['x'], run: body });
  assert.throws(() => pipeline({ stages: [a, a] }), isCode('duplicate_stage'));
  assert.throws(() => pipeline({ stages: [stage({ id: 'b', inputs: { x: 'nope' }, outputs: ['x'], run: body })] }), isCode('unknown_stage'));
  const c1 = stage({ id: 'c1', inputs: { x: 'c2' }, outputs: ['x'], run: body });
  const c2 = stage({ id: 'c2', inputs: { x: 'c1' }, outputs: ['x'], run: body });
  assert.throws(() => pipeline({ stages: [c1, c2] }), (e: unknown) => isCode('cycle')(e) && /c1 → c2 → c1|c2 → c1 → c2/.test((e as Error).message));
  assert.throws(() => pipeline({ stages: [a, stage({ id: 'a/b', outputs: ['x'], run: body })] }), /path prefix/);
});

test('pipelines order stages topologically and select targets with their upstream', async () => {
  const a = stage({ id: 'data/a', outputs: ['x'], run: body });
  const b = stage({ id: 'train/b', inputs: { d: a }, outputs: ['x'], run: body });
  const c = stage({ id: 'report/c', inputs: { m: b }, outputs: ['x'], run: body });
  const p = pipeline({ stages: [c, b, a] });
  assert.deepEqual(p.stages.map((s) => s.id), ['data/a', 'train/b', 'report/c']);
  assert.deepEqual([...(await selectTargets(p, ['train/*']))].sort(), ['data/a', 'train/b']);
  await assert.rejects(selectTargets(p, ['nothing/*']), isCode('unknown_stage'));
});

test('commands keep placeholders symbolic and refuse undeclared inputs', () => {
  const s = stage({ id: 'c', params: { msg: 'hi' }, schema: { type: 'object' }, inputs: { up: 'u' }, outputs: ['o'], run: cmd(({ params, inputs, outDir }) => sh`cat ${inputs.up}/f ${params.msg} > ${outDir}/o`) });
  assert.equal(s.body.kind, 'command');
  assert.equal(JSON.stringify(s.body.kind === 'command' ? s.body.template.values : null), '[{"$placeholder":"input:up"},"hi",{"$placeholder":"outDir"}]');
  assert.throws(() => stage({ id: 'c', outputs: ['o'], run: cmd(({ inputs }) => sh`cat ${inputs.nope}`) }), /undeclared input/);
});

test('params are validated against the schema, every error with its JSON pointer', () => {
  const schema = { type: 'object', properties: { lr: { type: 'number', exclusiveMinimum: 0 }, layers: { type: 'integer' }, opt: { type: 'object', properties: { beta: { type: 'number' } } } }, required: ['lr', 'layers'], additionalProperties: false };
  const good = stage({ id: 'g', params: { lr: 0.1, layers: 2 }, schema, outputs: ['x'], run: body });
  validateParams([good], '/');
  const bad = stage({ id: 'train/x', params: { lr: -1, opt: { beta: 'high' }, extra: 1 } as never, schema, outputs: ['x'], run: body });
  const noSchema = stage({ id: 'n', params: { a: 1 }, outputs: ['x'], run: body });
  assert.throws(
    () => validateParams([good, bad, noSchema], '/'),
    (e: unknown) => {
      assert.ok(e instanceof EngineError);
      assert.equal(e.code, 'params_invalid');
      assert.equal(e.exitCode, 2);
      const text = e.fields.errors!;
      for (const needle of ['train/x /lr:', 'train/x /layers:', 'train/x /opt/beta:', 'train/x /extra:', 'n /: stage has params but no schema']) assert.ok(text.includes(needle), `${needle} in\n${text}`);
      return true;
    },
  );
});
