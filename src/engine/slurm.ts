/**
 * @module slurm — the Slurm executor: each ready stage becomes one batch job (issue 9).
 *
 * Why `sbatch`, not `srun`: a batch job lives in the controller, not in the engine's process. The
 * engine can die, be restarted, and re-attach to a job by its id (recorded in the store) instead of
 * running the stage twice; its log goes to a file on the shared filesystem; and a login node keeps
 * no process per running stage. We poll `squeue` ourselves (one call per tick for every job)
 * rather than `sbatch --wait`, which backs off to 32 s polls (slurm-local-cluster.md).
 *
 * Per key, under the store (on the shared filesystem):
 *   slurm/<key>/job.json          the current submission: Slurm job id, attempt dir, who submitted
 *   slurm/<key>/<attempt>/        spec.json, job.sh, job.log, result.json, out/ (the body's outDir)
 * The job (slurm-job.ts) runs the body through LocalExecutor, ingests its outputs into objects/
 * and writes result.json. The engine then verifies every object and commits the run entry
 * (shared.ts `commitVerified`): nothing from a job is cached unverified. A job that fails, is
 * cancelled, hits its time limit, or ends without a result fails its stage and is never cached.
 */
import { mkdirSync, readFileSync, writeFileSync, openSync, readSync, closeSync, fstatSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EngineError, tailLines } from './errors.ts';
import { writeFileAtomicSync } from './fsutil.ts';
import { commitVerified } from './shared.ts';
import { sbatch, squeue, scontrolJob, scancel, ACTIVE_STATES, type FinalState } from './slurm-cli.ts';
import type { SlurmSettings, SlurmStageSettings } from './config.ts';
import type { Executor, Job, JobHooks } from './executor.ts';
import type { CommitResult } from './commit.ts';
import type { Resources } from './task.ts';
import type { JobResult, JobSpec } from './slurm-job.ts';

export interface SlurmExecutorOptions {
  /** the store (on a filesystem the compute nodes share) */
  cacheDir: string;
  settings?: SlurmSettings;
  /** a stage's declared resources (cpu, gpu), by id */
  resourcesOf: (stageId: string) => Resources;
}

interface Record_ {
  jobId: string;
  attemptDir: string;
  submittedAt: string;
  host: string;
  pid: number;
}

interface Watch {
  jobId: string;
  logPath: string;
  logOffset: number;
  /** result.json: a successful result ends the wait without waiting for Slurm's bookkeeping */
  resultPath: string;
  hooks: JobHooks;
  /** settles when squeue no longer shows the job active: with its terminal state, if seen */
  done(state: string | undefined): void;
}

/** pseudo-state: the job's successful result.json appeared (it may still be exiting) */
const RESULT = 'RESULT';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  private watches = new Map<string, Watch>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly pollMs: number;
  private readonly entry: { node: string; args: string[] };
  private readonly matchers: [(id: string) => boolean, SlurmStageSettings][];

  constructor(readonly opts: SlurmExecutorOptions) {
    const s = opts.settings ?? {};
    this.pollMs = s.pollMs ?? 1000;
    const self = fileURLToPath(import.meta.url);
    const jobFile = self.replace(/slurm\.([cm]?[jt]s)$/, 'slurm-job.$1');
    const tsx = /\.[cm]?tsx?$/.test(jobFile) ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
    this.entry = { node: s.node ?? process.execPath, args: [...tsx, jobFile] };
    // picomatch (CommonJS) loaded synchronously and only when per-stage settings exist: a dynamic
    // import here once left a build waiting on a module load with nothing else alive in the process
    const globs = Object.entries(s.stages ?? {});
    const picomatch = globs.length ? (createRequire(import.meta.url)('picomatch') as (g: string) => (id: string) => boolean) : undefined;
    this.matchers = globs.map(([g, v]): [(id: string) => boolean, SlurmStageSettings] => {
      const m = picomatch!(g);
      return [(id) => id === g || m(id), v];
    });
  }

  /** sbatch arguments for one stage: resources from the stage, the rest from the config. */
  async sbatchArgs(job: Job, attemptDir: string): Promise<string[]> {
    const s = this.opts.settings ?? {};
    const eff: SlurmStageSettings = { partition: s.partition, account: s.account, mem: s.mem, time: s.time, extraArgs: [...(s.extraArgs ?? [])] };
    for (const [m, v] of this.matchers) {
      if (!m(job.stageId)) continue;
      Object.assign(eff, { ...v, extraArgs: [...(eff.extraArgs ?? []), ...(v.extraArgs ?? [])] });
    }
    const res = this.opts.resourcesOf(job.stageId);
    const args = [
      `--job-name=mecheval:${job.stageId}`.slice(0, 120),
      `--output=${join(attemptDir, 'job.log')}`,
      `--chdir=${job.cwd}`,
      '--export=ALL',
      '--nodes=1',
      '--ntasks=1',
      `--cpus-per-task=${Math.max(1, res.cpu)}`,
    ];
    if (res.gpu > 0) args.push(`--gres=gpu:${res.gpu}`);
    if (eff.mem) args.push(`--mem=${eff.mem}`);
    // the body's own timeout is enforced inside the job; Slurm's limit adds a minute for start-up and ingest
    if (job.timeoutMs) args.push(`--time=${Math.ceil(job.timeoutMs / 60_000) + 1}`);
    else if (eff.time) args.push(`--time=${eff.time}`);
    if (eff.partition) args.push(`--partition=${eff.partition}`);
    if (eff.account) args.push(`--account=${eff.account}`);
    args.push(...(eff.extraArgs ?? []));
    return args;
  }

  async run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void> {
    const req = job.commit;
    if (!req) {
      throw new EngineError({ code: 'usage', message: 'the slurm executor needs a SHA-256 store', fields: { stage: job.stageId }, hint: 'unset MECHEVAL_HASH (BLAKE3 stores commit on the engine only)' });
    }
    if (signal.aborted) throw this.cancelled(job, 'cancelled before submission');
    const keyDir = join(this.opts.cacheDir, 'slurm', job.key.slice(0, 2), job.key);
    const recPath = join(keyDir, 'job.json');

    // Re-attach: a job for this key submitted by an earlier engine may still run, or may have
    // finished while nobody watched. Never submit a second one for the same key.
    const rec = readJson<Record_>(recPath);
    if (rec) {
      let live = await squeue([rec.jobId]);
      for (let i = 0; !live && i < 5 && !signal.aborted; i++) {
        await sleep(this.pollMs);
        live = await squeue([rec.jobId]);
      }
      if (!live) {
        // resubmitting blind could run the stage twice; fail instead, nothing is lost
        throw this.failed(job, `cannot ask Slurm about job ${rec.jobId} submitted earlier for this key (squeue fails)`, [], { stage: job.stageId, 'slurm job': rec.jobId });
      }
      const st = live.get(rec.jobId);
      if (st && ACTIVE_STATES.has(st)) {
        hooks.log(`re-attached to Slurm job ${rec.jobId} (submitted ${rec.submittedAt} by pid ${rec.pid} on ${rec.host})`);
        return this.follow(job, rec, hooks, signal);
      }
      const res = readJson<JobResult>(join(rec.attemptDir, 'result.json'));
      if (res?.ok && res.key === job.key) {
        try {
          hooks.log(`Slurm job ${rec.jobId} had finished; verifying its outputs`);
          return await commitVerified(job, req, res.manifest, res.ms);
        } catch (e) {
          hooks.log(`its outputs did not verify (${(e as Error).message}); resubmitting`);
        }
      }
    }

    const attemptDir = join(keyDir, `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`);
    mkdirSync(join(attemptDir, 'out'), { recursive: true });
    const spec: JobSpec = {
      job: { ...job, outDir: join(attemptDir, 'out'), gpus: [], commit: undefined },
      objectsDir: req.objectsDir,
      outputs: req.outputs,
      volatile: req.volatile ?? [],
      resultPath: join(attemptDir, 'result.json'),
    };
    delete (spec.job as Partial<Job>).commit;
    writeFileSync(join(attemptDir, 'spec.json'), JSON.stringify(spec));
    const script = join(attemptDir, 'job.sh');
    writeFileSync(script, `#!/bin/bash\n# mecheval stage ${job.stageId} (key ${job.key})\nexec ${[this.entry.node, ...this.entry.args, join(attemptDir, 'spec.json')].map(q).join(' ')}\n`, { mode: 0o755 });
    const jobId = await sbatch([...(await this.sbatchArgs(job, attemptDir)), script]);
    const mine: Record_ = { jobId, attemptDir, submittedAt: new Date().toISOString(), host: hostname(), pid: process.pid };
    writeFileAtomicSync(recPath, JSON.stringify(mine), { dirSync: false });
    hooks.log(`submitted as Slurm job ${jobId}`);
    return this.follow(job, mine, hooks, signal);
  }

  /** Wait for the job to end (cancelling it on abort), then verify and commit, or fail. */
  private async follow(job: Job, rec: Record_, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult> {
    const logPath = join(rec.attemptDir, 'job.log');
    const log: string[] = [];
    const userHooks: JobHooks = {
      progress: hooks.progress,
      log: (l) => {
        log.push(l);
        if (log.length > 200) log.shift();
        hooks.log(l);
      },
    };
    let cancelledByUs = false;
    const ended = new Promise<string | undefined>((resolve) => {
      this.watches.set(rec.jobId, { jobId: rec.jobId, logPath, logOffset: 0, resultPath: join(rec.attemptDir, 'result.json'), hooks: userHooks, done: resolve });
      this.startPolling();
    });
    const onAbort = () => {
      cancelledByUs = true;
      void scancel([rec.jobId]);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // aborted while we were submitting
    let seen: string | undefined;
    try {
      seen = await ended;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (seen === RESULT) {
      // the job wrote a successful result as its last act: its objects are in place
      const ok = readJson<JobResult>(join(rec.attemptDir, 'result.json'));
      if (ok?.ok && ok.key === job.key) return commitVerified(job, job.commit!, ok.manifest, ok.ms);
    }
    if (cancelledByUs || signal.aborted) throw this.cancelled(job, `Slurm job ${rec.jobId} cancelled`);
    const fin: FinalState = (await scontrolJob(rec.jobId)) ?? { state: seen ?? 'UNKNOWN', exitCode: '', reason: '' };
    const resultPath = join(rec.attemptDir, 'result.json');
    let res = readJson<JobResult>(resultPath);
    // a shared filesystem may show the result a moment after the job ended (attribute caching)
    for (let i = 0; !res && fin.state === 'COMPLETED' && i < 10; i++) {
      await sleep(300);
      res = readJson<JobResult>(resultPath);
    }
    const fields = { stage: job.stageId, 'slurm job': rec.jobId, state: [fin.state, fin.exitCode && `exit ${fin.exitCode}`, fin.reason && fin.reason !== 'None' && fin.reason].filter(Boolean).join(', '), log: logPath };
    if (fin.state === 'TIMEOUT') throw this.failed(job, `Slurm job ${rec.jobId} hit its time limit`, log, fields);
    if (fin.state === 'CANCELLED' || (res && !res.ok && res.error.code === 'cancelled')) {
      // not by us (that returned above): scancel by a user or an admin, preemption, a node drain
      throw this.failed(job, `Slurm job ${rec.jobId} was cancelled outside this engine`, log, fields);
    }
    if (res && !res.ok) {
      throw new EngineError({ ...res.error, fields: { ...(res.error.fields ?? {}), 'slurm job': rec.jobId, host: res.host } });
    }
    if (!res || res.key !== job.key || (fin.state !== 'COMPLETED' && fin.state !== 'UNKNOWN' && seen !== 'COMPLETED')) {
      throw this.failed(job, `Slurm job ${rec.jobId} ended (${fields.state || 'purged'}) without a result`, log, fields);
    }
    return commitVerified(job, job.commit!, res.manifest, res.ms);
  }

  private startPolling(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.pollMs);
  }

  /** One squeue for every watched job; stream new log lines; settle the jobs that ended. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const ws = [...this.watches.values()];
      if (ws.length === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      for (const w of ws) {
        const r = readJson<JobResult>(w.resultPath);
        if (r?.ok) {
          this.drainLog(w);
          this.watches.delete(w.jobId);
          w.done(RESULT);
        }
      }
      const states = await squeue(ws.filter((w) => this.watches.has(w.jobId)).map((w) => w.jobId));
      for (const w of ws) {
        if (!this.watches.has(w.jobId)) continue;
        this.drainLog(w);
        if (!states) continue; // controller unreachable: try again next tick
        const st = states.get(w.jobId);
        if (st && ACTIVE_STATES.has(st)) continue;
        this.drainLog(w);
        this.watches.delete(w.jobId);
        w.done(st);
      }
    } finally {
      this.ticking = false;
    }
  }

  private drainLog(w: Watch): void {
    if (!existsSync(w.logPath)) return;
    let fd: number;
    try {
      fd = openSync(w.logPath, 'r');
    } catch {
      return;
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= w.logOffset) return;
      const buf = Buffer.alloc(Math.min(size - w.logOffset, 1 << 20));
      const n = readSync(fd, buf, 0, buf.length, w.logOffset);
      const text = buf.subarray(0, n).toString('utf8');
      const end = text.lastIndexOf('\n');
      if (end < 0 && n < buf.length) return; // wait for a whole line
      const whole = end < 0 ? text : text.slice(0, end + 1);
      w.logOffset += Buffer.byteLength(whole);
      for (const l of whole.split('\n')) {
        if (!l) continue;
        const m = /^::progress (\d+)\/(\d+)(?: (.*))?$/.exec(l);
        if (m) w.hooks.progress(Number(m[1]), Number(m[2]), m[3]);
        else w.hooks.log(l);
      }
    } finally {
      closeSync(fd);
    }
  }

  private failed(job: Job, reason: string, log: string[], fields: Record<string, string>): EngineError {
    return new EngineError({
      code: 'stage_failed',
      message: `stage '${job.stageId}' failed: ${reason}`,
      fields: { ...fields, ...(log.length ? { output: tailLines(log.join('\n')) } : {}) },
      hint: 'see the job log; nothing of this run was cached',
    });
  }

  private cancelled(job: Job, why: string): EngineError {
    return new EngineError({ code: 'cancelled', message: `stage '${job.stageId}' cancelled (${why})`, fields: { stage: job.stageId } });
  }

  /** Cancel whatever is still submitted (an engine that closes early leaves no jobs behind). */
  async close(): Promise<void> {
    const ids = [...this.watches.keys()];
    for (const w of this.watches.values()) w.done(undefined);
    this.watches.clear();
    clearInterval(this.timer);
    this.timer = undefined;
    await scancel(ids);
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
