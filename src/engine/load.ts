/**
 * @module load — import a pipeline module (TypeScript or JavaScript) and get its Pipeline.
 *
 * The default export is a Pipeline, or a function `({ config }) => Pipeline | Promise<Pipeline>`.
 * TypeScript modules are loaded through tsx, registered on demand when the CLI runs as plain
 * compiled JavaScript.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EngineError, isEngineError } from './errors.ts';
import { isPipeline, pipeline as makePipeline, type Pipeline } from './pipeline.ts';

export interface LoadedPipeline {
  pipeline: Pipeline;
  file: string;
  root: string;
}

let tsxRegistered = false;
async function ensureTsx(): Promise<void> {
  if (tsxRegistered) return;
  const { register } = (await import('tsx/esm/api')) as { register: () => unknown };
  register();
  tsxRegistered = true;
}

/** Import a module by absolute path, registering tsx first if it is TypeScript and no loader is active. */
export async function importModule(abs: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(abs).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (/\.[cm]?tsx?$/.test(abs) && (code === 'ERR_UNKNOWN_FILE_EXTENSION' || code === 'ERR_MODULE_NOT_FOUND') && !tsxRegistered) {
      await ensureTsx();
      return (await import(`${url}?tsx`)) as Record<string, unknown>;
    }
    throw e;
  }
}

export function defaultPipelineFile(cwd = process.cwd()): string {
  for (const f of ['pipeline.ts', 'pipeline.mjs', 'pipeline.js']) if (existsSync(resolve(cwd, f))) return resolve(cwd, f);
  return resolve(cwd, 'pipeline.ts');
}

export async function loadPipeline(file: string | undefined, opts: { config?: string; fresh?: boolean } = {}): Promise<LoadedPipeline> {
  const abs = resolve(file ?? defaultPipelineFile());
  if (!existsSync(abs)) {
    throw new EngineError({ code: 'pipeline_load', message: `pipeline module ${abs} does not exist`, fields: { file: abs }, hint: 'pass --pipeline FILE, or run from the directory that holds pipeline.ts' });
  }
  const isTs = /\.[cm]?tsx?$/.test(abs);
  const url = pathToFileURL(abs).href + (opts.fresh && !isTs ? `?t=${Date.now()}` : '');
  let mod: { default?: unknown };
  try {
    try {
      if (opts.fresh && isTs) {
        // tsx caches TypeScript modules by path (ignoring ?query): a namespaced tsImport loads afresh.
        const { tsImport } = (await import('tsx/esm/api')) as { tsImport: (s: string, parent: string) => Promise<{ default?: unknown }> };
        mod = await tsImport(url, import.meta.url);
      } else mod = (await import(url)) as { default?: unknown };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (isTs && (code === 'ERR_UNKNOWN_FILE_EXTENSION' || code === 'ERR_MODULE_NOT_FOUND') && !tsxRegistered) {
        await ensureTsx();
        mod = (await import(`${url}?tsx`)) as { default?: unknown }; // the failed load is cached under the plain URL
      } else throw e;
    }
  } catch (e) {
    if (isEngineError(e)) throw e;
    throw new EngineError({ code: 'pipeline_load', message: `cannot load pipeline module ${abs}`, fields: { file: abs, reason: (e as Error).stack?.split('\n').slice(0, 6).join('\n') ?? String(e) } }, { cause: e });
  }
  let p: unknown = mod.default;
  // A TypeScript module outside any "type": "module" package comes back CJS-wrapped.
  if (p && typeof p === 'object' && !isPipeline(p) && 'default' in p) p = (p as { default: unknown }).default;
  try {
    if (typeof p === 'function') p = await (p as (o: { config?: string }) => unknown)({ ...(opts.config !== undefined ? { config: opts.config } : {}) });
  } catch (e) {
    if (isEngineError(e)) throw e;
    throw new EngineError({ code: 'pipeline_load', message: `the pipeline function in ${abs} threw`, fields: { file: abs, reason: (e as Error).message } }, { cause: e });
  }
  if (Array.isArray(p)) p = makePipeline({ stages: p });
  if (!isPipeline(p)) {
    throw new EngineError({ code: 'pipeline_load', message: `${abs} does not default-export a pipeline`, fields: { file: abs, got: typeof p }, hint: 'export default pipeline({ stages: [...] }), or a function ({ config }) => pipeline(...)' });
  }
  return { pipeline: p, file: abs, root: p.root ? resolve(dirname(abs), p.root) : dirname(abs) };
}
