/**
 * @module lockfile — `pipeline.lock.json`: the committed record of every stage's key, params and
 * output digests (DVC's dvc.lock idea: params are kept as values so a diff reads `lr: 0.001 →
 * 0.0003`). `run` updates it for what it built; `verify` recomputes keys against it.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { hashBytes } from './hash.ts';
import { digestJson, type Json } from './key.ts';
import { EngineError } from './errors.ts';
import { writeFileAtomicSync } from './fsutil.ts';
import type { Manifest } from './store.ts';

export interface LockEntry {
  key: string;
  params: Json;
  /** output name → digest (a directory's digest covers its whole tree) */
  outputs: Record<string, string>;
}
export interface LockFileData {
  version: 1;
  stages: Record<string, LockEntry>;
}

export function readLockFile(path: string): LockFileData | undefined {
  if (!existsSync(path)) return undefined;
  let data: LockFileData;
  try {
    data = JSON.parse(readFileSync(path, 'utf8')) as LockFileData;
  } catch (e) {
    throw new EngineError({ code: 'lockfile_invalid', message: `lock file ${path} is not valid JSON`, fields: { file: path, reason: (e as Error).message }, hint: 'restore it from git, or delete it and run `pipeline run` to regenerate it' });
  }
  if (data?.version !== 1 || typeof data.stages !== 'object' || data.stages === null) {
    throw new EngineError({ code: 'lockfile_invalid', message: `lock file ${path} has an unknown format`, fields: { file: path, expected: '{"version":1,"stages":{…}}' } });
  }
  return data;
}

/** Structural equality of JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortDeep((v as Record<string, unknown>)[k])]));
  return v;
}

export function lockText(data: LockFileData): string {
  return `${JSON.stringify(sortDeep(data), null, 2)}\n`;
}

/** Output name → digest, for the lock file and `verify --rerun`; volatile outputs are not recorded. */
export function outputDigests(m: Manifest): Record<string, string> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => !v.volatile).map(([k, v]) => [k, v.digest]));
}

/**
 * A fingerprint of "this lock file, as we last left it, records exactly these entries": the
 * file's stat plus a digest of what was merged into it. Kept in the workspace index, it lets a
 * no-op run skip reading and comparing a large lock file.
 */
export interface LockStamp {
  path: string;
  stat: string;
  built: string;
}

function statKey(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The `built` part of a stamp: which ids are declared, and for each built stage its key and the
 * digest of its recorded outputs (`digestJson(outputs)`, which is `manifestDigest` of the manifest
 * they came from). Params need no place of their own: the key covers them.
 */
export function stampDigest(declared: ReadonlySet<string>, built: Iterable<readonly [id: string, key: string, outputsDigest: string]>): string {
  // one string hashed once: a thousand small updates cost more than the hashing itself
  const parts: string[] = [`${declared.size}\0`];
  for (const id of declared) parts.push(`${id}\0`);
  // e[0], e[1], e[2] rather than destructuring: in cold code that goes through the iterator protocol
  for (const e of built) parts.push(`${e[0]}\0${e[1]}\0${e[2]}\0`);
  return hashBytes(parts.join(''));
}

export function builtDigest(declared: ReadonlySet<string>, built: ReadonlyMap<string, LockEntry>): string {
  return stampDigest(declared, [...built].map(([id, e]) => [id, e.key, digestJson(e.outputs)] as const));
}

/** The lock file is as `stamp` left it, and that was a merge of exactly `digest` (see stampDigest). */
export function stampCurrent(path: string, stamp: LockStamp | undefined, digest: string): boolean {
  return stamp !== undefined && stamp.path === path && stamp.built === digest && stamp.stat === statKey(path);
}

/**
 * Merge built stages into the lock file; drop entries of stages the pipeline no longer declares.
 * Writes only if the text changed. Returns the stamp of the file as left. `digest`: the
 * caller's stampDigest of the same entries, if it has it.
 */
export function updateLockFile(path: string, declared: ReadonlySet<string>, built: ReadonlyMap<string, LockEntry>, stamp?: LockStamp, digest = builtDigest(declared, built)): LockStamp | undefined {
  if (stampCurrent(path, stamp, digest)) return stamp; // unchanged since we wrote it
  const done = (): LockStamp | undefined => {
    const st = statKey(path);
    return st ? { path, stat: st, built: digest } : undefined;
  };
  let old: LockFileData | undefined;
  try {
    old = readLockFile(path);
  } catch {
    old = undefined; // a broken lock file is replaced by a correct one
  }
  if (old && Object.keys(old.stages).every((id) => declared.has(id))) {
    // The common no-op case: every built entry is already there, identical. Skip serialising.
    const same = [...built].every(([id, e]) => {
      const o = old!.stages[id];
      return o !== undefined && o.key === e.key && sameJson(o.outputs, e.outputs) && sameJson(o.params, e.params);
    });
    if (same) return done();
  }
  const stages: Record<string, LockEntry> = {};
  for (const [id, e] of Object.entries(old?.stages ?? {})) if (declared.has(id)) stages[id] = e;
  for (const [id, e] of built) stages[id] = e;
  const text = lockText({ version: 1, stages });
  let before = '';
  try {
    before = readFileSync(path, 'utf8');
  } catch {
    /* new */
  }
  if (before !== text) writeFileAtomicSync(path, text);
  return done();
}
