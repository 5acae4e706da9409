/**
 * @module markdown — report.md for terminals and CI logs: the same document as index.html (document.ts), with tables
 * as GitHub-flavoured markdown, figures as a pointer to index.html (or the line saying why one is omitted), and a
 * provenance line (stage ids + short keys) under every table and figure.
 */
import { buildReport, findingStages, type Block, type TableBlock } from './document.ts';
import type { FigureSpec } from './figures.ts';
import type { StageRef, StudyResults } from './results.ts';
import { shortKey } from './select.ts';

const cell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

export function provenanceLine(stages: readonly StageRef[], source?: string): string {
  if (source) return `Source: ${source}`;
  if (!stages.length) return 'Provenance: none (no stages).';
  return `Provenance: ${stages.map((s) => `\`${s.id}\` \`${shortKey(s.key)}\``).join(', ')}`;
}

export function markdownTable(t: TableBlock): string {
  const head = `| ${t.columns.map(cell).join(' | ')} |`;
  const rule = `|${t.numeric.map((n) => (n ? '---:' : '---')).join('|')}|`;
  const body = t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`);
  return [`**${t.caption}**`, '', head, rule, ...body, '', provenanceLine(t.stages, t.source)].join('\n');
}

function figure(f: FigureSpec): string {
  if (!f.spec) return `*Figure omitted: ${f.title}: ${f.omitted}.*`;
  return [`*Figure (in index.html, \`#${f.id}\`): ${f.title}.* ${f.caption}`, '', provenanceLine(f.stages)].join('\n');
}

function block(b: Block): string {
  switch (b.kind) {
    case 'table': return markdownTable(b);
    case 'figure': return figure(b.figure);
    case 'text': return b.text;
  }
}

export function renderMarkdown(results: StudyResults): string {
  const doc = buildReport(results);
  const out: string[] = [`# ${doc.title}`, ''];
  if (doc.description) out.push(doc.description, '');
  out.push('| | |', '|---|---|', ...doc.facts.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`), '');
  out.push('## Findings (paper-setup.md §10.4)', '');
  for (const f of doc.findings) {
    out.push(`- **${f.id} ${f.status}**: ${f.title}. ${f.evidence}`);
    out.push(`  - rule: ${f.rule}`);
    out.push(`  - paper: ${f.paper}`);
    const st = findingStages(results, f);
    if (st.length) out.push(`  - ${provenanceLine(st)}`);
  }
  out.push('');
  for (const s of doc.sections) {
    out.push(`## ${s.title}`, '');
    if (s.paper) out.push(`> Paper: ${s.paper}`, '');
    for (const b of s.blocks) out.push(block(b), '');
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
