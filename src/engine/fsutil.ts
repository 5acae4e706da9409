/**
 * @module fsutil — atomic writes and small filesystem helpers shared by the store and indexes.
 *
 * Protocol: write a temp file next to the target, fsync it, rename it over the target, then (for
 * indexes) fsync the directory so the rename itself survives a power cut (Nix defaults
 * `fsync-store-paths` to false and users see empty store files after crashes: NixOS/nix#11148).
 */
import {
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  renameSync,
  mkdirSync,
  rmSync,
  readdirSync,
  chmodSync,
  lstatSync,
  readFileSync,
} from 'node:fs';
import { open as openP, rm as rmP } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

export function tmpName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** A file's bytes, or undefined if it cannot be read (an index not written yet). */
export function readIfAny(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Does `path` still hold exactly `bytes` (absent then and now counts as the same)? Bytes, not a
 * stat: an index rewritten within one timestamp tick can keep its size, mtime and even inode.
 */
export function stillHolds(path: string, bytes: Buffer | undefined): boolean {
  const now = readIfAny(path);
  return now === undefined || bytes === undefined ? now === bytes : now.equals(bytes);
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some filesystems refuse fsync on directories; the rename is still atomic */
  }
}

/**
 * `dirSync: false` skips the directory fsync for entries that every reader re-verifies anyway
 * (run-cache entries: a lost rename is a cache miss, a torn file fails to parse).
 */
export function writeFileAtomicSync(target: string, data: string | Uint8Array, opts: { mode?: number; dirSync?: boolean } = {}): void {
  const tmp = tmpName(target);
  let fd: number;
  try {
    fd = openSync(tmp, 'w', opts.mode ?? 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(target), { recursive: true });
    fd = openSync(tmp, 'w', opts.mode ?? 0o644);
  }
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (opts.dirSync !== false) fsyncDir(dirname(target));
}

/** Remove a tree even if it contains read-only files or directories. */
export function rmTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    makeWritable(path);
    rmSync(path, { recursive: true, force: true });
  }
}

function makeWritable(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const n of readdirSync(path)) makeWritable(join(path, n));
  } else if (!st.isSymbolicLink()) {
    chmodSync(path, 0o644);
  }
}

/** All regular files under `dir`, as sorted paths relative to it (POSIX separators). */
export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...listFiles(dir, rel));
    else if (ent.isFile()) out.push(rel);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Async variants, for the engine-side commit of large outputs and for big scratch dirs: they run
// on the libuv thread pool and do not block the scheduler.

export async function fsyncFileAsync(path: string): Promise<void> {
  const fh = await openP(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function rmTreeAsync(path: string): Promise<void> {
  try {
    await rmP(path, { recursive: true, force: true });
  } catch {
    rmTree(path);
  }
}
