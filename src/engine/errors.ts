/**
 * @module errors — every engine error a user can see, as data first and text second.
 *
 * Modelled on Shake's one-constructor-per-error module and zod's issue objects: an error is a
 * `code`, aligned `fields` and one `hint` sentence. `formatError` renders it; `exitCodeOf` maps it
 * to the CLI contract (2 = the user's declaration or command line is wrong, 1 = a stage or the
 * engine failed).
 */

export type ErrorCode =
  | 'usage' //               bad command line
  | 'pipeline_load' //       the pipeline module could not be loaded
  | 'stage_invalid' //       a stage declaration is malformed
  | 'params_invalid' //      params do not satisfy the stage's JSON Schema
  | 'duplicate_stage'
  | 'unknown_stage' //       an input or target names no stage
  | 'cycle'
  | 'resources' //           a stage asks for more than the run allows
  | 'env_probe' //           an environment fact could not be computed
  | 'stage_failed' //        the body threw / exited non-zero / was killed
  | 'cancelled' //           SIGINT, first failure elsewhere, or a watch restart
  | 'output_missing' //      the body succeeded but a declared output is absent
  | 'lock_busy' //           another writer holds the store
  | 'corrupt_object' //      a store object does not match its digest
  | 'lockfile_invalid'
  | 'internal';

/** Codes caused by the user's declaration or command line: exit status 2. */
const USER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'usage',
  'pipeline_load',
  'stage_invalid',
  'params_invalid',
  'duplicate_stage',
  'unknown_stage',
  'cycle',
  'resources',
  'lockfile_invalid',
]);

export interface ErrorData {
  code: ErrorCode;
  /** One-line headline. */
  message: string;
  /** Aligned `Name: value` lines, in insertion order. */
  fields?: Record<string, string>;
  /** One sentence saying what to do. */
  hint?: string;
}

export class EngineError extends Error {
  readonly code: ErrorCode;
  readonly fields: Record<string, string>;
  readonly hint: string | undefined;
  constructor(data: ErrorData, options?: { cause?: unknown }) {
    super(data.message, options);
    this.name = 'EngineError';
    this.code = data.code;
    this.fields = data.fields ?? {};
    this.hint = data.hint;
  }
  get exitCode(): 1 | 2 {
    return USER_CODES.has(this.code) ? 2 : 1;
  }
  toJSON(): ErrorData {
    return { code: this.code, message: this.message, fields: this.fields, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** Duck-typed: a pipeline loaded afresh (watch mode, tests) may carry its own copy of this module. */
export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError || (e instanceof Error && e.name === 'EngineError' && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { fields?: unknown }).fields === 'object');
}

export function exitCodeOf(e: unknown): 1 | 2 {
  return isEngineError(e) ? e.exitCode : 1;
}

/** Headline, aligned fields, hint. Non-engine errors print their stack (an engine fault). */
export function formatError(e: unknown): string {
  if (!isEngineError(e)) {
    const err = e instanceof Error ? e : new Error(String(e));
    return `error: internal: ${err.stack ?? err.message}`;
  }
  const lines = [`error: ${e.message}`];
  const names = Object.keys(e.fields);
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const n of names) {
    const value = e.fields[n] ?? '';
    const [first, ...rest] = value.split('\n');
    lines.push(`  ${(n + ':').padEnd(width + 1)} ${first}`);
    for (const r of rest) lines.push(`  ${' '.repeat(width + 1)} ${r}`);
  }
  if (e.hint) lines.push(`  hint: ${e.hint}`);
  return lines.join('\n');
}

/** Keep the last `max` lines of a log, preferring to show lines that look like errors. */
export function tailLines(text: string, max = 20): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  if (lines.length <= max) return lines.join('\n');
  return ['…', ...lines.slice(-max)].join('\n');
}
