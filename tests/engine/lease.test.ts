import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync, readFileSync, utimesSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { tryLease, readLease, holderGone, type LeaseInfo } from '../../src/engine/lease.ts';
import { procStartOf, acquireLock, LOCK_FILE } from '../../src/engine/lock.ts';
import { EngineError } from '../../src/engine/index.ts';
import { project, waitFor } from './helpers.ts';

const info = (over: Partial<LeaseInfo>): LeaseInfo => ({
  pid: process.pid,
  host: hostname(),
  procStart: procStartOf(process.pid),
  owner: 'someone',
  acquiredAt: '2020-01-01T00:00:00.000Z',
  leaseUntil: Date.now() + 60_000,
  note: 'other engine',
  ...over,
});

test('lease: a live holder on this host is respected; a dead one is taken over', () => {
  const p = project();
  try {
    const f = join(p.dir, 'claims/k.json');
    const first = tryLease(f, 'first');
    assert.ok('release' in first);
    const second = tryLease(f, 'second');
    assert.ok(!('release' in second), 'a live holder keeps its lease');
    assert.equal(second.note, 'first');
    first.release();
    assert.ok(!existsSync(f));

    writeFileSync(f, JSON.stringify(info({ pid: 2 ** 22 + 4321, procStart: null })));
    const seen: number[] = [];
    const l = tryLease(f, 'taker', (h) => seen.push(h.pid));
    assert.ok('release' in l, 'a dead holder on this host is provably gone');
    assert.deepEqual(seen, [2 ** 22 + 4321]);
    l.release();
  } finally {
    p.cleanup();
  }
});

test('lease: another host is trusted until its lease expires, then taken over', () => {
  const p = project();
  try {
    const f = join(p.dir, 'live/x.json');
    p.write('live/x.json', JSON.stringify(info({ host: 'elsewhere-node7', pid: 1, leaseUntil: Date.now() + 60_000 })));
    const r1 = tryLease(f, 'me');
    assert.ok(!('release' in r1), 'pid 1 on another host cannot be checked: its unexpired lease stands');
    assert.equal(holderGone(r1), false);

    p.write('live/x.json', JSON.stringify(info({ host: 'elsewhere-node7', pid: 1, leaseUntil: Date.now() - 60_000 })));
    const r2 = tryLease(f, 'me');
    assert.ok('release' in r2, 'an expired lease is provably abandoned');
    assert.equal((readLease(f) as LeaseInfo).host, hostname());
    r2.release();
  } finally {
    p.cleanup();
  }
});

test('lease: renew extends it; release never deletes a lease that is no longer ours', () => {
  const p = project();
  try {
    const f = join(p.dir, 'c.json');
    const l = tryLease(f, 'me');
    assert.ok('release' in l);
    const before = (readLease(f) as LeaseInfo).leaseUntil;
    l.info = { ...l.info, leaseUntil: before - 10_000 };
    assert.ok(l.renew());
    assert.ok((readLease(f) as LeaseInfo).leaseUntil >= before);
    // someone took it over (say ours had expired): our release must leave theirs alone
    writeFileSync(f, JSON.stringify(info({ owner: 'thief' })));
    assert.equal(l.renew(), false);
    l.release();
    assert.equal(JSON.parse(readFileSync(f, 'utf8')).owner, 'thief');
  } finally {
    p.cleanup();
  }
});

test('store lock: another host is respected while it renews, taken over once it stopped (lease expired)', async () => {
  const p = project();
  try {
    const f = join(p.dir, LOCK_FILE);
    const other = JSON.stringify({ pid: 1, host: 'elsewhere-node7', startedAt: '2020-01-01T00:00:00.000Z', procStart: null, command: 'run on another host' });
    writeFileSync(f, other);
    await assert.rejects(acquireLock(p.dir, { wait: false }), (e: unknown) => e instanceof EngineError && e.code === 'lock_busy' && e.fields.host === 'elsewhere-node7');
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(f, old, old); // nobody touched it for 10 minutes (the lease is 60 s)
    const seen: string[] = [];
    const l = await acquireLock(p.dir, { wait: false, onTakeover: (h) => seen.push(h.host) });
    assert.deepEqual(seen, ['elsewhere-node7']);
    assert.equal(JSON.parse(readFileSync(f, 'utf8')).host, hostname());
    l.release();
  } finally {
    p.cleanup();
  }
});

test('store lock: the holder renews its lease (the file is touched while held)', async () => {
  const p = project();
  const prev = process.env.MECHEVAL_LEASE_MS;
  process.env.MECHEVAL_LEASE_MS = '300';
  try {
    const l = await acquireLock(p.dir, { wait: false });
    const f = join(p.dir, LOCK_FILE);
    const old = new Date(Date.now() - 60_000);
    utimesSync(f, old, old);
    await waitFor(() => Date.now() - statSync(f).mtimeMs < 30_000, 5_000);
    l.release();
  } finally {
    if (prev === undefined) delete process.env.MECHEVAL_LEASE_MS;
    else process.env.MECHEVAL_LEASE_MS = prev;
    p.cleanup();
  }
});
