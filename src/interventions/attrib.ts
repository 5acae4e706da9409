/**
 * @module attrib — the restoration metric of paper-setup.md §5.1:
 *
 *   Attrib(site, layer, position) = (mean p_restored − mean p_corr) / (mean p_orig − mean p_corr)
 *
 * with the means over examples taken before the ratio (tinylang's get_attrib_df). Checkpoints whose
 * mean p_orig − mean p_corr ≤ 0.01 are not analysed (the paper's filter): their rows carry attrib = null.
 * Also reported:
 *   logit_diff  mean over examples of (answer logit, patched) − (answer logit, corrupted);
 *   max_perc    share of examples for which this position restores p(answer) the most among all positions
 *               patched at the same (layer, site) (ties go to the earlier position).
 */
import type { SiteName } from '../models/sites.ts';
import type { PositionName } from '../train/split.ts';
import type { Corruption, SweepResult } from './sweep.ts';

export const FILTER_MIN_GAP = 0.01;

export interface AttribRow {
  layer: number;
  site: SiteName;
  position: PositionName;
  corruption: Corruption;
  attrib: number | null;
  p_orig: number;
  p_corr: number;
  p_restored: number;
  logit_diff: number;
  max_perc: number;
  n: number;
}

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return a.length ? s / a.length : 0;
};

export interface AttribTable {
  /** False when mean p_orig − mean p_corr ≤ FILTER_MIN_GAP: the checkpoint is skipped (and reported). */
  analysed: boolean;
  gap: number;
  rows: AttribRow[];
}

export function attribTable(r: SweepResult): AttribTable {
  const pOrig = mean(r.pOrig), pCorr = mean(r.pCorr);
  const gap = pOrig - pCorr;
  const analysed = gap > FILTER_MIN_GAP;
  // max_perc: per (layer, site), which position restores most for each example.
  const groups = new Map<string, SweepResult['patches']>();
  for (const p of r.patches) {
    const k = `${p.layer}:${p.site}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  const wins = new Map<SweepResult['patches'][number], number>();
  for (const g of groups.values()) {
    for (const p of g) wins.set(p, 0);
    for (let i = 0; i < r.n; i++) {
      let best = g[0]!;
      for (const p of g) if (p.pRestored[i]! > best.pRestored[i]!) best = p;
      wins.set(best, wins.get(best)! + 1);
    }
  }
  const rows = r.patches.map((p): AttribRow => {
    const pRest = mean(p.pRestored);
    let ld = 0;
    for (let i = 0; i < r.n; i++) ld += p.logitRestored[i]! - r.logitCorr[i]!;
    return {
      layer: p.layer, site: p.site, position: p.position, corruption: r.corruption,
      attrib: analysed ? (pRest - pCorr) / gap : null,
      p_orig: pOrig, p_corr: pCorr, p_restored: pRest,
      logit_diff: r.n ? ld / r.n : 0,
      max_perc: r.n ? wins.get(p)! / r.n : 0,
      n: r.n,
    };
  });
  rows.sort((a, b) => a.layer - b.layer || a.site.localeCompare(b.site) || a.position.localeCompare(b.position));
  return { analysed, gap, rows };
}
