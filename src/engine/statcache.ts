/**
 * @module statcache — (path, size, mtime_ns, inode) → digest, so unchanged files are not re-read.
 *
 * The idea is DVC's state DB (dvc-data `hashfile/state.py`, keyed on inode+mtime+size). Racy
 * entries are not trusted: a file whose mtime is within `RACY_NS` of the moment it was hashed
 * could still change inside the same timestamp tick (the problem git calls "racily clean" and
 * Bazel #1133 hit), so such entries are kept only for this process. Also holds a small memo of
 * pure results (e.g. "these params passed this schema") so no-op runs need not load ajv.
 */
import { statSync, readFileSync, type BigIntStats } from 'node:fs';
import { writeFileAtomicSync, readIfAny, stillHolds } from './fsutil.ts';
import { hashBytes } from './hash.ts';

const RACY_NS = 2_000_000_000n;

interface Entry {
  s: number; //  size
  m: string; //  mtime_ns
  i: string; //  inode
  d: string; //  digest
  x?: unknown; // extra data derived from the same bytes (e.g. the import list of a module)
}

interface FileFormat {
  v: 1;
  files: Record<string, Entry>;
  memo: Record<string, 1>;
}

export interface StatInfo {
  size: number;
  mtimeNs: bigint;
  ino: bigint;
}

export function statInfo(path: string): StatInfo | undefined {
  let st: BigIntStats | undefined;
  try {
    st = statSync(path, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (!st || !st.isFile()) return undefined;
  return { size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino };
}

export class StatCache {
  private data: FileFormat = { v: 1, files: {}, memo: {} };
  /** racy entries, with a digest of the raw bytes so `save` can promote them once they age */
  private volatile = new Map<string, Entry & { raw?: string }>();
  private dirty = false;
  private readonly raw: Buffer | undefined;

  constructor(private readonly file: string | undefined) {
    if (!file) return;
    this.raw = readIfAny(file);
    try {
      const parsed = JSON.parse(this.raw?.toString('utf8') ?? '') as FileFormat;
      if (parsed && parsed.v === 1 && parsed.files && parsed.memo) this.data = parsed;
    } catch {
      /* missing or unreadable: start empty (it is only a cache) */
    }
  }

  /**
   * Nothing recorded since the file was read (racy entries included: they must not outlive a
   * reload), and the file still holds those bytes: a re-read would give this same state.
   */
  unchangedSinceRead(): boolean {
    return this.file !== undefined && !this.dirty && this.volatile.size === 0 && stillHolds(this.file, this.raw);
  }

  /** The cached digest (and extra) if the file's stat still matches. */
  lookup(path: string, st: StatInfo): { digest: string; extra: unknown } | undefined {
    const e = this.volatile.get(path) ?? this.data.files[path];
    if (!e) return undefined;
    if (e.s !== st.size || e.m !== String(st.mtimeNs) || e.i !== String(st.ino)) return undefined;
    return { digest: e.d, extra: e.x };
  }

  /** `raw`: SHA-256 of the bytes that were read, so a racy entry can be promoted later (see save). */
  record(path: string, st: StatInfo, digest: string, extra?: unknown, raw?: string): void {
    const e: Entry = { s: st.size, m: String(st.mtimeNs), i: String(st.ino), d: digest };
    if (extra !== undefined) e.x = extra;
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    if (nowNs - st.mtimeNs < RACY_NS) {
      this.volatile.set(path, raw === undefined ? e : { ...e, raw });
      return;
    }
    this.data.files[path] = e;
    this.volatile.delete(path);
    this.dirty = true;
  }

  forget(path: string): void {
    this.volatile.delete(path);
    if (this.data.files[path]) {
      delete this.data.files[path];
      this.dirty = true;
    }
  }

  hasMemo(key: string): boolean {
    return this.data.memo[key] === 1;
  }

  addMemo(key: string): void {
    if (this.data.memo[key] !== 1) {
      this.data.memo[key] = 1;
      this.dirty = true;
    }
  }

  /**
   * Persist if anything changed (callers hold the store lock). Racy entries whose file has since
   * aged past the racy window, with the same stat and the same bytes as when it was analysed,
   * are promoted: the first no-op run after editing a file then needs no re-analysis.
   */
  save(): void {
    if (!this.file) return;
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    for (const [path, e] of this.volatile) {
      if (e.raw === undefined) continue;
      const st = statInfo(path);
      if (!st || st.size !== e.s || String(st.mtimeNs) !== e.m || String(st.ino) !== e.i || nowNs - st.mtimeNs < RACY_NS) continue;
      try {
        if (hashBytes(readFileSync(path)) !== e.raw) continue;
      } catch {
        continue;
      }
      const { raw: _raw, ...entry } = e;
      this.data.files[path] = entry;
      this.volatile.delete(path);
      this.dirty = true;
    }
    if (!this.dirty) return;
    writeFileAtomicSync(this.file, JSON.stringify(this.data));
    this.dirty = false;
  }
}
