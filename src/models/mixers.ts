/**
 * @module mixers — the registry `mixer kind → MixerFactory`, and which block each mixer sits in.
 * Mamba sits in a MambaBlock (RMSNorm, no MLP); every other mixer in a TransformerBlock with the MLP
 * (state-dict.md §4: tinylang gives every `mixer_type` starting with `mamba` a MambaBlock).
 */
import type { MixerKind } from './config.ts';
import type { MixerFactory } from './mixer.ts';
import { attention } from './attention.ts';
import { baseConv } from './base_conv.ts';
import { based } from './based.ts';
import { deltaNet } from './delta_net.ts';
import { h3 } from './h3.ts';
import { mamba } from './mamba.ts';
import { hyena } from './hyena.ts';

export const MIXER_KINDS: readonly MixerKind[] = ['attention', 'base_conv', 'based', 'mamba', 'delta_net', 'h3', 'hyena'];

const REGISTRY: Partial<Record<MixerKind, MixerFactory>> = {
  attention,
  base_conv: baseConv,
  based,
  mamba,
  delta_net: deltaNet,
  h3,
  hyena,
};

/** The mixers that can be built now, in MIXER_KINDS order. */
export function registeredMixers(): MixerKind[] {
  return MIXER_KINDS.filter((k) => REGISTRY[k] !== undefined);
}

export function mixerFactory(kind: MixerKind): MixerFactory {
  const f = REGISTRY[kind];
  if (!f) {
    if (!MIXER_KINDS.includes(kind)) throw new Error(`unknown mixer '${kind}'; known mixers: ${MIXER_KINDS.join(', ')}`);
    throw new Error(`mixer '${kind}' is not implemented yet (implemented: ${registeredMixers().join(', ')})`);
  }
  return f;
}

export type BlockKind = 'transformer' | 'mamba';
export function blockKind(kind: MixerKind): BlockKind {
  return kind === 'mamba' ? 'mamba' : 'transformer';
}
