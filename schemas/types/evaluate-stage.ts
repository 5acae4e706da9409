/* Generated from schemas/evaluate-stage.schema.json by `npm run gen:types`. Do not edit by hand. */

/**
 * Params of an evaluate stage: which split of the `data` input to score the `model` input on.
 */
export interface EvaluateStageParams {
  /**
   * The split to evaluate (the paper: test; gen for the generalisation split).
   */
  split: 'dev' | 'test' | 'gen';
  /**
   * Evaluate only the first N examples; null = all.
   */
  limit?: number | null;
}
