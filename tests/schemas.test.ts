import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { generate } from '../scripts/gen-types.ts';

test('generated schema types are up to date (run `npm run gen:types`)', async () => {
  const files = await generate();
  for (const [path, ts] of files) {
    assert.ok(existsSync(path), `${path} is missing`);
    assert.equal(readFileSync(path, 'utf8'), ts, `${path} is stale`);
  }
});

test('every generated type file has a schema', () => {
  if (!existsSync('schemas/types')) return;
  const expected = new Set(readdirSync('schemas').filter((f) => f.endsWith('.schema.json')).map((f) => f.replace('.schema.json', '.ts')));
  for (const f of readdirSync('schemas/types')) assert.ok(expected.has(f), `schemas/types/${f} has no schemas/*.schema.json source`);
});
