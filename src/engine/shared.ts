/**
 * @module shared — several engines, on several hosts, on one store (issue 9).
 *
 * The single-writer path (lock.ts: one `LOCK` per store for a whole build) stays the default.
 * A *shared* build instead:
 *   1. takes `LOCK` only for a moment, to register itself under `live/` with a lease (lease.ts),
 *      so `gc`, which holds `LOCK` for its whole run, never starts while an engine is live and
 *      no engine starts while `gc` runs;
 *   2. claims each stage key it is about to run (`claims/<key>.json`, a lease renewed while the
 *      body runs). A second engine reaching the same key waits for the claim, then finds the
 *      run entry the first one committed, verifies every object and materialises it: the stage
 *      runs once. A claim whose holder is provably gone (same host and dead pid, or an expired
 *      lease) is taken over and the stage runs again;
 *   3. never empties `tmp/` (another engine's running stages write there); `gc` does, when no
 *      engine is live.
 * Objects are content-addressed and renamed into place, so two engines writing the same object
 * is harmless; run entries are written by atomic rename, so concurrent writers of one key leave
 * one whole entry (both describe the same outputs).
 */
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { acquireLock, type HeldLock, type LockOptions } from './lock.ts';
import { tryLease, readLease, holderGone, type Lease, type LeaseInfo } from './lease.ts';
import { EngineError } from './errors.ts';
import { hashFile, objectPathIn } from './hash.ts';
import { manifestFiles, type Manifest, type RunEntry } from './store.ts';
import { materializeFiles } from './trace.ts';
import { writeFileAtomicSync, rmTree } from './fsutil.ts';
import { commitSync, type CommitRequest, type CommitResult } from './commit.ts';
import type { Executor, Job, JobHooks } from './executor.ts';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    }
    signal?.addEventListener('abort', done, { once: true });
  });


/** Register this engine as a live user of the store (waits while `gc` holds `LOCK`). */
export async function joinSharedStore(cacheDir: string, opts: LockOptions = {}): Promise<HeldLock> {
  const lock = await acquireLock(cacheDir, opts);
  try {
    const path = join(cacheDir, 'live', `${hostname()}-${process.pid}-${Date.now().toString(36)}.json`);
    const lease = tryLease(path, process.argv.slice(1).join(' '));
    if (!('release' in lease)) throw new EngineError({ code: 'internal', message: `could not register at ${path}` });
    return { info: lock.info, release: () => lease.release() };
  } finally {
    lock.release();
  }
}

/** Engines registered on the store whose holder is not provably gone; stale registrations are removed. */
export function liveEngines(cacheDir: string): LeaseInfo[] {
  const dir = join(cacheDir, 'live');
  if (!existsSync(dir)) return [];
  const out: LeaseInfo[] = [];
  for (const n of readdirSync(dir)) {
    if (!n.endsWith('.json')) continue;
    const h = readLease(join(dir, n));
    if (typeof h !== 'object') continue;
    if (holderGone(h)) rmTree(join(dir, n));
    else out.push(h);
  }
  return out;
}

/**
 * For `gc`, called while holding `LOCK` (so nobody new registers): wait until no other engine is
 * live, or fail with `lock_busy` when `wait` is false.
 */
export async function waitNoLiveEngines(cacheDir: string, opts: { wait: boolean; signal?: AbortSignal; onWait?: (live: LeaseInfo[]) => void }): Promise<void> {
  let announced = false;
  for (;;) {
    const live = liveEngines(cacheDir).filter((h) => !(h.host === hostname() && h.pid === process.pid));
    if (live.length === 0) return;
    if (!opts.wait || opts.signal?.aborted) {
      throw new EngineError({
        code: 'lock_busy',
        message: `${live.length} engine(s) are using the store ${cacheDir}`,
        fields: { engines: live.map((h) => `pid ${h.pid} on ${h.host} (${h.note})`).join('\n') },
        hint: 'gc deletes only when no run is live; wait for them (drop --no-wait)',
      });
    }
    if (!announced) opts.onWait?.(live);
    announced = true;
    await sleep(200, opts.signal);
  }
}

// ---------------------------------------------------------------------------------------------
// Verified commit of results written by someone else (another engine, or a Slurm job)

/** Re-hash every object of a manifest; the names of the bad ones (missing or corrupt). */
export async function badObjects(objectsDir: string, m: Manifest): Promise<string[]> {
  const bad: string[] = [];
  for (const [rel, f] of manifestFiles(m)) {
    const p = objectPathIn(objectsDir, f.digest);
    let ok = false;
    try {
      ok = (await hashFile(p, 'sha256')) === f.digest;
    } catch {
      ok = false;
    }
    if (!ok) bad.push(`${rel} (${f.digest.slice(0, 12)}…)`);
  }
  return bad;
}

/** A run entry for this job's key whose objects all verify, materialised into artifacts/<id>/. */
export async function reuseCommitted(job: Job, req: CommitRequest): Promise<CommitResult | undefined> {
  let e: RunEntry;
  try {
    e = JSON.parse(readFileSync(req.runPath, 'utf8')) as RunEntry;
  } catch {
    return undefined;
  }
  if (e.v !== 1 || e.key !== job.key) return undefined;
  if ((await badObjects(req.objectsDir, e.outputs)).length) return undefined;
  const stats = materializeFiles(req.artifactDir, job.stageId, e.outputs, (d) => objectPathIn(req.objectsDir, d));
  return { manifest: e.outputs, stats, ms: e.ms };
}

/**
 * The engine's side of a remote commit: the outputs are already objects (the job ingested them);
 * check that every declared output is there and every object re-hashes to its digest, then write
 * the run entry (the commit point) and materialise. Throws `output_missing` / `corrupt_object`.
 */
export async function commitVerified(job: Job, req: CommitRequest, manifest: Manifest, ms: number): Promise<CommitResult> {
  const declared = req.outputs.map((o) => o.replace(/\/$/, ''));
  const missing = declared.filter((o) => !(o in manifest));
  const extra = Object.keys(manifest).filter((o) => !declared.includes(o));
  if (missing.length || extra.length) {
    throw new EngineError({
      code: 'output_missing',
      message: `stage '${job.stageId}': the job's manifest does not match the declared outputs`,
      fields: { stage: job.stageId, ...(missing.length ? { missing: missing.join(', ') } : {}), ...(extra.length ? { undeclared: extra.join(', ') } : {}) },
    });
  }
  const bad = await badObjects(req.objectsDir, manifest);
  if (bad.length) {
    throw new EngineError({
      code: 'corrupt_object',
      message: `stage '${job.stageId}': ${bad.length} object(s) written by the job do not verify`,
      fields: { stage: job.stageId, objects: bad.slice(0, 10).join('\n') },
      hint: 'the shared filesystem lost or changed them; the stage was not cached and will run again',
    });
  }
  writeFileAtomicSync(req.runPath, JSON.stringify({ v: 1, key: job.key, stage: job.stageId, recipe: req.recipe, outputs: manifest, ms: Math.round(ms), at: new Date().toISOString() }), { dirSync: false });
  const stats = materializeFiles(req.artifactDir, job.stageId, manifest, (d) => objectPathIn(req.objectsDir, d));
  return { manifest, stats, ms };
}

// ---------------------------------------------------------------------------------------------
// Per-key claims

export function claimPath(cacheDir: string, key: string): string {
  return join(cacheDir, 'claims', key.slice(0, 2), `${key}.json`);
}

/**
 * Wraps an executor for a shared store: one engine runs a given key at a time; the others wait
 * and reuse its committed result. Without a commit request (BLAKE3 stores) it passes through.
 */
export class ClaimingExecutor implements Executor {
  readonly name: string;
  constructor(
    readonly inner: Executor,
    readonly cacheDir: string,
    readonly pollMs = 200,
  ) {
    this.name = inner.name;
  }

  async run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void> {
    const req = job.commit;
    if (!req) return this.inner.run(job, hooks, signal);
    const path = claimPath(this.cacheDir, job.key);
    let announced = false;
    for (;;) {
      if (signal.aborted) throw new EngineError({ code: 'cancelled', message: `stage '${job.stageId}' cancelled (while waiting for another engine)`, fields: { stage: job.stageId } });
      const got = tryLease(path, `stage ${job.stageId}`, (h) => hooks.log(`took over the claim on ${job.stageId} from gone pid ${h.pid} on ${h.host}`));
      if ('release' in got) {
        const lease: Lease = got;
        try {
          // another engine may have committed between our cache check and our claim
          const done = await reuseCommitted(job, req);
          if (done) {
            hooks.log(`${job.stageId}: reused the result another engine committed`);
            return done;
          }
          const t0 = performance.now();
          const r = await this.inner.run(job, hooks, signal);
          if (r || signal.aborted) return r;
          // The inner executor left the commit to the engine (command stages, in-process bodies).
          // Commit here, *before* releasing the claim: released first, a waiting engine could find
          // neither a claim nor a run entry, and run the stage a second time.
          return commitSync(job.stageId, job.key, job.outDir, performance.now() - t0, req);
        } finally {
          lease.release();
        }
      }
      if (!announced) hooks.log(`${job.stageId}: waiting for pid ${got.pid} on ${got.host}, which is running this key`);
      announced = true;
      await sleep(this.pollMs, signal);
      const done = await reuseCommitted(job, req);
      if (done) {
        hooks.log(`${job.stageId}: reused the result another engine committed`);
        return done;
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * For `gc` (no engine live): remove Slurm job dirs (`slurm/<kk>/<key>/`) that nobody needs any more:
 * the key is committed, or every attempt ended with a failure. A job that may still run (no result)
 * or a success not yet committed (the next run commits it instead of running again) is kept.
 */
export function collectSlurmDirs(cacheDir: string, dryRun: boolean): number {
  const root = join(cacheDir, 'slurm');
  let n = 0;
  for (const pre of existsSync(root) ? readdirSync(root) : []) {
    for (const key of readdirSync(join(root, pre))) {
      const dir = join(root, pre, key);
      const committed = existsSync(join(cacheDir, 'runs', key.slice(0, 2), `${key}.json`));
      const attempts = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory());
      const allFailed = attempts.every((a) => {
        try {
          return (JSON.parse(readFileSync(join(dir, a.name, 'result.json'), 'utf8')) as { ok: boolean }).ok === false;
        } catch {
          return false;
        }
      });
      if (!committed && !allFailed) continue;
      n++;
      if (!dryRun) rmTree(dir);
    }
  }
  return n;
}
