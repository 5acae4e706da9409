/**
 * @module executor — where stage bodies run. A small interface; `LocalExecutor` is the default.
 *
 * A future Slurm executor (issue 9) implements the same `run(job, hooks, signal)`: the engine
 * hands it a job whose inputs, output dir and scratch dir are absolute paths, and expects the
 * promise to settle only after the body has stopped writing to `outDir`.
 *
 * LocalExecutor: function stages run in a pool of forked worker processes (reused across stages;
 * a crash kills one worker, never the engine); command stages run through zx, every interpolated
 * value quoted by zx so params stay inert.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { EngineError, tailLines, type ErrorData } from './errors.ts';
import { isPlaceholder, type ShTemplate } from './task.ts';
import type { CommitRequest, CommitResult } from './commit.ts';

export type JobBody =
  | { kind: 'function'; module: string; export: string }
  | { kind: 'command'; template: ShTemplate };

export interface Job {
  stageId: string;
  key: string;
  body: JobBody;
  params: unknown;
  /** input name → absolute dir of that upstream's outputs */
  inputs: Record<string, string>;
  /** input name → which stage and key produced it (provenance for reports), and how long that run took */
  upstream: Record<string, UpstreamRef>;
  outDir: string;
  scratchDir: string;
  gpus: number[];
  /** working directory for commands (the pipeline root) */
  cwd: string;
  timeoutMs: number | null;
  /**
   * Optional: the executor may perform the whole commit itself (commit.ts) and resolve with its
   * result — the local pool does, inside the worker. Otherwise the engine commits.
   */
  commit?: CommitRequest;
}

export interface UpstreamRef {
  id: string;
  key: string;
  /** wall time of the run that produced these outputs (null when unknown, e.g. its run entry was collected) */
  ms: number | null;
}

export interface JobHooks {
  progress(step: number, total: number, info?: string): void;
  log(line: string): void;
}

export interface Executor {
  readonly name: string;
  /**
   * Resolves when the body succeeded (with the commit result if it performed `job.commit`);
   * rejects with EngineError 'stage_failed', 'output_missing' or 'cancelled'.
   */
  run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void>;
  close(): Promise<void>;
}

const CANCEL_GRACE_MS = 2000;
const LOG_KEEP = 200;

function failed(job: Job, reason: string, log: string[], extra: Record<string, string> = {}): EngineError {
  return new EngineError({
    code: 'stage_failed',
    message: `stage '${job.stageId}' failed: ${reason.split('\n')[0]}`,
    fields: { stage: job.stageId, key: job.key.slice(0, 16), ...extra, ...(log.length ? { log: tailLines(log.join('\n')) } : {}) },
    hint: `fix the stage and rerun it (npm run pipeline -- run '${job.stageId}'); its partial output was discarded`,
  });
}

function cancelled(job: Job, why: string): EngineError {
  return new EngineError({ code: 'cancelled', message: `stage '${job.stageId}' cancelled (${why})`, fields: { stage: job.stageId } });
}

/** A stack without the engine's own worker frames and Node internals: what the user can act on. */
function userFrames(stack: string): string {
  return stack
    .split('\n')
    .filter((l) => !/\/engine\/worker\.[cm]?[jt]s:|\(node:internal|^\s+at node:internal/.test(l))
    .join('\n');
}

/** Lines of a stream, delivered whole. */
function lineSplitter(onLine: (l: string) => void): (chunk: Buffer | string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (buf.length > 64 * 1024) {
      onLine(buf);
      buf = '';
    }
  };
}

interface Pending {
  job: Job;
  hooks: JobHooks;
  log: string[];
  resolve(m?: CommitResult): void;
  reject(e: unknown): void;
  state: { reason?: 'cancel' | 'timeout' };
}

class Worker {
  readonly child: ChildProcess;
  current: { task: number; p: Pending } | undefined;
  dead = false;
  constructor(workerFile: string, execArgv: string[], onExit: (w: Worker) => void) {
    // child_process is loaded on first use: a no-op run never forks and should not pay for it
    const { fork } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    this.child = fork(workerFile, [], { execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
    const onLine = (l: string) => {
      const p = this.current?.p;
      if (!p) return;
      p.log.push(l);
      if (p.log.length > LOG_KEEP) p.log.shift();
      p.hooks.log(l);
    };
    this.child.stdout!.on('data', lineSplitter(onLine));
    this.child.stderr!.on('data', lineSplitter(onLine));
    this.child.on('message', (m: { type: string; task: number; step?: number; total?: number; info?: string; msg?: string; message?: string; stack?: string; aborted?: boolean; committed?: CommitResult; engineError?: ErrorData }) => {
      const cur = this.current;
      if (!cur || m.task !== cur.task) return;
      const p = cur.p;
      if (m.type === 'progress') p.hooks.progress(m.step ?? 0, m.total ?? 0, m.info);
      else if (m.type === 'log') {
        p.log.push(m.msg ?? '');
        if (p.log.length > LOG_KEEP) p.log.shift();
        p.hooks.log(m.msg ?? '');
      } else if (m.type === 'done') {
        this.current = undefined;
        p.resolve(m.committed);
      } else if (m.type === 'error') {
        this.current = undefined;
        if (m.engineError) p.reject(new EngineError(m.engineError));
        else if (p.state.reason === 'cancel' && m.aborted) p.reject(cancelled(p.job, 'cancelled'));
        else if (p.state.reason === 'timeout') p.reject(failed(p.job, `timed out after ${p.job.timeoutMs} ms`, p.log));
        else p.reject(failed(p.job, m.message ?? 'error', p.log, { error: tailLines(userFrames(m.stack || m.message || ''), 12) }));
      }
    });
    this.child.on('exit', (code, signal) => {
      this.dead = true;
      const cur = this.current;
      this.current = undefined;
      if (cur) {
        const p = cur.p;
        if (p.state.reason === 'cancel') p.reject(cancelled(p.job, 'cancelled'));
        else if (p.state.reason === 'timeout') p.reject(failed(p.job, `timed out after ${p.job.timeoutMs} ms (worker killed)`, p.log));
        else p.reject(failed(p.job, `worker process died (${signal ?? `exit code ${code}`})`, p.log));
      }
      onExit(this);
    });
  }
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  /** idle workers by loader flavour (with or without tsx): a plain worker cannot import TypeScript */
  private idle = new Map<string, Worker[]>();
  private all = new Set<Worker>();
  private taskSeq = 0;
  private readonly workerFile: string;

  /** Workers are forked on demand and reused; the scheduler's slots bound how many are busy (≤ -j). */
  constructor() {
    const self = fileURLToPath(import.meta.url);
    this.workerFile = self.replace(/executor\.([cm]?[jt]s)$/, 'worker.$1');
  }

  private execArgvFor(module: string): string[] {
    const needsTsx = /\.[cm]?tsx?$/.test(this.workerFile) || /\.[cm]?tsx?$/.test(module);
    if (!needsTsx) return [];
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return ['--import', tsx];
  }

  run(job: Job, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void> {
    return job.body.kind === 'function' ? this.runFunction(job, job.body, hooks, signal) : this.runCommand(job, job.body.template, hooks, signal);
  }

  private runFunction(job: Job, body: { module: string; export: string }, hooks: JobHooks, signal: AbortSignal): Promise<CommitResult | void> {
    if (signal.aborted) return Promise.reject(cancelled(job, 'cancelled before start'));
    const execArgv = this.execArgvFor(body.module);
    const flavour = execArgv.join(' ');
    const pool = this.idle.get(flavour) ?? this.idle.set(flavour, []).get(flavour)!;
    let w = pool.pop();
    while (w && w.dead) w = pool.pop();
    if (!w) {
      w = new Worker(this.workerFile, execArgv, (dead) => {
        this.all.delete(dead);
        const list = this.idle.get(flavour);
        if (list) this.idle.set(flavour, list.filter((x) => x !== dead));
      });
      this.all.add(w);
    }
    const worker = w;
    const task = ++this.taskSeq;
    return new Promise<CommitResult | void>((resolve, reject) => {
      const state: Pending['state'] = {};
      let killTimer: NodeJS.Timeout | undefined;
      let timeout: NodeJS.Timeout | undefined;
      const stop = (reason: 'cancel' | 'timeout') => {
        if (state.reason) return;
        state.reason = reason;
        if (!worker.dead) worker.child.send({ type: 'cancel', task });
        killTimer = setTimeout(() => worker.child.kill('SIGKILL'), CANCEL_GRACE_MS);
      };
      const onAbort = () => stop('cancel');
      const settle = (ok: boolean, e?: unknown, m?: CommitResult) => {
        signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        clearTimeout(timeout);
        if (!worker.dead && !state.reason) this.idle.get(flavour)!.push(worker);
        else if (!worker.dead && state.reason) worker.child.kill('SIGKILL'); // its module state may be mid-abort: do not reuse
        if (ok) resolve(m);
        else reject(e);
      };
      worker.current = { task, p: { job, hooks, log: [], state, resolve: (m) => settle(true, undefined, m), reject: (e) => settle(false, e) } };
      signal.addEventListener('abort', onAbort, { once: true });
      if (job.timeoutMs) timeout = setTimeout(() => stop('timeout'), job.timeoutMs);
      worker.child.send({
        type: 'run',
        task,
        module: body.module,
        export: body.export,
        ctx: { id: job.stageId, key: job.key, params: job.params, inputs: job.inputs, upstream: job.upstream, outDir: job.outDir, scratchDir: job.scratchDir, gpus: job.gpus },
        commit: job.commit,
      });
    });
  }

  private async runCommand(job: Job, t: ShTemplate, hooks: JobHooks, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw cancelled(job, 'cancelled before start');
    const { $ } = await import('zx');
    mkdirSync(job.outDir, { recursive: true });
    if (t.values.some((v) => isPlaceholder(v) && v.name === 'scratchDir')) mkdirSync(job.scratchDir, { recursive: true });
    const place = (v: unknown): unknown => {
      if (isPlaceholder(v)) {
        if (v.name === 'outDir') return job.outDir;
        if (v.name === 'scratchDir') return job.scratchDir;
        if (v.name.startsWith('input:')) return job.inputs[v.name.slice(6)]!;
      }
      if (v === null || v === undefined) return '';
      if (Array.isArray(v)) return v.map(place);
      if (typeof v === 'object') return JSON.stringify(v);
      return String(v);
    };
    const values = t.values.map(place);
    const strings = Object.assign([...t.strings], { raw: [...t.strings] }) as unknown as TemplateStringsArray;
    const ac = new AbortController();
    let reason: 'cancel' | 'timeout' | undefined;
    let group: number | undefined; // the command runs in its own process group, killed as a whole
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (why: 'cancel' | 'timeout') => {
      reason ??= why;
      if (group !== undefined) {
        const g = group;
        try {
          process.kill(-g, 'SIGTERM');
        } catch {
          /* already gone */
        }
        killTimer = setTimeout(() => {
          try {
            process.kill(-g, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, CANCEL_GRACE_MS);
        killTimer.unref();
      }
      ac.abort();
    };
    const onAbort = () => stop('cancel');
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = job.timeoutMs ? setTimeout(() => stop('timeout'), job.timeoutMs) : undefined;
    const log: string[] = [];
    const onLine = (l: string) => {
      const m = /^::progress (\d+)\/(\d+)(?: (.*))?$/.exec(l);
      if (m) return hooks.progress(Number(m[1]), Number(m[2]), m[3]);
      log.push(l);
      if (log.length > LOG_KEEP) log.shift();
      hooks.log(l);
    };
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      MECHEVAL_STAGE: job.stageId,
      MECHEVAL_KEY: job.key,
      MECHEVAL_OUT_DIR: job.outDir,
      MECHEVAL_SCRATCH_DIR: job.scratchDir,
      MECHEVAL_PARAMS: JSON.stringify(job.params),
    };
    for (const [n, d] of Object.entries(job.inputs)) env[`MECHEVAL_INPUT_${n.toUpperCase()}`] = d;
    if (job.gpus.length) env.CUDA_VISIBLE_DEVICES = job.gpus.join(',');
    try {
      // detached: its own process group, so cancelling kills `sleep` and friends, not just bash
      const p = $({ cwd: job.cwd, env, signal: ac.signal, quiet: true, nothrow: true, verbose: false, shell: '/bin/bash', detached: true })(strings, ...values);
      group = p.child?.pid;
      p.stdout.on('data', lineSplitter(onLine));
      p.stderr.on('data', lineSplitter(onLine));
      const r = await p;
      if (reason === 'cancel') throw cancelled(job, 'cancelled');
      if (reason === 'timeout') throw failed(job, `timed out after ${job.timeoutMs} ms`, log);
      if (r.exitCode !== 0) throw failed(job, `command exited with ${r.signal ?? `code ${r.exitCode}`}`, log, { command: String(p.cmd ?? '') });
    } catch (e) {
      if (reason === 'cancel') throw cancelled(job, 'cancelled');
      throw e;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (reason && group !== undefined) {
        try {
          process.kill(-group, 'SIGKILL'); // anything of the group still alive after the shell exited
        } catch {
          /* none left */
        }
      }
      clearTimeout(killTimer);
    }
  }

  async close(): Promise<void> {
    const ws = [...this.all];
    this.idle.clear();
    await Promise.all(
      ws.map(
        (w) =>
          new Promise<void>((r) => {
            if (w.dead) return r();
            w.child.once('exit', () => r());
            try {
              w.child.disconnect();
            } catch {
              w.child.kill('SIGKILL');
            }
            setTimeout(() => w.child.kill('SIGKILL'), 1000).unref();
          }),
      ),
    );
  }
}
