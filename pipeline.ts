/**
 * The project pipeline. For now the word-count example (examples/wordcount); the study's DAG
 * (dataset → train → evaluate → intervene → report) replaces it in later issues.
 */
export { default } from './examples/wordcount/pipeline.ts';
