/**
 * @module commands/watch — `watch [STAGE_GLOB...]`: rebuild what is stale whenever a watched file changes.
 *
 * Unlike the other commands it loads the pipeline itself, every cycle (src/engine/watch.ts), so a
 * pipeline or config that is broken at start-up is reported and watched rather than fatal.
 * Plain lines: one summary per cycle (ran / restored / failed, and why each stale stage was stale).
 * `--json`: the stage lines of `run --json`, plus `{"event":"cycle-start"|"cycle-end",…}` lines.
 */
import { dirname, resolve } from 'node:path';
import { loadEngineConfig } from '../../engine/config.ts';
import { defaultPipelineFile } from '../../engine/load.ts';
import { watch, type WatchEvent } from '../../engine/watch.ts';
import { consoleReporter, fmtMs } from '../../engine/progress.ts';
import { EngineError, formatError, isEngineError } from '../../engine/errors.ts';
import { interruptSignal, line, type Io } from '../context.ts';
import type { Options } from '../flags.ts';
import type { Cause } from '../../engine/explain.ts';

type CycleEnd = Extract<WatchEvent, { type: 'cycleEnd' }>;

function errorJson(e: unknown): unknown {
  return isEngineError(e) ? e.toJSON() : { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

/** "derived" causes repeat another stage's cause ("… will be rebuilt first"): the summary keeps root causes. */
const derived = (c: Cause): boolean => c.kind === 'upstream' && c.detail.endsWith('will be rebuilt first');

/** The plain summary of one cycle: counts, then each root cause once with the stages it made stale. */
export function cycleSummary(e: CycleEnd, maxCauses = 8): string[] {
  if (e.error) return [`cycle ${e.cycle}: not built (${fmtMs(e.ms)}); watching for a fix`, formatError(e.error).replace(/^/gm, '  ')];
  const c = e.counts;
  if (e.outcomes.length === 0) return [`cycle ${e.cycle}: ${e.superseded ? 'superseded by a newer change' : `nothing to do (${c.fresh} fresh)`}`];
  const out = [`cycle ${e.cycle}: ${c.ran} ran, ${c.restored} restored, ${c.failed} failed, ${c.cancelled} cancelled, ${c.fresh} fresh in ${fmtMs(e.ms)}${e.superseded ? ' (superseded; next cycle queued)' : ''}`];
  const byCause = new Map<string, string[]>();
  for (const s of e.stale) {
    for (const k of s.causes.filter((k) => !derived(k))) {
      const text = `${k.kind}: ${k.detail}`;
      (byCause.get(text) ?? byCause.set(text, []).get(text)!).push(s.id);
    }
  }
  const causes = [...byCause];
  for (const [text, ids] of causes.slice(0, maxCauses)) {
    const who = ids.length === 1 ? ids[0]! : `${ids.length} stages: ${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ', …' : ''}`;
    out.push(`  ${text}  (${who})`);
  }
  if (causes.length > maxCauses) out.push(`  … and ${causes.length - maxCauses} more causes (\`status\` lists them all)`);
  return out;
}

export async function watchCommand(options: Options, positionals: string[], io: Io): Promise<number> {
  const json = options.json;
  const hash = process.env.MECHEVAL_HASH;
  if (hash !== undefined && hash !== 'sha256' && hash !== 'blake3') {
    throw new EngineError({ code: 'usage', message: `MECHEVAL_HASH must be sha256 or blake3, got ${JSON.stringify(hash)}`, fields: { MECHEVAL_HASH: hash } });
  }
  const pipelineFile = options.pipeline ? resolve(options.pipeline) : defaultPipelineFile();
  // mecheval.config.json: the store location and sharing, as for `run`. Bodies always run in the local
  // pool here: a fresh one each cycle, since pooled workers keep the stage modules they imported.
  const engine = loadEngineConfig(dirname(pipelineFile));
  const cacheDir = options.cache ? resolve(options.cache) : engine.cache;
  const intr = interruptSignal(io);
  const say = (s: string) => line(json ? io.err : io.out, s);
  let watching = 0;
  const onEvent = (e: WatchEvent): void => {
    if (e.type === 'watching') watching = e.files;
    else if (e.type === 'cycleStart') {
      if (json) line(io.out, JSON.stringify({ event: 'cycle-start', cycle: e.cycle, changed: e.changed }));
      else say(`cycle ${e.cycle}: ${e.changed.length ? `${e.changed.slice(0, 3).join(', ')}${e.changed.length > 3 ? ` and ${e.changed.length - 3} more` : ''} changed` : 'initial build'}`);
    } else if (e.type === 'busy') {
      if (e.cancelled.length) say(`  change while running: restarting ${e.cancelled.join(', ')}`);
      if (e.finishing.length) say(`  change while running: letting ${e.finishing.join(', ')} finish (expensive, or untouched by the change); next cycle queued`);
    } else if (e.type === 'cycleEnd') {
      if (json) {
        line(io.out, JSON.stringify({
          event: 'cycle-end', cycle: e.cycle, ...e.counts, ms: Math.round(e.ms), superseded: e.superseded,
          stale: e.stale.map((s) => ({ stage: s.id, causes: s.causes })),
          error: e.error === undefined ? null : errorJson(e.error),
        }));
        if (e.error) line(io.err, formatError(e.error));
      } else for (const l of cycleSummary(e)) say(l);
      if (e.cycle === 1 && !intr.interrupted()) say(`watching ${watching} files for changes (Ctrl-C to stop)`);
    }
  };
  try {
    const w = await watch({
      pipelineFile,
      ...(options.config !== undefined ? { config: options.config } : {}),
      ...(cacheDir ? { cacheDir } : {}),
      ...(engine.sharedStore ? { sharedStore: true } : {}),
      ...(options.artifacts ? { artifactsDir: resolve(options.artifacts) } : {}),
      ...(hash ? { hashAlgorithm: hash } : {}),
      targets: positionals,
      jobs: options.jobs,
      cpus: options.cpus,
      gpus: options.gpus,
      signal: intr.signal,
      reporter: () => consoleReporter({ json, verbose: options.verbose, out: io.out, err: io.err }),
      onEvent,
    });
    await w.done;
  } finally {
    intr.dispose();
  }
  return intr.interrupted() ? 130 : 0;
}
