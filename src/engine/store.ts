/**
 * @module store — content-addressed objects and the run cache (key → output manifest).
 *
 * Layout under the cache dir:
 *   objects/ab/<digest>    immutable, read-only file contents
 *   runs/ab/<key>.json     run-cache entry: recipe, output manifest, duration (a constructive trace)
 *   tmp/                   stage output dirs while running; emptied by the next writer
 * Commit protocol (the synthesis in pipeline-anchors §6.3): outputs are hashed, fsync'd and renamed
 * into objects/ first; the run entry is written last, atomically. A stage that fails or is killed
 * never reaches that point, so nothing of it is ever a result. Reads check existence, and restores
 * re-hash every object: a corrupt object is reported, evicted and rebuilt.
 */
import { mkdirSync, existsSync, rmSync, chmodSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { hashFile, algorithmOf, type Hash, type HashAlgorithm } from './hash.ts';
import { digestJson, type Recipe } from './key.ts';
import { EngineError } from './errors.ts';
import { writeFileAtomic, fsyncFileAsync, listFiles, rmTree } from './fsutil.ts';
import { stat as statP, chmod as chmodP, rename as renameP, unlink as unlinkP, mkdir as mkdirP, mkdtemp as mkdtempP } from 'node:fs/promises';

export interface FileOut {
  digest: string;
  size: number;
}
export type OutputEntry = ({ type: 'file' } & FileOut) | { type: 'dir'; digest: string; files: Record<string, FileOut> };
/** output name (no trailing slash) → what it holds */
export type Manifest = Record<string, OutputEntry>;

export interface RunEntry {
  v: 1;
  key: string;
  stage: string;
  recipe: Recipe;
  outputs: Manifest;
  /** wall time of the body, for forecasts */
  ms: number;
  at: string;
}

/** Digest of a whole manifest: what downstream keys see of an upstream stage. */
export function manifestDigest(m: Manifest): Hash {
  return digestJson(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.digest])));
}

/** Every (relative path, file) in a manifest, relative to the stage's output dir. */
export function manifestFiles(m: Manifest): [string, FileOut][] {
  const out: [string, FileOut][] = [];
  for (const [name, e] of Object.entries(m)) {
    if (e.type === 'file') out.push([name, e]);
    else for (const [rel, f] of Object.entries(e.files)) out.push([`${name}/${rel}`, f]);
  }
  return out;
}

export class Store {
  readonly objectsDir: string;
  readonly runsDir: string;
  readonly tmpDir: string;

  constructor(
    readonly dir: string,
    /** read-only stores consulted after this one (verify --rerun's scratch store reads the main one) */
    readonly parents: readonly Store[] = [],
    readonly algorithm: HashAlgorithm = 'sha256',
  ) {
    this.objectsDir = join(dir, 'objects');
    this.runsDir = join(dir, 'runs');
    this.tmpDir = join(dir, 'tmp');
  }

  objectPath(d: string): string {
    return join(this.objectsDir, d.slice(d.length - 64, d.length - 62), d);
  }

  /** Path of the object in this store or a parent, if present. */
  findObject(d: string): string | undefined {
    const p = this.objectPath(d);
    if (existsSync(p)) return p;
    for (const s of this.parents) {
      const q = s.findObject(d);
      if (q) return q;
    }
    return undefined;
  }

  runPath(key: string): string {
    return join(this.runsDir, key.slice(0, 2), `${key}.json`);
  }

  readRun(key: string): RunEntry | undefined {
    for (const s of [this as Store, ...this.parents]) {
      try {
        const e = JSON.parse(readFileSync(s.runPath(key), 'utf8')) as RunEntry;
        if (e.v === 1 && e.key === key) return e;
      } catch {
        /* missing or torn: a miss */
      }
    }
    return undefined;
  }

  /** Written last, after every object is in place (the commit point of a run). */
  async writeRun(e: RunEntry): Promise<void> {
    await writeFileAtomic(this.runPath(e.key), JSON.stringify(e));
  }

  deleteRun(key: string): void {
    rmSync(this.runPath(key), { force: true });
  }

  /** A fresh private directory under tmp/ (same filesystem as objects/, so renames are atomic). */
  async makeTmp(label: string): Promise<string> {
    if (!this.madeDirs.has(this.tmpDir)) {
      mkdirSync(this.tmpDir, { recursive: true });
      this.madeDirs.add(this.tmpDir);
    }
    return mkdtempP(join(this.tmpDir, `${label.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 40)}-`));
  }

  /** Remove leftovers of dead runs. Only call while holding the store lock. */
  cleanTmp(): void {
    if (existsSync(this.tmpDir)) for (const n of readdirSync(this.tmpDir)) rmTree(join(this.tmpDir, n));
  }

  /**
   * Hash the declared outputs found in `outDir`, move their files into objects/, and return the
   * manifest. Throws `output_missing` naming each absent output.
   */
  async ingest(stageId: string, outDir: string, outputs: readonly string[]): Promise<Manifest> {
    const manifest: Manifest = {};
    const missing: string[] = [];
    for (const decl of outputs) {
      const name = decl.replace(/\/$/, '');
      const p = join(outDir, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        missing.push(decl);
        continue;
      }
      if (st.isDirectory()) {
        const files: Record<string, FileOut> = {};
        for (const rel of listFiles(p)) files[rel] = await this.putFile(join(p, rel));
        manifest[name] = { type: 'dir', digest: digestJson(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.digest]))), files };
      } else if (decl.endsWith('/')) {
        missing.push(`${decl} (a file, expected a directory)`);
      } else {
        manifest[name] = { type: 'file', ...(await this.putFile(p)) };
      }
    }
    if (missing.length) {
      throw new EngineError({
        code: 'output_missing',
        message: `stage '${stageId}' finished but did not write ${missing.length === 1 ? 'output' : 'outputs'} ${missing.join(', ')}`,
        fields: { stage: stageId, missing: missing.join(', '), declared: outputs.join(', ') },
        hint: 'write every declared output into ctx.outDir (or the command\'s outDir), or remove it from outputs',
      });
    }
    return manifest;
  }

  private madeDirs = new Set<string>();

  private async putFile(src: string): Promise<FileOut> {
    const digest = await hashFile(src, this.algorithm);
    const size = (await statP(src)).size;
    const dest = this.objectPath(digest);
    if (existsSync(dest)) {
      await unlinkP(src);
      return { digest, size };
    }
    await fsyncFileAsync(src);
    await chmodP(src, 0o444);
    const dir = dirname(dest);
    if (!this.madeDirs.has(dir)) {
      await mkdirP(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    await renameP(src, dest);
    return { digest, size };
  }

  /** Re-hash an object: 'ok', 'missing' or 'corrupt'. */
  async verifyObject(d: string): Promise<'ok' | 'missing' | 'corrupt'> {
    const p = this.findObject(d);
    if (!p) return 'missing';
    try {
      return (await hashFile(p, algorithmOf(d))) === d ? 'ok' : 'corrupt';
    } catch {
      return 'corrupt';
    }
  }

  /** Remove a bad object from this store (parents are read-only). */
  evictObject(d: string): void {
    const p = this.objectPath(d);
    try {
      chmodSync(p, 0o644);
    } catch {
      /* already gone */
    }
    rmSync(p, { force: true });
  }

  /** Every object digest in this store. */
  listObjects(): string[] {
    const out: string[] = [];
    if (!existsSync(this.objectsDir)) return out;
    for (const pre of readdirSync(this.objectsDir)) for (const d of readdirSync(join(this.objectsDir, pre))) if (!d.startsWith('.')) out.push(d);
    return out;
  }

  /** Every run-cache key in this store. */
  listRuns(): string[] {
    const out: string[] = [];
    if (!existsSync(this.runsDir)) return out;
    for (const pre of readdirSync(this.runsDir)) for (const f of readdirSync(join(this.runsDir, pre))) if (f.endsWith('.json') && !f.startsWith('.')) out.push(f.slice(0, -5));
    return out;
  }
}
