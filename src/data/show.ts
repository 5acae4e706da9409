/**
 * @module show — a readable view of a built dataset: `npm run pipeline -- show dataset/<id> --n 3`.
 * Each document is decoded with its marked positions written after the token, e.g. `k1«key»`, and the two
 * counterfactual substitutions on the lines below.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, type Tensor } from '../io/safetensors.ts';
import { POSITIONS } from './examples.ts';
import { SPLITS, type SplitName } from './params.ts';

export interface ShowOptions {
  splits?: SplitName[]; // default: every split present
}

/** The first `n` documents of each split in `dir` (a dataset built by buildDataset), decoded. */
export function showDataset(dir: string, n: number, opts: ShowOptions = {}): string {
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) throw new Error(`show: ${dir} has no meta.json; is it a dataset directory?`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
    task: 'ar' | 'atr'; width: number; vocab: { size: number; names: string[] }; config: { task: Record<string, unknown> };
    splits: Record<string, unknown>;
  };
  const names = meta.vocab.names;
  const name = (id: number): string => names[id] ?? `?${id}`;
  const cfg = Object.entries(meta.config.task).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [`${meta.task.toUpperCase()} dataset  ${cfg}  (vocab ${meta.vocab.size}, width ${meta.width})`];

  // the splits meta.json lists, not whatever files lie in the directory
  const present = SPLITS.filter((s) => s in meta.splits);
  for (const split of opts.splits ?? present) {
    if (!present.includes(split)) throw new Error(`show: ${dir} has no split "${split}" (it has ${present.join(', ')})`);
    const file = join(dir, `${split}.safetensors`);
    const t = readSafetensors(file).tensors;
    const N = t.lengths!.shape[0]!;
    const W = t.tokens!.shape[1]!;
    lines.push('', `${split}: ${N} documents`);
    for (let i = 0; i < Math.min(n, N); i++) {
      const len = at(t.lengths!, i);
      const marks = new Map<number, string[]>();
      for (const p of POSITIONS) {
        const pos = at(t[`pos_${p}`]!, i);
        marks.set(pos, [...(marks.get(pos) ?? []), p]);
      }
      const toks: string[] = [];
      for (let j = 0; j < len; j++) {
        const m = marks.get(j);
        toks.push(name(at(t.tokens!, i * W + j)) + (m ? `«${m.join(',')}»` : ''));
      }
      const k = at(t.pos_key!, i);
      const v = at(t.pos_value!, i);
      lines.push(
        `#${i}  ${len} tokens, answer ${name(at(t.answers!, i))}`,
        `  ${toks.join(' ')}`,
        `  key corrupted:   pos ${k}  ${name(at(t.tokens!, i * W + k))} → ${name(at(t.tokens_key_corrupted!, i * W + k))}`,
        `  value corrupted: pos ${v}  ${name(at(t.tokens!, i * W + v))} → ${name(at(t.tokens_value_corrupted!, i * W + v))}`,
      );
    }
  }
  return lines.join('\n');
}

function at(t: Tensor, i: number): number {
  return Number(t.data[i]);
}
