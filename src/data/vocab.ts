/**
 * @module vocab — token ids and names for AR and ATR (paper-setup.md §1.1 and §2.2).
 *
 *   AR:  PAD 0, BOS 1, EOS 2, keys k0… at 3 … 3+K−1, values v0… at 3+K … 3+K+V−1, then `unusedTokens` ids
 *        (the paper's vocab has one never-used id: 8196 = 3 + 4096 + 4096 + 1).
 *   ATR: PAD 0, BOS 1, EOS 2, terminals t0… at 3 … 3+|Σ|−1, then the query-type tokens qPARENT, qCHILD, qSIBLING
 *        (never used in PARENT-only documents, kept so the vocab size is the paper's |Σ| + 6).
 */

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const FIRST = 3; // first id after the three special tokens

export interface Vocab {
  size: number;
  names: string[]; // names[id]
}

export function arVocab(numKeys: number, numValues: number, unusedTokens: number): Vocab {
  const names = ['<pad>', '<bos>', '<eos>'];
  for (let k = 0; k < numKeys; k++) names.push(`k${k}`);
  for (let v = 0; v < numValues; v++) names.push(`v${v}`);
  for (let u = 0; u < unusedTokens; u++) names.push(`<unused${u}>`);
  return { size: names.length, names };
}

export const keyId = (k: number): number => FIRST + k;
export const valueId = (numKeys: number, v: number): number => FIRST + numKeys + v;

export function atrVocab(numTerminals: number): Vocab {
  const names = ['<pad>', '<bos>', '<eos>'];
  for (let t = 0; t < numTerminals; t++) names.push(`t${t}`);
  names.push('qPARENT', 'qCHILD', 'qSIBLING');
  return { size: names.length, names };
}

export const terminalId = (t: number): number => FIRST + t;

/** Token ids → space-separated names; unknown ids print as `?<id>` rather than throwing (show must never crash). */
export function decode(v: Vocab, ids: ArrayLike<number>): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) out.push(v.names[ids[i]!] ?? `?${ids[i]}`);
  return out;
}
