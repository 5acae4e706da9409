/**
 * @module stages/intervene — interchange interventions on the `model` input (paper-setup.md §5): attrib.json (one
 * row per layer × site × position × corruption), attrib_examples.safetensors (the per-example values) and
 * mechanism.json (the §5.2 call with the numbers behind it).
 */
import { join } from 'node:path';
import type { StageContext } from '../src/engine/index.ts';
import type { InterveneStageParams } from '../schemas/types/intervene-stage.ts';
import { loadCheckpoint, CHECKPOINT_FILE } from '../src/models/index.ts';
import { loadSplit, type PositionName } from '../src/train/split.ts';
import { sweep, type Corruption } from '../src/interventions/sweep.ts';
import { attribTable, FILTER_MIN_GAP, type AttribRow } from '../src/interventions/attrib.ts';
import { callMechanism, type MechanismReport } from '../src/interventions/mechanism.ts';
import { writeSafetensors, f32, type Tensor } from '../src/io/safetensors.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { startBackend } from './common.ts';

export async function run(ctx: StageContext<InterveneStageParams>): Promise<void> {
  await startBackend(ctx);
  const model = loadCheckpoint(join(ctx.inputs.model!, CHECKPOINT_FILE));
  const split = loadSplit(ctx.inputs.data!, ctx.params.split);
  const corruptions = (ctx.params.corruptions ?? ['key']) as Corruption[];
  const positions = ctx.params.positions as PositionName[] | undefined;
  const rows: AttribRow[] = [];
  const examples: Record<string, Tensor> = {};
  const mechanisms: Record<string, MechanismReport & { analysed: boolean }> = {};
  for (const [ci, corruption] of corruptions.entries()) {
    const r = sweep(model, split, {
      corruption, limit: ctx.params.n ?? 320, positions,
      progress: (d, t) => ctx.progress(ci * t + d, corruptions.length * t, `${corruption} corruption`),
    });
    const t = attribTable(r);
    rows.push(...t.rows);
    if (!t.analysed) ctx.log(`${corruption} corruption: mean p_orig − mean p_corr = ${t.gap.toFixed(4)} ≤ ${FILTER_MIN_GAP}: not analysed (paper's filter)`);
    mechanisms[corruption] = { ...callMechanism(t, model.cfg.n_layers), analysed: t.analysed };
    examples[`${corruption}/p_orig`] = f32([r.n], r.pOrig);
    examples[`${corruption}/p_corr`] = f32([r.n], r.pCorr);
    for (const p of r.patches) examples[`${corruption}/${p.layer}/${p.site}/${p.position}/p_restored`] = f32([r.n], p.pRestored);
  }
  writeFileAtomic(join(ctx.outDir, 'attrib.json'), JSON.stringify(rows, null, 1) + '\n');
  writeSafetensors(join(ctx.outDir, 'attrib_examples.safetensors'), examples);
  writeFileAtomic(join(ctx.outDir, 'mechanism.json'), JSON.stringify(mechanisms, null, 2) + '\n');
  const key = mechanisms.key ?? Object.values(mechanisms)[0]!;
  ctx.log(`mechanism: ${key.call}${key.internal ? ` + ${key.internal}` : ''}`);
}
