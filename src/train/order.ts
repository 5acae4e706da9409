/**
 * @module order — the seeded per-epoch permutation used when `order: shuffle` (the paper's default is a fixed order).
 * pure-rand's xoroshiro128+ is seeded from (seed, epoch), so epoch e's order does not depend on earlier epochs.
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';

export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const rng = xoroshiro128plus((seed * 1000003 + epoch) | 0);
  const out = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = out[i]!; out[i] = out[j]!; out[j] = t;
  }
  return out;
}
