import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { acquireLock, procStartOf, LOCK_FILE } from '../../src/engine/lock.ts';
import { EngineError } from '../../src/engine/index.ts';
import { project } from './helpers.ts';

const holder = (over: Record<string, unknown>) => JSON.stringify({ pid: process.pid, host: hostname(), startedAt: '2020-01-01T00:00:00.000Z', procStart: procStartOf(process.pid), command: 'other run', ...over });

test('a lock held by a dead process is taken over with a warning', async () => {
  const p = project();
  try {
    writeFileSync(join(p.dir, LOCK_FILE), holder({ pid: 2 ** 22 + 12345, procStart: null }));
    const seen: number[] = [];
    const l = await acquireLock(p.dir, { wait: false, onTakeover: (h) => seen.push(h.pid) });
    assert.deepEqual(seen, [2 ** 22 + 12345]);
    assert.equal(JSON.parse(readFileSync(join(p.dir, LOCK_FILE), 'utf8')).pid, process.pid);
    l.release();
    assert.ok(!existsSync(join(p.dir, LOCK_FILE)));
  } finally {
    p.cleanup();
  }
});

test('a reused pid (same pid, different process start) counts as dead', async (t) => {
  if (procStartOf(process.pid) === null) return t.skip('no /proc on this platform');
  const p = project();
  try {
    writeFileSync(join(p.dir, LOCK_FILE), holder({ procStart: '1' }));
    let took = false;
    (await acquireLock(p.dir, { wait: false, onTakeover: () => (took = true) })).release();
    assert.ok(took);
  } finally {
    p.cleanup();
  }
});

test('a live holder makes a second writer fail clearly (no wait) or wait until released', async () => {
  const p = project();
  try {
    const first = await acquireLock(p.dir, { command: 'first run' });
    await assert.rejects(acquireLock(p.dir, { wait: false }), (e: unknown) => {
      assert.ok(e instanceof EngineError && e.code === 'lock_busy');
      assert.equal(e.fields.pid, String(process.pid));
      assert.equal(e.fields.command, 'first run');
      return true;
    });
    await assert.rejects(acquireLock(p.dir, { wait: 150 }), /locked by another run/);
    let waited = false;
    const second = acquireLock(p.dir, { onWait: () => (waited = true) });
    setTimeout(() => first.release(), 100);
    const l2 = await second;
    assert.ok(waited);
    l2.release();
  } finally {
    p.cleanup();
  }
});

test('a lock from another host is respected, never taken over', async () => {
  const p = project();
  try {
    writeFileSync(join(p.dir, LOCK_FILE), holder({ host: 'elsewhere.example', pid: 2 ** 22 + 1 }));
    await assert.rejects(acquireLock(p.dir, { wait: false }), /locked by another run/);
  } finally {
    p.cleanup();
  }
});
