/**
 * @module slurm-job — the entry point a Slurm job runs: one stage body, then its outputs into the store.
 *
 *   node [--import tsx] slurm-job.ts <spec.json>
 *
 * The body runs through `LocalExecutor`, exactly as on the engine's machine (function stages in a
 * pooled worker process, commands through zx in their own process group, same timeout and
 * cancellation). Its outputs are then ingested into the shared store's objects/ with the store's
 * atomic protocol (hash, fsync, read-only, rename). The job writes *no* run entry: it writes
 * `result.json` (temp → rename) beside its log, and the engine verifies every object before it
 * commits the run entry (shared.ts `commitVerified`). SIGTERM (scancel, Slurm's time limit)
 * cancels the body; the result then records the failure.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Job } from './executor.ts';
import { ingestSync } from './ingest.ts';
import { writeFileAtomicSync } from './fsutil.ts';
import { isEngineError, type ErrorData } from './errors.ts';
import { Placeholder, type ShValue } from './task.ts';
import type { Manifest } from './store.ts';

export interface JobSpec {
  /** the job as the engine would run it locally (outDir is the job's own dir; no commit request) */
  job: Job;
  objectsDir: string;
  outputs: readonly string[];
  volatile: readonly string[];
  resultPath: string;
}

export type JobResult =
  | { ok: true; key: string; manifest: Manifest; ms: number; host: string; slurmJobId: string | null }
  | { ok: false; key: string; error: ErrorData; host: string; slurmJobId: string | null };

/** Placeholders travel as `{ $placeholder: name }` (their JSON form); make them placeholders again. */
function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.$placeholder === 'string') return new Placeholder(o.$placeholder);
  }
  return v;
}

async function main(specPath: string): Promise<number> {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as JobSpec;
  const job = spec.job;
  if (job.body.kind === 'command') job.body = { kind: 'command', template: { strings: job.body.template.strings, values: job.body.template.values.map(revive) as ShValue[] } };
  const ac = new AbortController();
  const onSignal = () => ac.abort(new Error('signal'));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // imported dynamically so that a bundle keeps executor.ts as its own file: it finds worker.js beside itself
  const { LocalExecutor } = await import('./executor.ts');
  const ex = new LocalExecutor();
  const base = { key: job.key, host: hostname(), slurmJobId: process.env.SLURM_JOB_ID ?? null };
  const write = (r: JobResult) => writeFileAtomicSync(spec.resultPath, JSON.stringify(r), { dirSync: false });
  try {
    const t0 = performance.now();
    await ex.run(
      job,
      {
        progress: (s, t, i) => console.log(`::progress ${s}/${t}${i ? ` ${i}` : ''}`),
        log: (l) => console.log(l),
      },
      ac.signal,
    );
    const ms = performance.now() - t0;
    if (ac.signal.aborted) throw new Error('cancelled by a signal');
    const manifest = ingestSync(job.stageId, job.outDir, spec.outputs, spec.objectsDir, spec.volatile);
    write({ ok: true, manifest, ms, ...base });
    return 0;
  } catch (e) {
    const error: ErrorData = isEngineError(e) ? e.toJSON() : { code: 'stage_failed', message: `stage '${job.stageId}' failed: ${(e as Error).message}`, fields: { stage: job.stageId } };
    write({ ok: false, error, ...base });
    console.error(error.message);
    return 1;
  } finally {
    await ex.close();
  }
}

const specPath = process.argv[2];
if (!specPath) {
  console.error('usage: slurm-job <spec.json>');
  process.exitCode = 2;
} else {
  main(specPath).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
