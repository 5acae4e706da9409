/**
 * @module lease — cross-host locks with leases, for a store on a shared filesystem.
 *
 * A lease file records who holds it (host, pid, kernel start tick, a random owner id) and until
 * when (`leaseUntil`, epoch ms). The holder renews it every third of its time-to-live. Another
 * process takes it over only when the holder is *provably* gone (issue 9):
 *   - same host and the pid is dead (or reused: start tick differs), or
 *   - the lease expired (`now > leaseUntil + skew`): the holder stopped renewing, whatever its host.
 * Creation is `open(O_CREAT|O_EXCL)` (atomic on local filesystems and NFSv3+); a takeover goes
 * through a short guard file so two takers cannot both delete, the second one deleting the
 * first one's fresh lease (the same guard as lock.ts).
 *
 * Simplification, stated: a holder frozen longer than its TTL (SIGSTOP, a suspended VM) loses its
 * lease without knowing; clocks across hosts are assumed to agree within `LEASE_SKEW_MS`.
 */
import { writeFileSync, readFileSync, unlinkSync, statSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { writeFileAtomicSync } from './fsutil.ts';
import { isAlive, procStartOf, leaseTtlMs, LEASE_SKEW_MS } from './lock.ts';

export interface LeaseInfo {
  pid: number;
  host: string;
  procStart: string | null;
  owner: string;
  acquiredAt: string;
  leaseUntil: number;
  /** what the holder is doing (shown to waiters) */
  note: string;
}

export { leaseTtlMs, LEASE_SKEW_MS };

/** True when the holder is provably gone: same host and dead pid, or an expired lease. */
export function holderGone(h: LeaseInfo, now = Date.now()): boolean {
  if (h.host === hostname() && !isAlive({ pid: h.pid, procStart: h.procStart, host: h.host, startedAt: h.acquiredAt, command: '' })) return true;
  return now > h.leaseUntil + LEASE_SKEW_MS;
}

export function readLease(path: string): LeaseInfo | 'torn' | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as LeaseInfo;
    return typeof v.owner === 'string' && typeof v.leaseUntil === 'number' ? v : 'torn';
  } catch {
    return 'torn';
  }
}

/** Renewals of every lease this process holds, on one unref'd timer. */
const held = new Set<Lease>();
let timer: NodeJS.Timeout | undefined;
function keep(l: Lease): void {
  held.add(l);
  if (!timer) {
    timer = setInterval(() => {
      for (const x of held) x.renew();
    }, Math.max(100, Math.floor(leaseTtlMs() / 3)));
    timer.unref();
  }
}
function drop(l: Lease): void {
  held.delete(l);
  if (held.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

export class Lease {
  private released = false;
  constructor(
    readonly path: string,
    public info: LeaseInfo,
  ) {
    keep(this);
    process.once('exit', this.releaseOnExit);
  }
  private readonly releaseOnExit = (): void => this.release();

  /** Extend the lease, if it is still ours. Returns false when it was taken over. */
  renew(): boolean {
    if (this.released) return false;
    const cur = readLease(this.path);
    if (typeof cur !== 'object' || cur.owner !== this.info.owner) return false;
    this.info = { ...this.info, leaseUntil: Date.now() + leaseTtlMs() };
    try {
      writeFileAtomicSync(this.path, JSON.stringify(this.info), { dirSync: false });
      return true;
    } catch {
      return false;
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    drop(this);
    process.removeListener('exit', this.releaseOnExit);
    const cur = readLease(this.path);
    if (typeof cur === 'object' && cur.owner === this.info.owner) {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * One attempt: the lease, or the live holder. A stale holder (provably gone) is taken over and
 * reported through `onTakeover`; a torn file older than 2 s counts as stale.
 */
export function tryLease(path: string, note: string, onTakeover?: (h: LeaseInfo) => void): Lease | LeaseInfo {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const info: LeaseInfo = {
      pid: process.pid,
      host: hostname(),
      procStart: procStartOf(process.pid),
      owner: randomBytes(8).toString('hex'),
      acquiredAt: new Date().toISOString(),
      leaseUntil: Date.now() + leaseTtlMs(),
      note,
    };
    const text = JSON.stringify(info);
    try {
      writeFileSync(path, text, { flag: 'wx' });
      return new Lease(path, info);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const h = readLease(path);
    if (h === undefined) continue; // released between the two calls
    if (h === 'torn') {
      let old = false;
      try {
        old = Date.now() - statSync(path).mtimeMs > 2000;
      } catch {
        continue;
      }
      if (old && takeOver(path, readFileSync(path, 'utf8'))) continue;
      if (attempt > 3) return { pid: 0, host: '?', procStart: null, owner: '?', acquiredAt: '?', leaseUntil: Date.now() + 2000, note: 'being written' };
      continue;
    }
    if (holderGone(h)) {
      if (takeOver(path, JSON.stringify(h))) {
        onTakeover?.(h);
        continue;
      }
      if (attempt < 3) continue; // another taker holds the guard: look again
    }
    return h;
  }
}

/** Delete a stale lease file if it still holds exactly `staleText`, under a guard file. */
function takeOver(path: string, staleText: string): boolean {
  const guard = `${path}.takeover`;
  try {
    writeFileSync(guard, String(process.pid), { flag: 'wx' });
  } catch {
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) unlinkSync(guard);
    } catch {
      /* raced */
    }
    return false;
  }
  try {
    let current: string;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      return true; // already gone
    }
    if (current !== staleText && !sameLease(current, staleText)) return false;
    unlinkSync(path);
    return true;
  } finally {
    try {
      unlinkSync(guard);
    } catch {
      /* ignore */
    }
  }
}

function sameLease(a: string, b: string): boolean {
  try {
    return (JSON.parse(a) as LeaseInfo).owner === (JSON.parse(b) as LeaseInfo).owner && (JSON.parse(a) as LeaseInfo).leaseUntil === (JSON.parse(b) as LeaseInfo).leaseUntil;
  } catch {
    return false;
  }
}
