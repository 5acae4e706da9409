/**
 * @module lock — one writer per store.
 *
 * The lock file records pid, host, start time and (on Linux) the kernel's start tick of the
 * holder, so a reused pid is not mistaken for the holder. A lock whose holder is dead is taken
 * over with a warning (DVC's rwlock does the same; Snakemake's lack of it forces `--unlock`).
 * Liveness can only be checked on the same host; a lock from another host is respected while its
 * lease runs: the holder touches the file every third of the lease (60 s, MECHEVAL_LEASE_MS), and
 * a lock from another host whose file went untouched longer than that is taken over (issue 9: a
 * stale lock only when its holder is provably gone).
 * A second writer waits (printing who holds the lock) or, with `wait: false`, fails at once.
 */
import { writeFileSync, readFileSync, unlinkSync, mkdirSync, statSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EngineError } from './errors.ts';

export interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  procStart: string | null;
  command: string;
}

export interface LockOptions {
  /** Wait for the holder to finish (default) or fail at once. A number = wait at most that many ms. */
  wait?: boolean | number;
  onWait?: (holder: LockInfo) => void;
  onTakeover?: (holder: LockInfo) => void;
  signal?: AbortSignal;
  command?: string;
}

export interface HeldLock {
  readonly info: LockInfo;
  release(): void;
}

export const LOCK_FILE = 'LOCK';

/** Lease time-to-live for cross-host locks; `MECHEVAL_LEASE_MS` overrides it (tests use short ones). */
export function leaseTtlMs(): number {
  const v = Number(process.env.MECHEVAL_LEASE_MS);
  return Number.isInteger(v) && v >= 300 ? v : 60_000;
}
/** Clocks of the hosts sharing a store are assumed to agree within this. */
export const LEASE_SKEW_MS = 2_000;

/** A lock file from another host that nobody touched for longer than the lease: its holder is gone. */
function leaseExpired(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > leaseTtlMs() + LEASE_SKEW_MS;
  } catch {
    return false;
  }
}

export function procStartOf(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function isAlive(info: LockInfo): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (info.procStart !== null) {
    const now = procStartOf(info.pid);
    if (now !== null && now !== info.procStart) return false; // pid reused by another process
  }
  return true;
}

function readLock(path: string): LockInfo | 'torn' | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as LockInfo;
  } catch {
    return 'torn';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireLock(cacheDir: string, opts: LockOptions = {}): Promise<HeldLock> {
  mkdirSync(cacheDir, { recursive: true });
  const path = join(cacheDir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    procStart: procStartOf(process.pid),
    command: opts.command ?? process.argv.slice(1).join(' '),
  };
  const text = JSON.stringify(info);
  const deadline = typeof opts.wait === 'number' ? Date.now() + opts.wait : opts.wait === false ? Date.now() : Infinity;
  let announced = false;
  for (;;) {
    if (opts.signal?.aborted) throw new EngineError({ code: 'lock_busy', message: 'cancelled while waiting for the store lock', fields: { lock: path } });
    try {
      writeFileSync(path, text, { flag: 'wx' });
      // renew the lease: other hosts cannot check our pid, only that we keep touching the file
      const renew = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          /* released or taken over */
        }
      }, Math.max(100, Math.floor(leaseTtlMs() / 3)));
      renew.unref();
      const release = (): void => {
        clearInterval(renew);
        process.removeListener('exit', release);
        try {
          if (readFileSync(path, 'utf8') === text) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      process.on('exit', release);
      return { info, release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readLock(path);
    if (holder === undefined) continue; // released between our attempts
    if (holder === 'torn') {
      // A writer died between creating and filling the file; give a live writer 2 s to finish.
      try {
        if (Date.now() - statSync(path).mtimeMs > 2000) takeOver(path, readFileSync(path, 'utf8'));
      } catch {
        /* raced */
      }
      await sleep(50);
      continue;
    }
    if ((holder.host === info.host && !isAlive(holder)) || (holder.host !== info.host && leaseExpired(path))) {
      if (takeOver(path, JSON.stringify(holder))) opts.onTakeover?.(holder);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new EngineError({
        code: 'lock_busy',
        message: `the store ${cacheDir} is locked by another run`,
        fields: { pid: String(holder.pid), host: holder.host, since: holder.startedAt, command: holder.command, lock: path },
        hint: holder.host === info.host ? 'wait for that run to finish (drop --no-wait to wait automatically)' : `that run is on another host; wait for it (its lock is taken over once it stops renewing it for ${Math.round(leaseTtlMs() / 1000)} s), or use a different --cache`,
      });
    }
    if (!announced) {
      opts.onWait?.(holder);
      announced = true;
    }
    await sleep(100);
  }
}

/**
 * Remove a stale lock, guarded by a short-lived takeover lock so that two takers cannot both
 * delete (one of them would otherwise delete the other's fresh lock).
 */
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
      return false;
    }
    if (current !== staleText) return false;
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
