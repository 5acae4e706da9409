/**
 * @module verify — is the committed lock file still what the code says? (Nix `--check`, DVC lock)
 *
 * `verifyKeys` recomputes every key from the current code, params and env, taking upstream output
 * digests from the lock itself, and runs nothing. `rerunAndCompare` re-executes selected stages in
 * a scratch store (reading the main store for everything else) and compares their output digests
 * with the lock: the CI reproducibility check.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { digestJson } from './key.ts';
import { diffJson, diffRecipes, type Cause } from './explain.ts';
import { outputDigests, type LockFileData } from './lockfile.ts';
import type { Session } from './session.ts';
import type { Stage } from './task.ts';
import type { Pipeline } from './pipeline.ts';
import { build, type BuildOptions } from './build.ts';
import { rmTree } from './fsutil.ts';

export interface VerifyItem {
  id: string;
  ok: boolean;
  expected: string | null;
  actual: string | null;
  causes: Cause[];
}

export function verifyKeys(ses: Session, stages: readonly Stage[], lock: LockFileData): VerifyItem[] {
  const out: VerifyItem[] = [];
  const stale = new Set<string>();
  const push = (item: VerifyItem): void => {
    if (!item.ok) stale.add(item.id);
    out.push(item);
  };
  for (const s of stages) {
    const locked = lock.stages[s.id];
    const staleUp = [...new Set(Object.values(s.inputs))].filter((up) => stale.has(up));
    const missingUp = Object.values(s.inputs).filter((up) => !lock.stages[up]);
    if (missingUp.length) {
      push({ id: s.id, ok: false, expected: locked?.key ?? null, actual: null, causes: missingUp.map((u) => ({ kind: 'upstream', detail: `${u} is not in the lock file` })) });
      continue;
    }
    const digests = Object.fromEntries(Object.entries(s.inputs).map(([n, up]) => [n, digestJson(lock.stages[up]!.outputs)]));
    const recipe = ses.recipe(s, digests);
    const key = ses.key(recipe);
    if (!locked) {
      push({ id: s.id, ok: false, expected: null, actual: key, causes: [{ kind: 'output', detail: 'not in the lock file' }] });
      continue;
    }
    if (locked.key === key) {
      // Its own recipe matches, but a stale upstream will produce new outputs when rebuilt.
      push({ id: s.id, ok: staleUp.length === 0, expected: key, actual: key, causes: staleUp.map((u) => ({ kind: 'upstream' as const, detail: `${u} is stale, so its outputs (this stage's input) will change` })) });
      continue;
    }
    const entry = ses.store.readRun(locked.key);
    let causes: Cause[];
    if (entry) causes = diffRecipes(entry.recipe, recipe);
    else {
      causes = diffJson(locked.params, s.params as never).map((d) => ({ kind: 'params' as const, detail: d }));
      if (!causes.length) causes.push({ kind: 'code', detail: 'key differs: code, env or an upstream output changed (the locked recipe is not in this store, so no finer explanation)' });
    }
    push({ id: s.id, ok: false, expected: locked.key, actual: key, causes });
  }
  return out;
}

export interface RerunItem {
  id: string;
  ok: boolean;
  detail: string;
}

/** Re-execute `ids` in a scratch store and compare output digests with the lock. */
export async function rerunAndCompare(p: Pipeline, ids: ReadonlySet<string>, lock: LockFileData, opts: BuildOptions & { root: string; cacheDir: string }): Promise<{ items: RerunItem[]; buildOk: boolean }> {
  const scratch = mkdtempSync(join(tmpdir(), 'mecheval-verify-'));
  try {
    const r = await build(p, {
      ...opts,
      targets: [...ids],
      cacheDir: join(scratch, 'cache'),
      artifactsDir: join(scratch, 'artifacts'),
      parentCacheDirs: [opts.cacheDir],
      lockFile: false,
      force: (id) => ids.has(id),
    });
    const items: RerunItem[] = [];
    for (const id of ids) {
      const m = r.outputs.get(id);
      const locked = lock.stages[id];
      if (!m) items.push({ id, ok: false, detail: 'did not complete' });
      else if (!locked) items.push({ id, ok: false, detail: 'not in the lock file' });
      else {
        const diffs = diffJson(locked.outputs, outputDigests(m));
        items.push({ id, ok: diffs.length === 0, detail: diffs.length ? `output digests differ: ${diffs.join('; ')}` : 'outputs identical to the lock' });
      }
    }
    return { items, buildOk: r.ok };
  } finally {
    rmTree(scratch);
  }
}
