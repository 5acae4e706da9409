/**
 * @module mechanism — reading a mechanism off the Attrib table (paper-setup.md §5.2).
 *
 * The probe f is the residual stream entering the last layer (`block_input` of layer n_layers−1; for the paper's
 * 2-layer models, the layer-1 block input = the stream after layer 0). Restoring the clean key there at …
 *   value position → induction: layer 0 copied key information to the value; the last layer matches the query
 *                    against it (Attention, Based);
 *   query position → direct retrieval by the earlier layer(s): the answer is already in the query's state (SSMs);
 *   key position   → delayed direct retrieval: key information stays at the key and the last mixer reads it.
 * The rule, written out: a position "restores" when its Attrib ≥ RESTORES (0.5). Exactly one restoring position
 * among {value, query, key} gives that call; more than one gives `mixed`; none gives `none`.
 * Mixer internals (Mamba, v3): when the layer-0 `conv_output` patched at the next key (value + 1) restores
 * (Attrib ≥ RESTORES), the short convolution carries the key→value association forward: `conv_next_key`,
 * reported beside the residual-stream call rather than instead of it.
 * Checkpoints that fail the paper's filter (mean p_orig − mean p_corr ≤ 0.01) get `not_analysed`.
 */
import type { AttribRow, AttribTable } from './attrib.ts';
import type { PositionName } from '../train/split.ts';

export const RESTORES = 0.5;

export type MechanismCall = 'induction' | 'direct_retrieval' | 'delayed_retrieval' | 'mixed' | 'none' | 'not_analysed';

export interface MechanismReport {
  call: MechanismCall;
  /** Mixer-internal evidence beside the call (Mamba's conv at the next key). */
  internal: 'conv_next_key' | null;
  probe: { layer: number; site: 'block_input' };
  /** The Attrib values the call was made from (null where not measured). */
  evidence: {
    value: number | null; query: number | null; key: number | null;
    conv_output_next_key: number | null;
    gap: number;
  };
  rule: string;
}

const CALL_OF: Partial<Record<PositionName, MechanismCall>> = { value: 'induction', query: 'direct_retrieval', key: 'delayed_retrieval' };

function attribAt(rows: AttribRow[], layer: number, site: string, position: PositionName): number | null {
  return rows.find((r) => r.layer === layer && r.site === site && r.position === position)?.attrib ?? null;
}

export function callMechanism(t: AttribTable, nLayers: number): MechanismReport {
  const layer = Math.max(0, nLayers - 1);
  const value = attribAt(t.rows, layer, 'block_input', 'value');
  const query = attribAt(t.rows, layer, 'block_input', 'query');
  const key = attribAt(t.rows, layer, 'block_input', 'key');
  const convNext = attribAt(t.rows, 0, 'conv_output', 'next_key');
  const rule = `probe = block_input of layer ${layer}; a position restores when Attrib ≥ ${RESTORES}; ` +
    `value → induction, query → direct retrieval, key → delayed retrieval; several → mixed; none → none; ` +
    `layer-0 conv_output at next_key ≥ ${RESTORES} → conv_next_key`;
  const base = { probe: { layer, site: 'block_input' as const }, evidence: { value, query, key, conv_output_next_key: convNext, gap: t.gap }, rule };
  if (!t.analysed) return { call: 'not_analysed', internal: null, ...base };
  const restoring = (['value', 'query', 'key'] as const).filter((p) => ({ value, query, key })[p] !== null && ({ value, query, key })[p]! >= RESTORES);
  const call: MechanismCall = restoring.length === 0 ? 'none' : restoring.length > 1 ? 'mixed' : CALL_OF[restoring[0]!]!;
  return { call, internal: convNext !== null && convNext >= RESTORES ? 'conv_next_key' : null, ...base };
}
