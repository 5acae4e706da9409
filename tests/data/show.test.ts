import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset } from '../../src/data/dataset.ts';
import { showDataset } from '../../src/data/show.ts';

test('show decodes n documents per split with every position marked and the counterfactual substitutions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mecheval-show-'));
  try {
    buildDataset({ task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16 }, sizes: { train: 10, dev: 5, test: 5 }, seed: 1 }, dir);
    const out = showDataset(dir, 2);
    assert.match(out, /^AR dataset .*pairs=3.*\(vocab 35, width 11\)/);
    for (const split of ['train: 10 documents', 'dev: 5 documents', 'test: 5 documents']) assert.ok(out.includes(split), split);
    const docs = out.split('\n').filter((l) => l.startsWith('  <bos>'));
    assert.equal(docs.length, 6);
    for (const d of docs) {
      for (const p of ['key', 'value', 'divider', 'query', 'answer']) assert.match(d, new RegExp(`«[^»]*\\b${p}\\b[^»]*»`), `${p} unmarked in ${d}`);
      assert.match(d, /next_key/);
      assert.match(d, / k\d+«query» v\d+«answer» <eos>$/);
    }
    assert.match(out, /key corrupted: {3}pos \d+ {2}k\d+ → k\d+/);
    assert.match(out, /value corrupted: pos \d+ {2}v\d+ → v\d+/);
    assert.equal(showDataset(dir, 1, { splits: ['dev'] }).split('\n').filter((l) => l.startsWith('  <bos>')).length, 1);
    assert.throws(() => showDataset(dir, 1, { splits: ['gen'] }), /has no split "gen"/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
  assert.throws(() => showDataset(join(dir, 'nope'), 1), /has no meta.json/);
});
