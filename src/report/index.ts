/** @module report — the study report: results contract, findings F1–F9, figures, markdown and HTML renderers. */
export type { BestRow, RunResult, StageRef, StudyResults } from './results.ts';
export * from './paper.ts';
export * from './select.ts';
export * from './findings.ts';
export * from './figures.ts';
export * from './document.ts';
export { renderMarkdown, markdownTable, provenanceLine } from './markdown.ts';
export { renderHtml, tableHtml, provenanceHtml, esc } from './html.ts';
