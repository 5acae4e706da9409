import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attribTable, FILTER_MIN_GAP } from '../../src/interventions/attrib.ts';
import { callMechanism } from '../../src/interventions/mechanism.ts';
import type { SweepResult, PatchResult } from '../../src/interventions/sweep.ts';
import type { PositionName } from '../../src/train/split.ts';

const f = (...xs: number[]) => Float32Array.from(xs);

function result(pOrig: number[], pCorr: number[], patches: [number, string, PositionName, number[]][]): SweepResult {
  return {
    corruption: 'key', n: pOrig.length,
    pOrig: f(...pOrig), pCorr: f(...pCorr), logitOrig: f(...pOrig.map(() => 0)), logitCorr: f(...pCorr.map(() => 1)),
    patches: patches.map(([layer, site, position, p]): PatchResult => ({ layer, site: site as PatchResult['site'], position, pRestored: f(...p), logitRestored: f(...p.map(() => 3)) })),
  };
}

test('Attrib takes the means before the ratio, and max_perc counts the best position per example', () => {
  const t = attribTable(result([1, 0.5], [0, 0.1], [
    [1, 'block_input', 'value', [1, 0.1]],
    [1, 'block_input', 'query', [0, 0.5]],
  ]));
  assert.ok(t.analysed);
  const value = t.rows.find((r) => r.position === 'value')!;
  const query = t.rows.find((r) => r.position === 'query')!;
  // means: p_orig 0.75, p_corr 0.05, value restored 0.55 → (0.55 − 0.05)/0.7; a per-example ratio would give 0.5.
  assert.ok(Math.abs(value.attrib! - 0.5 / 0.7) < 1e-6, String(value.attrib));
  assert.ok(Math.abs(query.attrib! - 0.2 / 0.7) < 1e-6);
  assert.equal(value.max_perc, 0.5);
  assert.equal(query.max_perc, 0.5);
  assert.equal(value.logit_diff, 2);
  assert.equal(value.n, 2);
});

test(`the filter: a checkpoint with mean p_orig − mean p_corr ≤ ${FILTER_MIN_GAP} is not analysed`, () => {
  const t = attribTable(result([0.5, 0.5], [0.495, 0.495], [[1, 'block_input', 'value', [0.5, 0.5]]]));
  assert.equal(t.analysed, false);
  assert.equal(t.rows[0]!.attrib, null);
  assert.equal(callMechanism(t, 2).call, 'not_analysed');
  assert.equal(attribTable(result([0.52, 0.52], [0.5, 0.5], [[1, 'block_input', 'value', [0.5, 0.5]]])).analysed, true);
});

function table(value: number, query: number, key: number, convNext?: number) {
  const rows: [number, string, PositionName, number[]][] = [
    [1, 'block_input', 'value', [value]], [1, 'block_input', 'query', [query]], [1, 'block_input', 'key', [key]],
  ];
  if (convNext !== undefined) rows.push([0, 'conv_output', 'next_key', [convNext]]);
  return attribTable(result([1], [0], rows));
}

test('mechanism calls follow the §5.2 rule', () => {
  assert.equal(callMechanism(table(0.98, 0.01, 0), 2).call, 'induction');
  assert.equal(callMechanism(table(0, 1, 0), 2).call, 'direct_retrieval');
  assert.equal(callMechanism(table(0, 0.1, 0.9), 2).call, 'delayed_retrieval');
  assert.equal(callMechanism(table(0.6, 0.6, 0), 2).call, 'mixed');
  assert.equal(callMechanism(table(0.2, 0.3, 0.1), 2).call, 'none');
  const mamba = callMechanism(table(0, 1, 0, 0.97), 2);
  assert.equal(mamba.call, 'direct_retrieval');
  assert.equal(mamba.internal, 'conv_next_key');
  assert.ok(Math.abs(mamba.evidence.conv_output_next_key! - 0.97) < 1e-6);
  assert.equal(callMechanism(table(0, 1, 0, 0.02), 2).internal, null);
});
