/**
 * @module ingest — turn a finished stage's output dir into store objects and a manifest.
 *
 * Shared by the engine (async, store.ts) and by pooled workers, which ingest their own outputs
 * synchronously right after the body returns: the hashing, fsync and rename then run in the
 * worker processes, in parallel, and the engine's event loop is spared a dozen thread-pool
 * round trips per stage (each a pair of context switches, which dominated cold runs of many
 * small stages).
 */
import { lstatSync, readdirSync, openSync, readSync, fsyncSync, fchmodSync, closeSync, renameSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { CHUNK, objectPathIn, type Hash } from './hash.ts';
import { digestJson } from './key.ts';
import { EngineError } from './errors.ts';
import { listFiles } from './fsutil.ts';

export interface FileOut {
  digest: string;
  size: number;
}
/**
 * `volatile` marks an output declared volatile by its stage (timings, logs): stored and restored like any other,
 * but left out of the stage's output digest, so it drives neither early cutoff, nor downstream keys, nor `verify`.
 */
export type OutputEntry = (({ type: 'file' } & FileOut) | { type: 'dir'; digest: string; files: Record<string, FileOut> }) & { volatile?: true };
/** output name (no trailing slash) → what it holds */
export type Manifest = Record<string, OutputEntry>;

export interface FoundOutput {
  name: string;
  type: 'file' | 'dir';
  /** [path relative to the output (empty for a file output), absolute path] */
  files: [string, string][];
}

/** Which declared outputs exist, and the files each holds. */
export function scanOutputs(outDir: string, outputs: readonly string[]): { found: FoundOutput[]; missing: string[] } {
  const found: FoundOutput[] = [];
  const missing: string[] = [];
  for (const decl of outputs) {
    const name = decl.replace(/\/$/, '');
    const p = join(outDir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      missing.push(decl);
      continue;
    }
    if (st.isDirectory()) {
      const links = listLinks(p);
      if (links.length) missing.push(`${decl} (contains symbolic links: ${links.slice(0, 3).join(', ')}; write regular files)`);
      else found.push({ name, type: 'dir', files: listFiles(p).map((rel) => [rel, join(p, rel)]) });
    } else if (st.isSymbolicLink()) missing.push(`${decl} (a symbolic link; write a regular file)`);
    else if (decl.endsWith('/')) missing.push(`${decl} (a file, expected a directory)`);
    else if (!st.isFile()) missing.push(`${decl} (not a regular file)`);
    else found.push({ name, type: 'file', files: [['', p]] });
  }
  return { found, missing };
}

/** Symbolic links under a directory (relative paths): they would be moved, not copied, into the store. */
function listLinks(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${ent.name}` : ent.name;
    if (ent.isSymbolicLink()) out.push(rel);
    else if (ent.isDirectory()) out.push(...listLinks(dir, rel));
  }
  return out;
}

export function missingOutputs(stageId: string, missing: string[], outputs: readonly string[]): EngineError {
  return new EngineError({
    code: 'output_missing',
    message: `stage '${stageId}' finished but did not write ${missing.length === 1 ? 'output' : 'outputs'} ${missing.join(', ')}`,
    fields: { stage: stageId, missing: missing.join(', '), declared: outputs.join(', ') },
    hint: "write every declared output into ctx.outDir (or the command's outDir), or remove it from outputs",
  });
}

export function buildManifest(found: FoundOutput[], put: Map<string, FileOut>, volatile: readonly string[] = []): Manifest {
  const m: Manifest = {};
  const vol = new Set(volatile.map((v) => v.replace(/\/$/, '')));
  for (const o of found) {
    if (o.type === 'file') m[o.name] = { type: 'file', ...put.get(o.files[0]![1])! };
    else {
      const files: Record<string, FileOut> = {};
      for (const [rel, abs] of o.files) files[rel] = put.get(abs)!;
      m[o.name] = { type: 'dir', digest: digestJson(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.digest]))), files };
    }
    if (vol.has(o.name)) m[o.name]!.volatile = true;
  }
  return m;
}

const madeDirs = new Set<string>();

/** Hash (SHA-256, 1 MiB reads), fsync, make read-only and rename one file into objects/. */
export function putFileSync(src: string, objectsDir: string): FileOut {
  const fd = openSync(src, 'r');
  let size = 0;
  let digest: Hash;
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      size += n;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
    digest = h.digest('hex') as Hash;
    const dest = objectPathIn(objectsDir, digest);
    if (existsSync(dest)) {
      unlinkSync(src);
      return { digest, size };
    }
    fsyncSync(fd);
    fchmodSync(fd, 0o444);
    const dir = dest.slice(0, dest.length - digest.length - 1);
    if (!madeDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      madeDirs.add(dir);
    }
    try {
      renameSync(src, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(src)) throw e;
      mkdirSync(dir, { recursive: true }); // the store was emptied since we last looked
      renameSync(src, dest);
    }
  } finally {
    closeSync(fd);
  }
  return { digest, size };
}

/** Synchronous ingest (SHA-256 stores only). */
export function ingestSync(stageId: string, outDir: string, outputs: readonly string[], objectsDir: string, volatile: readonly string[] = []): Manifest {
  const { found, missing } = scanOutputs(outDir, outputs);
  if (missing.length) throw missingOutputs(stageId, missing, outputs);
  const put = new Map<string, FileOut>();
  for (const o of found) for (const [, abs] of o.files) put.set(abs, putFileSync(abs, objectsDir));
  return buildManifest(found, put, volatile);
}
