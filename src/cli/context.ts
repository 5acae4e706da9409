/**
 * @module context — what every command needs: the loaded pipeline, session options, output streams.
 */
import { resolve } from 'node:path';
import { loadPipeline, type LoadedPipeline } from '../engine/load.ts';
import { EngineError } from '../engine/errors.ts';
import type { SessionOptions } from '../engine/session.ts';
import { loadEngineConfig, type EngineConfig } from '../engine/config.ts';
import type { Options } from './flags.ts';

export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export interface Ctx extends Io {
  loaded: LoadedPipeline;
  session: SessionOptions & { root: string; cacheDir: string };
  options: Options;
  positionals: string[];
  /** mecheval.config.json beside the pipeline ({} when absent) */
  engine: EngineConfig;
}

export async function makeCtx(options: Options, positionals: string[], io: Io): Promise<Ctx> {
  const loaded = await loadPipeline(options.pipeline, options.config !== undefined ? { config: options.config } : {});
  const engine = loadEngineConfig(loaded.root);
  const cacheDir = options.cache ? resolve(options.cache) : engine.cache ?? resolve(loaded.root, 'cache');
  const hash = process.env.MECHEVAL_HASH;
  if (hash !== undefined && hash !== 'sha256' && hash !== 'blake3') {
    throw new EngineError({ code: 'usage', message: `MECHEVAL_HASH must be sha256 or blake3, got ${JSON.stringify(hash)}`, fields: { MECHEVAL_HASH: hash } });
  }
  const artifacts = options.artifacts ? { artifactsDir: resolve(options.artifacts) } : {};
  return { ...io, loaded, session: { root: loaded.root, cacheDir, ...artifacts, ...(hash ? { hashAlgorithm: hash } : {}) }, options, positionals, engine };
}

export function line(s: NodeJS.WritableStream, text = ''): void {
  s.write(`${text}\n`);
}

/** A cancel signal wired to SIGINT/SIGTERM: first signal cancels cleanly, second exits at once. */
export function interruptSignal(io: Io): { signal: AbortSignal; dispose(): void; interrupted(): boolean } {
  const ac = new AbortController();
  let count = 0;
  const on = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      io.err.write(`\n${sig}: cancelling running stages (again to exit at once)…\n`);
      ac.abort(new Error(sig));
    } else process.exit(130);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
    interrupted: () => count > 0,
  };
}
