/**
 * @module worker — body of a pooled worker process that runs function stages.
 *
 * Forked by executor.ts (with `--import tsx` when TypeScript is involved). It imports each stage
 * module once and keeps it, so a thousand small stages pay one Node start-up per worker. It exits
 * as soon as the engine disconnects (the engine died or closed the pool), so a killed engine
 * never leaves workers behind.
 */
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';
import { commitSync, type CommitRequest } from './commit.ts';
import { isEngineError } from './errors.ts';

interface RunMsg {
  type: 'run';
  task: number;
  module: string;
  export: string;
  ctx: { id: string; key: string; params: unknown; inputs: Record<string, string>; upstream: Record<string, { id: string; key: string; ms: number | null }>; outDir: string; scratchDir: string; gpus: number[] };
  commit?: CommitRequest;
}
interface CancelMsg {
  type: 'cancel';
  task: number;
}

const controllers = new Map<number, AbortController>();
const send = (m: unknown): void => {
  if (process.connected) process.send!(m);
};

async function run(m: RunMsg): Promise<void> {
  const ac = new AbortController();
  controllers.set(m.task, ac);
  try {
    if (m.ctx.gpus.length) process.env.CUDA_VISIBLE_DEVICES = m.ctx.gpus.join(',');
    mkdirSync(m.ctx.outDir, { recursive: true });
    const scratch = m.ctx.scratchDir;
    const mod = (await import(pathToFileURL(m.module).href)) as Record<string, unknown>;
    const f = mod[m.export];
    if (typeof f !== 'function') {
      const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw Object.assign(new Error(`module ${m.module} has no exported function '${m.export}' (functions exported: ${names.join(', ') || 'none'})`), { userError: true });
    }
    let last = 0;
    const t0 = performance.now();
    await f({
      ...m.ctx,
      // created on first use: most stages never touch it, and a thousand mkdir/rmdir pairs add up
      get scratchDir() {
        mkdirSync(scratch, { recursive: true });
        return scratch;
      },
      signal: ac.signal,
      progress: (step: number, total: number, info?: string) => {
        const now = Date.now();
        if (now - last < 50 && step < total) return; // throttle IPC
        last = now;
        send({ type: 'progress', task: m.task, step, total, info });
      },
      log: (msg: string) => send({ type: 'log', task: m.task, msg: String(msg) }),
    });
    if (ac.signal.aborted) throw new Error('cancelled');
    const ms = performance.now() - t0;
    // Commit our own stage (objects, run entry, artifacts): parallel across workers.
    const committed = m.commit ? commitSync(m.ctx.id, m.ctx.key, m.ctx.outDir, ms, m.commit) : undefined;
    send({ type: 'done', task: m.task, committed });
  } catch (e) {
    if (isEngineError(e)) return send({ type: 'error', task: m.task, engineError: e.toJSON() });
    const err = e instanceof Error ? e : new Error(String(e));
    send({ type: 'error', task: m.task, message: err.message, stack: err.stack ?? '', aborted: ac.signal.aborted });
  } finally {
    controllers.delete(m.task);
  }
}

process.on('message', (m: RunMsg | CancelMsg) => {
  if (m.type === 'run') void run(m);
  else if (m.type === 'cancel') controllers.get(m.task)?.abort(new Error('cancelled'));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
