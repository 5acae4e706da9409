/**
 * @module clock — a monotonic millisecond clock for durations.
 *
 * `performance.now()` would do, but the `performance` global loads perf_hooks and ten internal
 * modules on first use, compiled at start-up in a short-lived CLI; a no-op `run` only needs
 * durations. process.hrtime is already loaded.
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
