/**
 * @module checkpoint — `model.safetensors` in PyTorch's state-dict naming (state-dict.md §2–§6, issue 4).
 *
 * The file holds exactly the keys, shapes and layouts of the tinylang model's `state_dict()`, so
 * `model.load_state_dict(safetensors.torch.load_file(path), strict=True)` works on the PyTorch module tree:
 *  - every parameter under its state-dict name (Linear [out, in], depthwise Conv1d [C, 1, K], …: the shapes the
 *    mixers create, which are PyTorch's);
 *  - aliases written as copies (safetensors cannot share storage): `lm_head.weight` = the tied embedding
 *    (state-dict.md §4: a strict load fails without it), and Hyena's `implicit_filter.{3,5}.freq` = `.1.freq`
 *    (one `Sin` module at three positions, §5.5) when the mixer holds that tensor once;
 *  - `__metadata__.config` = the resolved ModelConfig as JSON (with `d_conv` null where the mixer has none), and
 *    `format: "pt"`, the tag Hugging Face's loaders expect.
 * Loading is strict like PyTorch's: a missing key, an unexpected key or a wrong shape is an error naming the key.
 * Where several keys alias one tensor, the one PyTorch copies last wins (`lm_head.weight`, `.5.freq`), as in
 * `load_state_dict` (state-dict.md §8.1, §8.6).
 */
import { tf } from './tf.ts';
import { resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from './config.ts';
import { LanguageModel } from './lm.ts';
import { f32, readSafetensors, writeSafetensors, type Decoded, type Tensor as StTensor } from '../io/safetensors.ts';

export const CHECKPOINT_FILE = 'model.safetensors';

export interface StateDictEntry {
  /** The state-dict key. */
  name: string;
  shape: number[];
  /** The ParamStore name holding the values (differs from `name` for aliases). */
  source: string;
}

const EMBEDDING = 'backbone.embeddings.word_embeddings.weight';
const FREQ = /^(.*\.filter_fn\.implicit_filter)\.1\.freq$/;

/**
 * The model's state-dict keys in PyTorch order: the ParamStore's creation order (which follows the module tree),
 * with each alias inserted where PyTorch lists it.
 */
export function stateDictEntries(lm: LanguageModel): StateDictEntry[] {
  const vars = lm.params.vars;
  const out: StateDictEntry[] = [];
  const pending = new Map<string, StateDictEntry>(); // alias entries keyed by the key they follow
  for (const [name, v] of vars) {
    const m = FREQ.exec(name);
    if (m && !vars.has(`${m[1]}.3.freq`)) {
      // Sin is reused at implicit_filter.1, .3 and .5: PyTorch lists .3.freq after .2.bias and .5.freq after .4.bias.
      pending.set(`${m[1]}.2.bias`, { name: `${m[1]}.3.freq`, shape: v.shape, source: name });
      pending.set(`${m[1]}.4.bias`, { name: `${m[1]}.5.freq`, shape: v.shape, source: name });
    }
  }
  for (const [name, v] of vars) {
    out.push({ name, shape: v.shape, source: name });
    const alias = pending.get(name);
    if (alias) out.push(alias);
  }
  if (out.length !== vars.size + pending.size) throw new Error('stateDictEntries: a Hyena freq alias has no anchor key');
  const emb = vars.get(EMBEDDING);
  if (!emb) throw new Error(`stateDictEntries: the model has no '${EMBEDDING}'`);
  out.push({ name: 'lm_head.weight', shape: emb.shape, source: EMBEDDING }); // last: lm_head is registered after backbone
  return out;
}

/** The state dict as safetensors tensors (F32), aliases as copies. */
export function stateDict(lm: LanguageModel): Record<string, StTensor> {
  const out: Record<string, StTensor> = {};
  const cache = new Map<string, Float32Array>();
  for (const e of stateDictEntries(lm)) {
    let data = cache.get(e.source);
    if (!data) {
      data = lm.params.get(e.source).dataSync() as Float32Array;
      cache.set(e.source, data);
    }
    out[e.name] = f32(e.shape, data.slice());
  }
  return out;
}

/** The config as it is written into `__metadata__.config`. */
export function checkpointConfig(cfg: ResolvedModelConfig): string {
  return JSON.stringify(cfg);
}

export function saveCheckpoint(lm: LanguageModel, path: string): void {
  writeSafetensors(path, stateDict(lm), { config: checkpointConfig(lm.cfg), format: 'pt' });
}

/** Parse and resolve `__metadata__.config`. */
export function configFromMetadata(meta: Record<string, string>, source: string): ResolvedModelConfig {
  const raw = meta.config;
  if (raw === undefined) throw new Error(`${source}: no __metadata__.config; not a mecheval model checkpoint`);
  let parsed: ModelConfig;
  try {
    parsed = JSON.parse(raw) as ModelConfig;
  } catch (e) {
    throw new Error(`${source}: __metadata__.config is not valid JSON (${(e as Error).message})`);
  }
  for (const k of ['mixer', 'd_model', 'n_layers', 'vocab_size'] as const) {
    if (parsed[k] === undefined) throw new Error(`${source}: __metadata__.config lacks '${k}'`);
  }
  return resolveModelConfig(parsed);
}

export function readCheckpointConfig(path: string): ResolvedModelConfig {
  return configFromMetadata(readSafetensors(path).metadata, path);
}

/**
 * Copy a state dict into the model, strictly: every key of the model's state dict must be present with its shape and
 * dtype F32, and no other key may be present. All problems are checked before any value is assigned.
 */
export function loadStateDict(lm: LanguageModel, tensors: Record<string, StTensor>, source = '<state dict>'): void {
  const entries = stateDictEntries(lm);
  const expected = new Set(entries.map((e) => e.name));
  const missing = entries.filter((e) => !(e.name in tensors)).map((e) => e.name);
  const unexpected = Object.keys(tensors).filter((k) => !expected.has(k));
  const problems: string[] = [];
  if (missing.length) problems.push(`missing key(s): ${missing.map((k) => `'${k}'`).join(', ')}`);
  if (unexpected.length) problems.push(`unexpected key(s): ${unexpected.map((k) => `'${k}'`).join(', ')}`);
  for (const e of entries) {
    const t = tensors[e.name];
    if (!t) continue;
    if (t.dtype !== 'F32') problems.push(`'${e.name}' has dtype ${t.dtype}, expected F32`);
    if (t.shape.length !== e.shape.length || t.shape.some((s, i) => s !== e.shape[i])) {
      problems.push(`size mismatch for '${e.name}': the checkpoint has [${t.shape}], the model (${lm.cfg.mixer}, d=${lm.cfg.d_model}) has [${e.shape}]`);
    }
  }
  if (problems.length) throw new Error(`${source}: cannot load into the ${lm.cfg.mixer} model: ${problems.join('; ')}`);
  // Later keys win, as in PyTorch's load_state_dict (aliases come after their source in `entries`).
  const values = new Map<string, StTensor>();
  for (const e of entries) values.set(e.source, tensors[e.name]!);
  for (const [name, t] of values) {
    const v = lm.params.get(name);
    tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, v.shape, 'float32')));
  }
}

/** Build the model its metadata describes and load its weights. */
export function loadCheckpoint(path: string): LanguageModel {
  const decoded: Decoded = readSafetensors(path);
  const lm = new LanguageModel(configFromMetadata(decoded.metadata, path));
  try {
    loadStateDict(lm, decoded.tensors, path);
  } catch (e) {
    lm.dispose();
    throw e;
  }
  return lm;
}
