/**
 * @module scheduler — order and parallelism.
 *
 * A topological scheduler (all dependencies are known up front, as in Make and Bazel's action
 * graph): a node starts once every upstream node succeeded. Work that needs a processor goes
 * through `Slots`, a counting semaphore over job slots, CPUs and GPUs (GPU indices are handed out
 * so a stage can pin CUDA_VISIBLE_DEVICES). Restores and freshness checks take no slot.
 * At the first failure the scheduler stops launching and aborts running nodes, unless
 * `keepGoing`, which only skips the failed node's dependents.
 */
import { setMaxListeners } from 'node:events';
import type { Resources } from './task.ts';

export type NodeResult = 'ok' | 'failed' | 'cancelled';

export interface Capacity {
  jobs: number;
  cpus: number;
  gpus: number;
}

export interface Grant {
  gpus: number[];
  release(): void;
}

interface Waiter {
  res: Resources;
  priority: number;
  resolve(g: Grant): void;
  reject(e: unknown): void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class Slots {
  private jobs: number;
  private cpus: number;
  private freeGpus: number[];
  private queue: Waiter[] = [];

  constructor(readonly capacity: Capacity) {
    this.jobs = capacity.jobs;
    this.cpus = capacity.cpus;
    this.freeGpus = Array.from({ length: capacity.gpus }, (_, i) => i);
  }

  /** Resources clamped to capacity (a stage asking cpu: 8 on a 2-CPU run gets the whole machine). */
  private fit(res: Resources): Resources {
    return { cpu: Math.min(res.cpu, this.capacity.cpus), gpu: res.gpu };
  }

  /** A slot for `res`; among waiters, higher `priority` first (priority.ts), then first come. */
  acquire(res: Resources, signal: AbortSignal, priority = 0): Promise<Grant> {
    const r = this.fit(res);
    return new Promise<Grant>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const w: Waiter = {
        res: r,
        priority,
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.queue = this.queue.filter((x) => x !== w);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
      // Insert after every waiter of equal or higher priority: the queue stays sorted, FIFO among equals.
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1]!.priority < priority) at--;
      this.queue.splice(at, 0, w);
      this.pumpSoon();
    });
  }

  /**
   * Grant on the next macrotask, not now: stages that become ready together (at the start, or as dependents of the
   * stage that just released its slot) reach `acquire` in the same run of microtasks, and only once they are all
   * queued does priority order mean anything. The delay is one event-loop turn per grant.
   */
  private pumpScheduled = false;
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    // First waiter that fits, in priority order (small stages may pass a blocked big one).
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i]!;
      if (this.jobs >= 1 && this.cpus >= w.res.cpu && this.freeGpus.length >= w.res.gpu) {
        this.queue.splice(i, 1);
        w.signal.removeEventListener('abort', w.onAbort);
        this.jobs -= 1;
        this.cpus -= w.res.cpu;
        const gpus = this.freeGpus.splice(0, w.res.gpu);
        let released = false;
        w.resolve({
          gpus,
          release: () => {
            if (released) return;
            released = true;
            this.jobs += 1;
            this.cpus += w.res.cpu;
            this.freeGpus.push(...gpus);
            this.freeGpus.sort((a, b) => a - b);
            this.pumpSoon();
          },
        });
      } else i++;
    }
  }
}

export interface ScheduleOptions {
  keepGoing: boolean;
  signal?: AbortSignal;
  /** bound on nodes being decided at once (freshness checks are cheap but not free) */
  maxInFlight?: number;
}

/**
 * Run `task` over the DAG given by `order` (topological) and `deps`. The signal passed to each
 * task aborts on external cancel, or on the first failure when not `keepGoing`.
 *
 * A task may answer synchronously (a plain `NodeResult`): a no-op build decides most stages from
 * stats and a hash, and a promise, a closure and a microtask per stage were a large part of its
 * cost. A synchronous answer is settled on the spot, exactly as an awaited one would be (same
 * bookkeeping, same order of dependents in the ready queue), and takes no in-flight place.
 */
export function schedule(order: readonly string[], deps: (id: string) => readonly string[], task: (id: string, signal: AbortSignal) => Promise<NodeResult>, opts: ScheduleOptions): Promise<Map<string, NodeResult>>;
// (the overload above keeps `async (id) => 'ok'` typing as before: a union return type would not)
export function schedule(order: readonly string[], deps: (id: string) => readonly string[], task: (id: string, signal: AbortSignal) => NodeResult | Promise<NodeResult>, opts: ScheduleOptions): Promise<Map<string, NodeResult>>;
export async function schedule(
  order: readonly string[],
  deps: (id: string) => readonly string[],
  task: (id: string, signal: AbortSignal) => NodeResult | Promise<NodeResult>,
  opts: ScheduleOptions,
): Promise<Map<string, NodeResult>> {
  // Nodes by position in `order`: typed arrays and index lists instead of id-keyed maps, since a
  // no-op build settles every node synchronously and this bookkeeping was a good part of its cost.
  const n = order.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(order[i]!, i);
  const remaining = new Int32Array(n);
  const dependents: (number[] | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const ds = deps(order[i]!);
    for (let k = 0; k < ds.length; k++) {
      const j = index.get(ds[k]!);
      if (j === undefined) continue;
      remaining[i]!++;
      (dependents[j] ??= []).push(i);
    }
  }
  const results = new Map<string, NodeResult>(); // in the order nodes ended
  const ended = new Uint8Array(n);
  const end = (i: number, r: NodeResult): void => {
    ended[i] = 1;
    results.set(order[i]!, r);
  };
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per running stage
  const onExternal = () => stop.abort(opts.signal!.reason);
  if (opts.signal?.aborted) stop.abort(opts.signal.reason);
  opts.signal?.addEventListener('abort', onExternal, { once: true });

  // a FIFO read through `head`: shift() on a long array is linear
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (remaining[i] === 0) ready.push(i);
  let head = 0;
  const maxInFlight = opts.maxInFlight ?? 256;
  let inFlight = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));

  const skipDependents = (i: number): void => {
    for (const d of dependents[i] ?? []) {
      if (ended[d]) continue;
      end(d, 'cancelled');
      skipDependents(d);
    }
  };

  const settle = (i: number, r: NodeResult): void => {
    end(i, r);
    if (r === 'ok') {
      const ds = dependents[i];
      if (ds) for (let k = 0; k < ds.length; k++) if (--remaining[ds[k]!]! === 0) ready.push(ds[k]!);
    } else {
      skipDependents(i);
      if (r === 'failed' && !opts.keepGoing) stop.abort(new Error('stopped at first failure'));
    }
  };

  const launch = (): void => {
    while (head < ready.length && inFlight < maxInFlight) {
      const i = ready[head++]!;
      if (ended[i]) continue;
      if (stop.signal.aborted) {
        end(i, 'cancelled');
        continue;
      }
      let r: NodeResult | Promise<NodeResult>;
      try {
        r = task(order[i]!, stop.signal);
      } catch {
        r = 'failed';
      }
      if (typeof r === 'string') {
        settle(i, r);
        continue;
      }
      inFlight++;
      r.catch((): NodeResult => 'failed').then((x) => {
        inFlight--;
        settle(i, x);
        launch();
      });
    }
    if (head === ready.length) {
      // drained: start the queue over rather than keep every id of a long build
      ready.length = 0;
      head = 0;
    }
    if (inFlight === 0 && (head === ready.length || stop.signal.aborted)) {
      for (let i = 0; i < n; i++) if (!ended[i]) end(i, 'cancelled');
      done();
    }
  };
  launch();
  await finished;
  opts.signal?.removeEventListener('abort', onExternal);
  return results;
}
