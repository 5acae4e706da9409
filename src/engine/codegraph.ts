/**
 * @module codegraph — the code digest of a stage: its module plus every local module it reaches.
 *
 * The import graph is found from the source, never from a hand-kept list. Each JS/TS file is
 * transpiled with the TypeScript compiler (types, `import type` and comments vanish), re-parsed,
 * and hashed as its token stream, so comment, whitespace, indentation and type-only edits do not
 * rerun anything (the "normalised code hashing" Snakemake users ask for in snakemake#1694). Its
 * runtime imports (`import … from`, `export … from`, side-effect imports, `import('…')` with a
 * literal) are read from the same transpiled text. Local specifiers resolve with TypeScript's
 * `.js` → `.ts` rewriting; bare specifiers contribute the package's locked version from
 * package-lock.json. Per-file results live in the stat cache, so a no-op run only stats files and
 * never loads the compiler. Non-literal dynamic imports cannot be followed: list such files in
 * the stage's `files`.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, resolve, relative, join, sep, isAbsolute } from 'node:path';
import { builtinModules, createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { hashBytes } from './hash.ts';
import { statInfo, type StatCache } from './statcache.ts';

export interface CodeDigest {
  /** root-relative POSIX path → digest (normalised for JS/TS, raw bytes otherwise). */
  code: Record<string, string>;
  /** package name → locked version. */
  packages: Record<string, string>;
}

const JS_EXT = /\.(?:[cm]?[jt]s|[jt]sx)$/;
const BUILTINS = new Set(builtinModules);

interface FileInfo {
  digest: string;
  imports: string[];
}

type TS = typeof import('typescript');
let tsModule: TS | null | undefined;
function loadTs(): TS | null {
  if (tsModule === undefined) {
    try {
      tsModule = createRequire(import.meta.url)('typescript') as TS;
    } catch {
      tsModule = null;
    }
  }
  return tsModule;
}

/** Token stream of the transpiled module + its runtime import specifiers. */
export function analyseSource(text: string, fileName: string): FileInfo {
  const ts = loadTs();
  if (!ts) return { digest: `raw:${hashBytes(text)}`, imports: scanImportsFallback(text) };
  const out = ts.transpileModule(text, {
    fileName: fileName.replace(/\.[cm]?js$/, '.ts').replace(/\.jsx$/, '.tsx'),
    reportDiagnostics: false,
    compilerOptions: {
      target: ts.ScriptTarget.ESNext,
      module: ts.ModuleKind.ESNext,
      removeComments: true,
      verbatimModuleSyntax: true, // keep every non-type import: over-inclusion is safe
      jsx: ts.JsxEmit.Preserve,
    },
  }).outputText;
  const sf = ts.createSourceFile('m.js', out, ts.ScriptTarget.ESNext, true, ts.ScriptKind.JS);
  const toks: string[] = [];
  const walk = (n: import('typescript').Node): void => {
    const ch = n.getChildren(sf);
    if (ch.length === 0) {
      if (n.kind !== ts.SyntaxKind.EndOfFileToken) toks.push(n.getText(sf));
      return;
    }
    for (const c of ch) walk(c);
  };
  walk(sf);
  const kept: string[] = [];
  for (let i = 0; i < toks.length; i++) {
    const next = toks[i + 1];
    if (toks[i] === ',' && (next === '}' || next === ']' || next === ')')) continue; // trailing comma
    kept.push(toks[i]!);
  }
  const imports = ts.preProcessFile(out, true, true).importedFiles.map((f) => f.fileName);
  return { digest: hashBytes(kept.join(' ')), imports: [...new Set(imports)] };
}

/** Used only if the TypeScript compiler is unavailable: raw bytes, regex import scan. */
function scanImportsFallback(text: string): string[] {
  const out = new Set<string>();
  const re = /(?:^|[^.\w$])(?:import|export)\s*(?:[\w*${}\s,]+from\s*)?["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(re)) out.add((m[1] ?? m[2])!);
  return [...out];
}

export function packageNameOf(spec: string): string | undefined {
  if (spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!)) return undefined;
  if (spec.startsWith('#')) return undefined; // package.json "imports": resolved by Node, not followed
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isLocal(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec.startsWith('file:') || spec === '.' || spec === '..';
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Resolve a local specifier the way tsx/TypeScript do (`.js` may name a `.ts` file). */
export function resolveLocal(fromFile: string, spec: string): string | undefined {
  const base = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(dirname(fromFile), spec);
  const cands = [base];
  const m = /\.([cm]?)js(x?)$/.exec(base);
  if (m) cands.push(base.slice(0, -m[0].length) + `.${m[1]}ts${m[2]}`);
  if (!/\.[a-z]+$/i.test(base)) {
    for (const e of ['.ts', '.tsx', '.mts', '.js', '.mjs', '.cjs', '.json']) cands.push(base + e);
    for (const e of ['index.ts', 'index.js', 'index.mjs']) cands.push(join(base, e));
  }
  return cands.find(isFile);
}

interface LockIndex {
  packages: Record<string, string>;
}
const lockCache = new Map<string, LockIndex>();

function lockIndexFor(root: string): LockIndex {
  const hit = lockCache.get(root);
  if (hit) return hit;
  const idx: LockIndex = { packages: {} };
  for (let d = root; ; d = dirname(d)) {
    const f = join(d, 'package-lock.json');
    if (existsSync(f)) {
      try {
        const lock = JSON.parse(readFileSync(f, 'utf8')) as { packages?: Record<string, { version?: string }> };
        for (const [p, v] of Object.entries(lock.packages ?? {})) {
          const i = p.lastIndexOf('node_modules/');
          if (i === 0 && v.version) idx.packages[p.slice('node_modules/'.length)] = v.version;
        }
      } catch {
        /* unreadable lock: fall back to installed versions */
      }
      break;
    }
    if (dirname(d) === d) break;
  }
  lockCache.set(root, idx);
  return idx;
}

function installedVersion(root: string, name: string): string {
  for (let d = root; ; d = dirname(d)) {
    const f = join(d, 'node_modules', name, 'package.json');
    if (existsSync(f)) {
      try {
        return String((JSON.parse(readFileSync(f, 'utf8')) as { version?: string }).version ?? 'unknown');
      } catch {
        return 'unknown';
      }
    }
    if (dirname(d) === d) return 'unknown';
  }
}

export function toRel(root: string, abs: string): string {
  const r = relative(root, abs);
  return (isAbsolute(r) ? abs : r).split(sep).join('/');
}

export class CodeGraph {
  private files = new Map<string, FileInfo | null>();
  private memo = new Map<string, CodeDigest>();

  constructor(
    private readonly root: string,
    private readonly stat: StatCache,
  ) {}

  private info(abs: string): FileInfo | null {
    const known = this.files.get(abs);
    if (known !== undefined) return known;
    const st = statInfo(abs);
    let info: FileInfo | null = null;
    if (st) {
      const hit = this.stat.lookup(abs, st);
      if (hit && Array.isArray(hit.extra)) info = { digest: hit.digest, imports: hit.extra as string[] };
      else {
        const bytes = readFileSync(abs);
        info = JS_EXT.test(abs) ? analyseSource(bytes.toString('utf8'), abs) : { digest: hashBytes(bytes), imports: [] };
        this.stat.record(abs, st, info.digest, info.imports, hashBytes(bytes));
      }
    }
    this.files.set(abs, info);
    return info;
  }

  /** Digest of the files reachable from `entries` (absolute paths). */
  digest(entries: string[]): CodeDigest {
    const memoKey = entries.join('\0');
    const hit = this.memo.get(memoKey);
    if (hit) return hit;
    const code: Record<string, string> = {};
    const packages: Record<string, string> = {};
    const seen = new Set<string>();
    const stack = [...entries];
    const lock = lockIndexFor(this.root);
    while (stack.length) {
      const abs = stack.pop()!;
      if (seen.has(abs)) continue;
      seen.add(abs);
      const info = this.info(abs);
      code[toRel(this.root, abs)] = info ? info.digest : 'missing';
      if (!info) continue;
      for (const spec of info.imports) {
        if (isLocal(spec)) {
          const r = resolveLocal(abs, spec);
          if (r) stack.push(r);
          else code[`${toRel(this.root, abs)} → ${spec}`] = 'unresolved';
        } else {
          const name = packageNameOf(spec);
          if (name && !(name in packages)) packages[name] = lock.packages[name] ?? installedVersion(this.root, name);
        }
      }
    }
    const out = Object.freeze({ code: Object.freeze(code), packages: Object.freeze(packages) });
    this.memo.set(memoKey, out);
    return out;
  }
}
