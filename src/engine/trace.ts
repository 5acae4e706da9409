/**
 * @module trace — what was built where, and how long it took.
 *
 * Two traces, in the vocabulary of "Build Systems à la Carte":
 * - the run cache in store.ts is a *constructive* trace (key → values), which is what lets a
 *   flipped-back param restore old outputs without running;
 * - the workspace index here is a *verifying* trace for `artifacts/`: per stage id, the key and
 *   recipe last materialised there and the stat of every file, so a no-op run answers "fresh" from
 *   stats alone, and `explain` can diff the old recipe against the new one.
 * History keeps durations (forecasts) and the keys of the last runs (gc roots).
 */
import { readFileSync, existsSync, mkdirSync, constants, appendFileSync, statSync, copyFileSync, chmodSync, renameSync } from 'node:fs';
import { join, dirname, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomicSync, rmTree, readIfAny, stillHolds } from './fsutil.ts';
import { hashFileSync } from './hash.ts';
import { manifestFiles, type FileOut, type Manifest, type Store } from './store.ts';
import { EngineError } from './errors.ts';
import { STAGE_ID } from './task.ts';
import type { LockStamp } from './lockfile.ts';

/**
 * What the verifying trace remembers of a file. mtime in ms as a double (resolution ≈ 0.25 µs at
 * today's epoch, far finer than any filesystem's update granularity) rather than a BigInt ns
 * string: a no-op run stats every output, and the BigInt stat costs twice the plain one.
 */
export type StatTriple = [size: number, mtimeMs: number, ino: number];

/** What artifacts/<id>/ holds. The recipe behind `key` is in the run cache (explain reads it there). */
export interface WorkspaceEntry {
  key: string;
  outputs: Manifest;
  stats: Record<string, StatTriple>;
  at: string;
}

export const WORKSPACE_INDEX = '.mecheval-index.json';

export type CheckResult = { ok: true } | { ok: false; kind: 'missing' | 'corrupt'; detail: string };
const OK: CheckResult = Object.freeze({ ok: true });

export class Workspace {
  private entries: Record<string, WorkspaceEntry> = {};
  /** the lock file as this workspace last left it (see lockfile.ts LockStamp) */
  private lock: LockStamp | undefined;
  private dirty = false;
  readonly indexFile: string;
  /** the index's bytes as read, for `unchangedSinceRead` */
  private readonly raw: Buffer | undefined;

  constructor(readonly dir: string) {
    this.indexFile = join(dir, WORKSPACE_INDEX);
    this.prefix = join(dir, '_').slice(0, -1);
    this.raw = readIfAny(this.indexFile);
    try {
      const parsed = JSON.parse(this.raw?.toString('utf8') ?? '') as { v: number; stages: Record<string, WorkspaceEntry>; lock?: LockStamp };
      if (parsed.v === 1) {
        this.entries = parsed.stages;
        this.lock = parsed.lock;
      }
    } catch {
      /* no index yet */
    }
  }

  /** Nothing changed here since the index was read, and the file still holds those bytes: a re-read would give this same object. */
  unchangedSinceRead(): boolean {
    return !this.dirty && stillHolds(this.indexFile, this.raw);
  }

  private dirs = new Map<string, string>();
  /** the normalised dir with a trailing separator */
  private readonly prefix: string;
  stageDir(id: string): string {
    let d = this.dirs.get(id);
    if (d === undefined) {
      // A valid stage id has no empty, `.` or `..` segment, so joining is plain concatenation on
      // POSIX; path.join, cold in a short-lived CLI, cost more than the stat of the stage's files.
      d = sep === '/' && STAGE_ID.test(id) ? this.prefix + id : join(this.dir, ...id.split('/'));
      this.dirs.set(id, d);
    }
    return d;
  }

  get(id: string): WorkspaceEntry | undefined {
    return this.entries[id];
  }

  set(id: string, e: WorkspaceEntry): void {
    this.entries[id] = e;
    this.dirty = true;
  }

  delete(id: string): void {
    if (this.entries[id]) {
      delete this.entries[id];
      this.dirty = true;
    }
  }

  get lockStamp(): LockStamp | undefined {
    return this.lock;
  }

  set lockStamp(s: LockStamp | undefined) {
    if (JSON.stringify(s) === JSON.stringify(this.lock)) return;
    this.lock = s;
    this.dirty = true;
  }

  ids(): string[] {
    return Object.keys(this.entries);
  }

  save(): void {
    if (!this.dirty) return;
    writeFileAtomicSync(this.indexFile, JSON.stringify({ v: 1, stages: this.entries, ...(this.lock ? { lock: this.lock } : {}) }));
    this.dirty = false;
  }

  /**
   * Are the stage's artifacts what the entry says? Stats first; a changed stat is re-hashed, so a
   * `touch` is harmless but an edit is `corrupt`.
   */
  check(id: string, e: WorkspaceEntry): CheckResult {
    // Walks the manifest in manifestFiles' order without building its list: every stage of a
    // no-op run comes through here. Manifest paths are relative and normalised (ingest wrote
    // them), so `${base}/${rel}` is the joined path.
    const base = this.stageDir(id);
    for (const name of Object.keys(e.outputs)) {
      const o = e.outputs[name]!;
      if (o.type === 'file') {
        const bad = this.checkFile(id, e, base, name, o);
        if (bad) return bad;
      } else {
        for (const rel of Object.keys(o.files)) {
          const bad = this.checkFile(id, e, base, `${name}/${rel}`, o.files[rel]!);
          if (bad) return bad;
        }
      }
    }
    return OK;
  }

  private checkFile(id: string, e: WorkspaceEntry, base: string, rel: string, f: FileOut): CheckResult | undefined {
    const p = `${base}/${rel}`;
    let st;
    try {
      st = statTriple(p);
    } catch {
      return { ok: false, kind: 'missing', detail: `artifacts/${id}/${rel} is missing` };
    }
    const rec = e.stats[rel];
    if (rec && rec[0] === st[0] && rec[1] === st[1] && rec[2] === st[2]) return undefined;
    // BLAKE3 digests cannot be re-checked synchronously: a changed stat counts as modified.
    if (st[0] !== f.size || f.digest.startsWith('b3-') || hashFileSync(p) !== f.digest) {
      return { ok: false, kind: 'corrupt', detail: `artifacts/${id}/${rel} was modified (content no longer matches ${f.digest.slice(0, 12)})` };
    }
    e.stats[rel] = st;
    this.dirty = true;
    return undefined;
  }

  /**
   * Replace artifacts/<id>/ with read-only copies (reflinks where the filesystem supports them)
   * of the manifest's objects. Built beside the target and swapped in by rename.
   */
  materialize(store: Store, id: string, outputs: Manifest): Record<string, StatTriple> {
    return materializeFiles(this.stageDir(id), id, outputs, (d) => store.findObject(d));
  }

  /** Remove a stage's artifacts (its outputs are no longer valid here). */
  remove(id: string): void {
    rmTree(this.stageDir(id));
    this.delete(id);
  }
}

const madeDirs = new Set<string>();

/**
 * Replace `target` with read-only copies (reflinks where the filesystem supports them) of the
 * manifest's objects, built beside it and swapped in by rename. Returns each file's stat.
 * Also used by pooled workers to commit their own stage (see commit.ts).
 */
export function materializeFiles(target: string, id: string, outputs: Manifest, findObject: (d: string) => string | undefined): Record<string, StatTriple> {
  const parent = dirname(target);
  if (!madeDirs.has(parent)) {
    mkdirSync(parent, { recursive: true });
    madeDirs.add(parent);
  }
  const tmp = join(parent, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    mkdirSync(tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(parent, { recursive: true }); // someone removed artifacts/ since we last looked
    mkdirSync(tmp);
  }
  const stats: Record<string, StatTriple> = {};
  try {
    for (const [rel, f] of manifestFiles(outputs)) {
      const src = findObject(f.digest);
      if (!src) throw new EngineError({ code: 'corrupt_object', message: `object ${f.digest} for ${id}/${rel} vanished from the store`, fields: { stage: id, file: rel } });
      const dest = join(tmp, rel);
      if (rel.includes('/')) mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(src, dest, constants.COPYFILE_FICLONE);
      chmodSync(dest, 0o444);
      stats[rel] = statTriple(dest); // rename keeps inode, size and mtime
    }
    for (const name of Object.keys(outputs)) if (outputs[name]!.type === 'dir') mkdirSync(join(tmp, name), { recursive: true });
    let old: string | undefined;
    try {
      renameSync(target, `${tmp}.old`);
      old = `${tmp}.old`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    renameSync(tmp, target);
    if (old) rmTree(old);
  } catch (e) {
    rmTree(tmp);
    throw e;
  }
  return stats;
}

function statTriple(p: string): StatTriple {
  const st = statSync(p);
  return [st.size, st.mtimeMs, st.ino];
}

// ---------------------------------------------------------------------------------------------
// History: durations for forecasts, keys of recent runs for gc.

export class History {
  private durations: Record<string, number> = {};
  private dirty = false;
  private readonly raw: Buffer | undefined;
  constructor(readonly cacheDir: string) {
    this.raw = readIfAny(join(cacheDir, 'durations.json'));
    try {
      this.durations = JSON.parse(this.raw?.toString('utf8') ?? '') as Record<string, number>;
    } catch {
      /* none yet */
    }
  }

  /** As Workspace.unchangedSinceRead (the run log, history.jsonl, is read afresh on each use anyway). */
  unchangedSinceRead(): boolean {
    return !this.dirty && stillHolds(join(this.cacheDir, 'durations.json'), this.raw);
  }

  recordDuration(id: string, ms: number): void {
    this.durations[id] = Math.round(ms);
    this.dirty = true;
  }

  /** Last duration of this id, else the mean over its family (the id without its last segment). */
  forecast(id: string): number | undefined {
    const own = this.durations[id];
    if (own !== undefined) return own;
    if (!this.families) {
      const acc = new Map<string, [number, number]>();
      for (const [k, v] of Object.entries(this.durations)) {
        const a = acc.get(family(k)) ?? [0, 0];
        acc.set(family(k), [a[0] + v, a[1] + 1]);
      }
      this.families = new Map([...acc].map(([k, [sum, n]]) => [k, sum / n]));
    }
    return this.families.get(family(id));
  }
  private families: Map<string, number> | undefined;

  /** Append the keys a run left in the workspace (gc keeps the last N of these). */
  recordRun(keys: Record<string, string>): void {
    mkdirSync(this.cacheDir, { recursive: true });
    appendFileSync(join(this.cacheDir, 'history.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), keys })}\n`);
  }

  lastRuns(n: number): Record<string, string>[] {
    const f = join(this.cacheDir, 'history.jsonl');
    if (!existsSync(f)) return [];
    const lines = readFileSync(f, 'utf8').split('\n').filter(Boolean);
    const out: Record<string, string>[] = [];
    for (const l of lines.slice(-n)) {
      try {
        out.push((JSON.parse(l) as { keys: Record<string, string> }).keys);
      } catch {
        /* a torn last line from a crash */
      }
    }
    return out;
  }

  save(): void {
    if (!this.dirty) return;
    writeFileAtomicSync(join(this.cacheDir, 'durations.json'), JSON.stringify(this.durations));
    this.dirty = false;
  }
}

export function family(id: string): string {
  const i = id.lastIndexOf('/');
  return i < 0 ? id : id.slice(0, i);
}
