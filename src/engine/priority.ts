/**
 * @module priority — which ready stage gets the next free slot.
 *
 * List scheduling by critical path (the "bottom level" of HLFET/HEFT, and what Bazel and Shake's
 * profile-guided ordering approximate): a stage's priority is the longest chain of expected work from
 * it to any sink, itself included. Starting the stage at the head of the longest remaining chain first
 * keeps a long train → intervene path from waiting behind short independent stages, which FIFO order
 * does whenever the short ones happen to become ready a moment earlier.
 */
import type { Stage } from './task.ts';

/** Remaining work (ms) through each stage: its own estimate plus the longest remaining work of any dependent. */
export function remainingWork(stages: readonly Stage[], estimateMs: (s: Stage) => number): Map<string, number> {
  const byId = new Map(stages.map((s) => [s.id, s]));
  const dependents = new Map<string, string[]>();
  for (const s of stages) {
    for (const up of Object.values(s.inputs)) {
      if (!byId.has(up)) continue;
      const ds = dependents.get(up);
      if (ds) ds.push(s.id);
      else dependents.set(up, [s.id]);
    }
  }
  const out = new Map<string, number>();
  // Iterative post-order (pipelines are DAGs, checked at load): a deep chain must not overflow the stack.
  for (const root of stages) {
    if (out.has(root.id)) continue;
    const stack: [string, boolean][] = [[root.id, false]];
    while (stack.length) {
      const [id, expanded] = stack.pop()!;
      if (out.has(id)) continue;
      const ds = dependents.get(id) ?? [];
      if (!expanded) {
        stack.push([id, true]);
        for (const d of ds) if (!out.has(d)) stack.push([d, false]);
        continue;
      }
      let tail = 0;
      for (const d of ds) tail = Math.max(tail, out.get(d)!);
      out.set(id, Math.max(0, estimateMs(byId.get(id)!)) + tail);
    }
  }
  return out;
}
