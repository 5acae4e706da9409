/** @module models — the public model API (re-exports only). */
export { initBackend, describeBackend, type BackendChoice, type BackendInfo, type BackendName } from './tf.ts';
export { resolveModelConfig, type ModelConfig, type MixerKind, type ResolvedModelConfig } from './config.ts';
export { LanguageModel, createLanguageModel, type ForwardArgs } from './lm.ts';
export { MIXER_KINDS, registeredMixers, mixerFactory, blockKind, type BlockKind } from './mixers.ts';
export { BLOCK_SITES, MIXER_SITES, type BlockSite, type MixerSite, type SiteName, type Hooks, type Patch } from './sites.ts';
export {
  CHECKPOINT_FILE, saveCheckpoint, loadCheckpoint, loadStateDict, readCheckpointConfig, stateDict, stateDictEntries,
  type StateDictEntry,
} from './checkpoint.ts';
export { modelCounts, blockCounts, mixerCounts, BUFFER_KEY, type Counts } from './count.ts';
export type { Mixer, MixerFactory } from './mixer.ts';
