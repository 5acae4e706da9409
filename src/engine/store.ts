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
import { mkdirSync, existsSync, rmSync, chmodSync, readFileSync, readdirSync, mkdtempSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { hashBytes, hashFile, algorithmOf, objectPathIn, type Hash, type HashAlgorithm } from './hash.ts';
import type { Recipe } from './key.ts';
import type { FileOut, Manifest } from './ingest.ts';
import { writeFileAtomicSync, fsyncFileAsync, rmTree } from './fsutil.ts';
import { stat as statP, chmod as chmodP, rename as renameP, unlink as unlinkP, mkdir as mkdirP } from 'node:fs/promises';

export type { FileOut, OutputEntry, Manifest } from './ingest.ts';

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

const manifestDigests = new WeakMap<Manifest, Hash>();

/**
 * Digest of a whole manifest: what downstream keys see of an upstream stage (volatile outputs excluded).
 * Manifests are never mutated once built, so the digest is memoised per object: a no-op run asks for each
 * upstream's digest once per dependent.
 */
export function manifestDigest(m: Manifest): Hash {
  let d = manifestDigests.get(m);
  if (d === undefined) {
    d = hashBytes(manifestDigestText(m));
    manifestDigests.set(m, d);
  }
  return d;
}

/**
 * `canonicalJson` of {name: digest} over the non-volatile outputs, written directly (sorted names,
 * JSON-escaped strings): one string instead of the entries, filter and map arrays and an object
 * per manifest. A test pins it to `canonicalJson` of that object.
 */
export function manifestDigestText(m: Manifest): string {
  const names = Object.keys(m).sort();
  let text = '{';
  for (const name of names) {
    const e = m[name]!;
    if (e.volatile) continue;
    text += `${text.length > 1 ? ',' : ''}${JSON.stringify(name)}:${JSON.stringify(e.digest)}`;
  }
  return `${text}}`;
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
    return objectPathIn(this.objectsDir, d);
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

  /** Written last, after every object is in place (the commit point of a run): temp → fsync → rename. */
  writeRun(e: RunEntry): void {
    writeFileAtomicSync(this.runPath(e.key), JSON.stringify(e), { dirSync: false });
  }

  deleteRun(key: string): void {
    rmSync(this.runPath(key), { force: true });
  }

  /** A fresh private directory under tmp/ (same filesystem as objects/, so renames are atomic). */
  makeTmp(label: string): string {
    if (!this.madeDirs.has(this.tmpDir)) {
      mkdirSync(this.tmpDir, { recursive: true });
      this.madeDirs.add(this.tmpDir);
    }
    return mkdtempSync(join(this.tmpDir, `${label.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 40)}-`));
  }

  /** Remove leftovers of dead runs. Only call while holding the store lock. */
  cleanTmp(): void {
    if (existsSync(this.tmpDir)) for (const n of readdirSync(this.tmpDir)) rmTree(join(this.tmpDir, n));
  }

  /**
   * Hash the declared outputs found in `outDir`, move their files into objects/, and return the
   * manifest. Throws `output_missing` naming each absent output.
   */
  async ingest(stageId: string, outDir: string, outputs: readonly string[], volatile: readonly string[] = []): Promise<Manifest> {
    // loaded here, not at the top: a run that ingests nothing (a no-op) need not load the module
    const { scanOutputs, missingOutputs, buildManifest } = await import('./ingest.ts');
    const { found, missing } = scanOutputs(outDir, outputs);
    if (missing.length) throw missingOutputs(stageId, missing, outputs);
    const put = new Map<string, FileOut>();
    for (const o of found) for (const [, abs] of o.files) put.set(abs, await this.putFile(abs));
    return buildManifest(found, put, volatile);
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
