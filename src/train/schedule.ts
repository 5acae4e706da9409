/**
 * @module schedule — learning-rate schedules of the paper's trainer (paper-setup.md §4): linear warm-up over 10% of
 * the steps, then cosine decay to 0 (HF `get_cosine_schedule_with_warmup`, num_cycles 0.5), or linear decay to 0
 * (HF `get_linear_schedule_with_warmup`, used by the gen templates).
 *
 * Step k is 0-based and is the optimizer step about to be taken, as in HF: the very first update uses lr·0/warmup = 0.
 */
export type Decay = 'cosine' | 'linear';

export interface ScheduleConfig {
  lr: number;
  totalSteps: number;
  /** Fraction of totalSteps spent warming up; tinylang: 0.1 → int(0.1·total), e.g. 5001 of 50,016. */
  warmupFraction: number;
  decay: Decay;
}

export function warmupSteps(c: ScheduleConfig): number {
  return Math.floor(c.warmupFraction * c.totalSteps);
}

/** Multiplier in [0, 1] applied to the peak lr at step k. */
export function lrFactor(c: ScheduleConfig, k: number): number {
  const w = warmupSteps(c);
  if (k < w) return k / Math.max(1, w);
  const progress = (k - w) / Math.max(1, c.totalSteps - w);
  if (c.decay === 'linear') return Math.max(0, (c.totalSteps - k) / Math.max(1, c.totalSteps - w));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export function lrAt(c: ScheduleConfig, k: number): number {
  return c.lr * lrFactor(c, k);
}
