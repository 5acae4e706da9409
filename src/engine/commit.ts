/**
 * @module commit — the whole commit of a successful stage, synchronously, in one process.
 *
 * Order is the store's commit protocol: objects (hashed, fsync'd, renamed), then the run entry
 * (temp → fsync → rename: the commit point), then the swap of artifacts/<id>/. Pooled workers
 * run this right after the body returns, so commits of concurrent stages proceed in parallel in
 * their own processes instead of queueing on the engine's event loop (on a loaded 2-core VM that
 * roughly halved cold runs of a thousand small stages). A crash part-way leaves only content-
 * addressed objects, or a complete run entry whose objects all exist: both are valid states.
 */
import { writeFileAtomicSync } from './fsutil.ts';
import { ingestSync, type Manifest } from './ingest.ts';
import { objectPathIn } from './hash.ts';
import { materializeFiles, type StatTriple } from './trace.ts';
import type { Recipe } from './key.ts';

export interface CommitRequest {
  objectsDir: string;
  outputs: readonly string[];
  volatile?: readonly string[];
  /** run-cache entry path and the recipe to record there */
  runPath: string;
  recipe: Recipe;
  /** artifacts/<id>/ */
  artifactDir: string;
}

export interface CommitResult {
  manifest: Manifest;
  stats: Record<string, StatTriple>;
  ms: number;
}

export function commitSync(stageId: string, key: string, outDir: string, ms: number, req: CommitRequest): CommitResult {
  const manifest = ingestSync(stageId, outDir, req.outputs, req.objectsDir, req.volatile);
  writeFileAtomicSync(req.runPath, JSON.stringify({ v: 1, key, stage: stageId, recipe: req.recipe, outputs: manifest, ms: Math.round(ms), at: new Date().toISOString() }), { dirSync: false });
  const stats = materializeFiles(req.artifactDir, stageId, manifest, (d) => objectPathIn(req.objectsDir, d));
  return { manifest, stats, ms };
}
