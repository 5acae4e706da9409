/**
 * @module hash — content digests of bytes, strings and files.
 *
 * SHA-256 (Node's OpenSSL binding) is the default everywhere; files are read in 1 MiB chunks
 * into one reused buffer, which keeps throughput close to `openssl dgst -sha256`. BLAKE3 (from
 * hash-wasm, a wasm build shipped inside the npm tarball) is an opt-in for large files; its
 * digests carry a `b3-` prefix so the two kinds can never be confused in the store.
 */
import crypto, { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/** A content digest: 64 lowercase hex chars (SHA-256) or `b3-` + 64 hex chars (BLAKE3). */
export type Hash = string & { readonly __brand: 'Hash' };
export type HashAlgorithm = 'sha256' | 'blake3';

export const CHUNK = 1 << 20; // 1 MiB reads

export function isHash(s: string): s is Hash {
  return /^(b3-)?[0-9a-f]{64}$/.test(s);
}

// One-shot `crypto.hash` (Node ≥ 20.12) skips the Hash object that createHash builds: about 3× as
// fast on the short strings of keys and manifests, thousands of which a no-op run hashes.
const oneShot = (crypto as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }).hash;

export function hashBytes(data: string | Uint8Array): Hash {
  return (oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex')) as Hash;
}

/** SHA-256 of a file, streamed in 1 MiB reads (async; does not block the event loop for long). */
export async function hashFile(path: string, algorithm: HashAlgorithm = 'sha256'): Promise<Hash> {
  if (algorithm === 'blake3') return hashFileBlake3(path);
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex') as Hash;
}

/** Synchronous variant for small files on hot paths (source files, no-op checks). */
export function hashFileSync(path: string): Hash {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex') as Hash;
}

async function hashFileBlake3(path: string): Promise<Hash> {
  const { createBLAKE3 } = await import('hash-wasm');
  const h = await createBLAKE3();
  h.init();
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `b3-${h.digest('hex')}` as Hash;
}

/**
 * Where the store keeps the object with digest `d`: objects/<2 hex chars>/<digest> (the last 64
 * chars are hex for both kinds). Here rather than in store.ts so that ingest.ts, which store.ts
 * loads on first use, can share it without an import cycle.
 */
export function objectPathIn(objectsDir: string, d: string): string {
  return join(objectsDir, d.slice(d.length - 64, d.length - 62), d);
}

/** The algorithm a stored digest was made with. */
export function algorithmOf(digest: string): HashAlgorithm {
  return digest.startsWith('b3-') ? 'blake3' : 'sha256';
}
