/**
 * @module gc — delete store objects and run entries that nothing refers to.
 *
 * Roots: the keys in the lock file, the keys left by the last N runs (history.jsonl), and what is
 * materialised in artifacts/. Everything reachable from a root's run entry is kept; other run
 * entries and objects go. Both directions are reconciled (Nx #35483/#37110): run entries whose
 * objects are gone are removed too. Callers hold the store lock.
 */
import { statSync, rmSync, chmodSync } from 'node:fs';
import { manifestFiles } from './store.ts';
import type { Session } from './session.ts';
import type { LockFileData } from './lockfile.ts';

export interface GcResult {
  objects: number;
  runs: number;
  bytes: number;
  kept: number;
}

export function gc(ses: Session, lock: LockFileData | undefined, opts: { dryRun: boolean; keepRuns: number }): GcResult {
  const store = ses.store;
  const rootKeys = new Set<string>();
  for (const e of Object.values(lock?.stages ?? {})) rootKeys.add(e.key);
  for (const run of ses.history.lastRuns(opts.keepRuns)) for (const k of Object.values(run)) rootKeys.add(k);
  const liveObjects = new Set<string>();
  for (const id of ses.ws.ids()) {
    const e = ses.ws.get(id)!;
    rootKeys.add(e.key);
    for (const [, f] of manifestFiles(e.outputs)) liveObjects.add(f.digest);
  }
  const res: GcResult = { objects: 0, runs: 0, bytes: 0, kept: 0 };
  const allObjects = new Set(store.listObjects());
  for (const key of store.listRuns()) {
    const entry = store.readRun(key);
    const intact = entry && manifestFiles(entry.outputs).every(([, f]) => allObjects.has(f.digest));
    if (entry && rootKeys.has(key) && intact) {
      for (const [, f] of manifestFiles(entry.outputs)) liveObjects.add(f.digest);
      res.kept++;
      continue;
    }
    res.runs++;
    res.bytes += sizeOf(store.runPath(key));
    if (!opts.dryRun) store.deleteRun(key);
  }
  for (const d of allObjects) {
    if (liveObjects.has(d)) continue;
    res.objects++;
    res.bytes += sizeOf(store.objectPath(d));
    if (!opts.dryRun) {
      try {
        chmodSync(store.objectPath(d), 0o644);
      } catch {
        /* gone */
      }
      rmSync(store.objectPath(d), { force: true });
    }
  }
  if (!opts.dryRun) store.cleanTmp();
  return res;
}

function sizeOf(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}
