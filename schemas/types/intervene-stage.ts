/* Generated from schemas/intervene-stage.schema.json by `npm run gen:types`. Do not edit by hand. */

/**
 * Params of an intervene stage: interchange interventions on the `model` input over a split of the `data` input (paper-setup.md §5).
 */
export interface InterveneStageParams {
  /**
   * Examples to intervene on (the paper: the test split).
   */
  split: 'dev' | 'test' | 'gen';
  /**
   * Number of examples (the paper: 320).
   */
  n?: number;
  /**
   * Which token is corrupted in the base run (the paper reports key corruption).
   *
   * @minItems 1
   */
  corruptions?: ['key' | 'value', ...('key' | 'value')[]];
  /**
   * @minItems 1
   */
  positions?: [
    'key' | 'value' | 'next_key' | 'divider' | 'query' | 'answer',
    ...('key' | 'value' | 'next_key' | 'divider' | 'query' | 'answer')[]
  ];
}
