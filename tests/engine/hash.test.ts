import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile, hashFileSync, CHUNK, isHash, algorithmOf } from '../../src/engine/hash.ts';
import { project } from './helpers.ts';

test('file digests match SHA-256 of the bytes at chunk boundaries', async () => {
  const p = project();
  try {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]) {
      const bytes = randomBytes(size);
      const f = join(p.dir, `f${size}`);
      writeFileSync(f, bytes);
      const want = createHash('sha256').update(bytes).digest('hex');
      assert.equal(await hashFile(f), want, `size ${size}`);
      assert.equal(hashFileSync(f), want, `sync size ${size}`);
    }
  } finally {
    p.cleanup();
  }
});

test('BLAKE3 digests are prefixed and match the reference vector', async () => {
  const p = project({ empty: '' });
  try {
    const d = await hashFile(p.path('empty'), 'blake3');
    // BLAKE3 of the empty input (from the BLAKE3 reference test vectors)
    assert.equal(d, 'b3-af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    assert.ok(isHash(d));
    assert.equal(algorithmOf(d), 'blake3');
  } finally {
    p.cleanup();
  }
});
