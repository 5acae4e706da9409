/**
 * @module sweep — interchange interventions in the restoring direction (paper-setup.md §5.1, architectures.md §9.2):
 * base = the corrupted input, source = the clean input; at one (layer, site, position) the base run's activation is
 * overwritten with the source run's, the pass runs to the end, and p(answer) is read at the query position.
 *
 * Batching: for one (layer, site) every position name is patched in the same forward pass, by stacking P copies
 * of the base batch and patching copy k at position k only. Rows never interact, so this gives the same numbers as
 * P separate passes (tested) for P times fewer, larger ops.
 */
import { tf, type Tensor3D } from '../models/tf.ts';
import type { Hooks, Patch, SiteName } from '../models/sites.ts';
import type { TrainableLM } from '../train/loop.ts';
import { batchTokens, gatherInt, POSITION_NAMES, type PositionName, type Split } from '../train/split.ts';

export type Corruption = 'key' | 'value';

export interface SweepOptions {
  corruption?: Corruption;
  /** Examples from the start of the split (the paper: 320 test examples). */
  limit?: number;
  /** Examples per forward pass before replication over positions. */
  chunk?: number;
  positions?: readonly PositionName[];
  /** Restrict to these (layer, site) pairs; default: every site the model passes through. */
  sites?: readonly { layer: number; site: SiteName }[];
  progress?: (done: number, total: number) => void;
}

/** Per-example results of one (layer, site, position) patch. */
export interface PatchResult {
  layer: number;
  site: SiteName;
  position: PositionName;
  pRestored: Float32Array;     // (n)
  logitRestored: Float32Array; // (n)
}

export interface SweepResult {
  corruption: Corruption;
  n: number;
  pOrig: Float32Array;
  pCorr: Float32Array;
  logitOrig: Float32Array;
  logitCorr: Float32Array;
  patches: PatchResult[];
}

interface Readout { p: Float32Array; logit: Float32Array }

/** A model that can resume a forward pass from the residual stream entering a block (src/models/lm.ts). */
export interface ResumableLM extends TrainableLM {
  forwardFrom(layer: number, residual: Tensor3D, hooks?: Hooks): Tensor3D;
}

const resumable = (m: TrainableLM): m is ResumableLM => typeof (m as Partial<ResumableLM>).forwardFrom === 'function';

/** Where a patched pass starts: from the tokens, or from a stored residual stream entering block `layer`. */
type Start = { ids: Int32Array; time: number } | { layer: number; residual: Tensor3D };

/** p(answer) and the answer's logit at each row's query position. */
function readout(model: TrainableLM, start: Start, batch: number, query: Int32Array, answers: Int32Array, hooks?: Hooks): Readout {
  const [p, l] = tf.tidy(() => {
    const hidden = 'ids' in start ? model.forward({ ids: start.ids, batch, time: start.time, hooks })
      : (model as ResumableLM).forwardFrom(start.layer, start.residual, hooks);
    const logits = model.logitsAt(hidden, Int32Array.from({ length: batch }, (_, i) => i), query);
    const onehot = tf.oneHot(tf.tensor1d(answers, 'int32'), logits.shape[1]).toFloat();
    return [tf.sum(tf.mul(tf.softmax(logits), onehot), 1), tf.sum(tf.mul(logits, onehot), 1)];
  });
  const out = { p: p!.dataSync() as Float32Array, logit: l!.dataSync() as Float32Array };
  p!.dispose(); l!.dispose();
  return out;
}

const siteKey = (layer: number, site: SiteName) => `${layer}:${site}`;

export function sweep(model: TrainableLM, s: Split, opts: SweepOptions = {}): SweepResult {
  const corruption = opts.corruption ?? 'key';
  const n = Math.min(s.n, opts.limit ?? 320);
  const chunk = opts.chunk ?? 64;
  const positions = opts.positions ?? POSITION_NAMES;
  const P = positions.length;
  const corrupted = corruption === 'key' ? s.tokensKeyCorrupted : s.tokensValueCorrupted;
  const res: SweepResult = {
    corruption, n,
    pOrig: new Float32Array(n), pCorr: new Float32Array(n), logitOrig: new Float32Array(n), logitCorr: new Float32Array(n),
    patches: [],
  };
  const byKey = new Map<string, PatchResult[]>();
  let done = 0;
  for (let start = 0; start < n; start += chunk) {
    const rows = Int32Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
    const m = rows.length;
    const clean = batchTokens(s, s.tokens, rows);
    const base = batchTokens(s, corrupted, rows);
    const query = gatherInt(s.pos.query, rows);
    const answers = gatherInt(s.answers, rows);
    const pos = positions.map((name) => gatherInt(s.pos[name], rows));

    // Source run: record every site, keep the rows at the positions we patch: values[k] is (m, C).
    const recorded = new Map<string, { layer: number; site: SiteName; values: Float32Array[]; C: number }>();
    const wanted = opts.sites ? new Set(opts.sites.map((x) => siteKey(x.layer, x.site))) : null;
    const record = (layer: number, site: SiteName, x: Tensor3D) => {
      const key = siteKey(layer, site);
      if (wanted && !wanted.has(key)) return;
      if (recorded.has(key)) throw new Error(`site ${site} of layer ${layer} is visited twice in one forward pass`);
      const [, T, C] = x.shape;
      const all = x.dataSync() as Float32Array;
      const values = pos.map((pk) => {
        const v = new Float32Array(m * C);
        for (let i = 0; i < m; i++) v.set(all.subarray((i * T + pk[i]!) * C, (i * T + pk[i]! + 1) * C), i * C);
        return v;
      });
      recorded.set(key, { layer, site, values, C });
    };
    const orig = readout(model, { ids: clean.ids, time: clean.time }, clean.batch, query, answers, { record });
    // The corrupted run also keeps the residual stream entering each block: patched passes resume from there, since
    // the layers before a patch compute the same thing in every copy.
    const entering = new Map<number, Tensor3D>();
    const keepEntering = resumable(model) ? (layer: number, site: SiteName, x: Tensor3D) => { if (site === 'block_input') entering.set(layer, tf.keep(x.clone())); } : undefined;
    const corr = readout(model, { ids: base.ids, time: base.time }, base.batch, query, answers, keepEntering ? { record: keepEntering } : undefined);
    res.pOrig.set(orig.p, start); res.logitOrig.set(orig.logit, start);
    res.pCorr.set(corr.p, start); res.logitCorr.set(corr.logit, start);

    // Base runs: stacked copies of the corrupted batch, copy j patched at position live[j] only. A position after the
    // query in every row cannot change the query's logits (the models are causal, tested in tests/models): its
    // result is the corrupted run's, exactly, so it is filled in without a forward pass.
    const live = positions.map((_, k) => k).filter((k) => pos[k]!.some((p, i) => p <= query[i]!));
    const L = live.length;
    const ids = new Int32Array(L * base.ids.length);
    for (let j = 0; j < L; j++) ids.set(base.ids, j * base.ids.length);
    const startAt = (layer: number): Start => {
      const r = entering.get(layer);
      return r ? { layer, residual: tf.tidy(() => tf.tile(r, [L, 1, 1]) as Tensor3D) } : { ids, time: base.time };
    };
    const qRep = new Int32Array(L * m), aRep = new Int32Array(L * m), patchRows = new Int32Array(L * m), patchPos = new Int32Array(L * m);
    for (let j = 0; j < L; j++) for (let i = 0; i < m; i++) {
      qRep[j * m + i] = query[i]!; aRep[j * m + i] = answers[i]!;
      patchRows[j * m + i] = j * m + i; patchPos[j * m + i] = pos[live[j]!]![i]!;
    }
    for (const [key, rec] of recorded) {
      let list = byKey.get(key);
      if (!list) {
        list = positions.map((position) => ({ layer: rec.layer, site: rec.site, position, pRestored: new Float32Array(n), logitRestored: new Float32Array(n) }));
        byKey.set(key, list);
      }
      for (let k = 0; k < P; k++) {
        if (live.includes(k)) continue;
        list[k]!.pRestored.set(corr.p, start);
        list[k]!.logitRestored.set(corr.logit, start);
      }
      if (L === 0) continue;
      const flat = new Float32Array(L * m * rec.C);
      live.forEach((k, j) => flat.set(rec.values[k]!, j * m * rec.C));
      const values = tf.tensor2d(flat, [L * m, rec.C]);
      const patch: Patch = { layer: rec.layer, site: rec.site, rows: patchRows, positions: patchPos, values };
      const from = startAt(rec.layer);
      const out = readout(model, from, L * m, qRep, aRep, { patches: [patch] });
      if ('residual' in from) from.residual.dispose();
      values.dispose();
      live.forEach((k, j) => {
        list![k]!.pRestored.set(out.p.subarray(j * m, (j + 1) * m), start);
        list![k]!.logitRestored.set(out.logit.subarray(j * m, (j + 1) * m), start);
      });
    }
    for (const r of entering.values()) r.dispose();
    done += m;
    opts.progress?.(done, n);
  }
  for (const list of byKey.values()) res.patches.push(...list);
  return res;
}
