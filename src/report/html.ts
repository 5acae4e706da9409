/**
 * @module html — index.html: one self-contained page (inline CSS, inline SVG charts rendered in Node, no script, no
 * external URL) with the same document as report.md (document.ts). Every table and figure is followed by its
 * provenance: stage ids and short keys, the full key in a title attribute.
 */
import { buildReport, findingStages, type Block, type TableBlock } from './document.ts';
import { renderSvg, type FigureSpec } from './figures.ts';
import type { FindingStatus } from './findings.ts';
import type { StageRef, StudyResults } from './results.ts';
import { shortKey } from './select.ts';

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const CSS = `
:root { --fg: #1d2126; --muted: #5b6470; --line: #dde1e6; --bg-soft: #f6f7f9; --accent: #2f5d8a; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.4rem 0 .6rem; padding-top: .6rem; border-top: 1px solid var(--line); }
p { margin: .5rem 0; }
a { color: var(--accent); }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.lede { color: var(--muted); max-width: 80ch; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 1rem 0; padding: .8rem 1rem; background: var(--bg-soft); border-radius: 6px; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; }
nav.toc ol { columns: 2; margin: .4rem 0; padding-left: 1.4rem; }
blockquote.paper { margin: .6rem 0 1rem; padding: .5rem .9rem; border-left: 3px solid var(--accent); background: var(--bg-soft); color: #333; font-size: .93rem; }
.table-wrap { overflow-x: auto; margin: .4rem 0 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0 .4rem; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
th { background: var(--bg-soft); font-weight: 600; }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; min-width: 16ch; }
figure { margin: 1.2rem 0 .2rem; }
figure svg { max-width: 100%; height: auto; display: block; }
.fig-grid { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
.fig-grid figure { flex: 0 0 auto; max-width: 100%; }
figure > p.prov, figure > details.prov { margin-bottom: .4rem; }
figcaption { color: var(--muted); font-size: 13px; margin-top: .3rem; max-width: 90ch; }
p.omitted { font-style: italic; color: var(--muted); }
p.prov { font-size: 12px; color: var(--muted); margin: .3rem 0 1.2rem; line-height: 1.7; }
p.prov code { background: var(--bg-soft); padding: 0 3px; border-radius: 3px; font-size: 11.5px; }
p.prov code.key { color: var(--accent); }
details.prov { margin: .3rem 0 1.2rem; }
details.prov summary { font-size: 12px; color: var(--muted); cursor: pointer; }
details.prov p.prov { margin-top: .2rem; }
ul.findings { list-style: none; padding: 0; }
ul.findings > li { margin: .6rem 0; padding: .6rem .9rem; border: 1px solid var(--line); border-radius: 6px; }
ul.findings .meta { font-size: 13px; color: var(--muted); margin-top: .25rem; }
.badge { display: inline-block; min-width: 8.5em; text-align: center; padding: 1px 8px; margin-right: .5rem; border-radius: 10px; font-size: 12px; font-weight: 600; }
.checks { margin: .35rem 0 .2rem; padding-left: 0; list-style: none; font-size: 14px; }
.checks li { margin: .1rem 0; padding-left: 1.4em; text-indent: -1.4em; }
.checks li::before { display: inline-block; width: 1.4em; text-indent: 0; font-weight: 700; }
.checks li.c-ok::before { content: "✓"; color: #17602a; }
.checks li.c-fail::before { content: "✗"; color: #8a1f1f; }
.checks li.c-unknown::before { content: "?"; color: #7a5300; }
.s-reproduced { background: #dcf2e0; color: #17602a; }
.s-partly { background: #fdf0cf; color: #7a5300; }
.s-not-reproduced { background: #fadcdc; color: #8a1f1f; }
.s-not-run { background: #e9ebee; color: #4a525c; }
`;

export function provenanceHtml(stages: readonly StageRef[], source?: string): string {
  if (source) return `<p class="prov">Source: ${esc(source)}</p>`;
  if (!stages.length) return '<p class="prov">Provenance: none (no stages).</p>';
  const list = stages.map((s) => `<code>${esc(s.id)}</code> <code class="key" title="${esc(s.key)}">${esc(shortKey(s.key))}</code>`).join(', ');
  if (stages.length <= PROVENANCE_INLINE) return `<p class="prov">Provenance: ${list}</p>`;
  // Long lists fold (native <details>, no script): the summary counts the stages by kind.
  const kinds = new Map<string, number>();
  for (const s of stages) kinds.set(s.id.split('/')[0]!, (kinds.get(s.id.split('/')[0]!) ?? 0) + 1);
  const summary = `Provenance: ${stages.length} stages (${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')})`;
  return `<details class="prov"><summary>${esc(summary)}</summary><p class="prov">${list}</p></details>`;
}

/** Widest a compact figure is shown (two side by side in the 1072 px text column). */
export const COMPACT_MAX_PX = 520;

/** Provenance lists longer than this fold into a <details> element. */
export const PROVENANCE_INLINE = 12;

export function tableHtml(t: TableBlock): string {
  const wide = (c: string) => /learning rates|run$|^run|^stage$|^key$/.test(c);
  const cls = (i: number, c: string) => [t.numeric[i] ? 'num' : '', wide(c) && !t.numeric[i] && c.includes('learning') ? 'wrap' : ''].filter(Boolean).join(' ');
  const th = t.columns.map((c, i) => `<th${cls(i, c) ? ` class="${cls(i, c)}"` : ''}>${esc(c)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((v, i) => `<td${cls(i, t.columns[i]!) ? ` class="${cls(i, t.columns[i]!)}"` : ''}>${esc(v)}</td>`).join('')}</tr>`).join('\n');
  return `<div class="table-wrap"><table>\n<caption>${esc(t.caption)}</caption>\n<thead><tr>${th}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table></div>\n${provenanceHtml(t.stages, t.source)}`;
}

async function figureHtml(f: FigureSpec): Promise<string> {
  if (!f.spec) return `<p class="omitted" id="${esc(f.id)}">Figure omitted: ${esc(f.title)}: ${esc(f.omitted ?? '')}.</p>`;
  const svg = await renderSvg(f.spec, f.id);
  // A compact figure is as wide as its chart (at most COMPACT_MAX_PX, the SVG scales down), so that its caption
  // wraps under it and two fit side by side.
  const w = f.compact ? Number(svg.match(/^<svg[^>]*\swidth="(\d+(?:\.\d+)?)"/)?.[1] ?? NaN) : NaN;
  const style = Number.isFinite(w) ? ` style="width: ${Math.min(Math.round(w), COMPACT_MAX_PX)}px"` : '';
  return `<figure id="${esc(f.id)}"${f.compact ? ` class="compact"${style}` : ''}>\n${svg}\n<figcaption>${esc(f.caption)}</figcaption>\n${provenanceHtml(f.stages)}\n</figure>`;
}

async function blockHtml(b: Block): Promise<string> {
  switch (b.kind) {
    case 'table': return tableHtml(b);
    case 'figure': return figureHtml(b.figure);
    case 'text': return `<p>${esc(b.text)}</p>`;
  }
}

const statusClass = (s: FindingStatus) => `s-${s.replace(' ', '-')}`;

export async function renderHtml(results: StudyResults): Promise<string> {
  const doc = buildReport(results);
  const parts: string[] = [];
  parts.push(`<h1>${esc(doc.title)}</h1>`);
  if (doc.description) parts.push(`<p class="lede">${esc(doc.description)}</p>`);
  parts.push(`<dl class="facts">${doc.facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`);
  parts.push(`<nav class="toc"><strong>Contents</strong><ol><li><a href="#findings">Findings F1–F9</a></li>${doc.sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.title)}</a></li>`).join('')}</ol></nav>`);
  parts.push('<section id="findings"><h2>Findings (paper-setup.md §10.4)</h2><ul class="findings">');
  for (const f of doc.findings) {
    const st = findingStages(results, f);
    parts.push(`<li id="finding-${f.id}"><span class="badge ${statusClass(f.status)}">${esc(f.id)} · ${esc(f.status)}</span><strong>${esc(f.title)}</strong>` +
      (f.checks.length ? `<ul class="checks">${f.checks.map((c) => `<li class="${c.ok === null ? 'c-unknown' : c.ok ? 'c-ok' : 'c-fail'}">${esc(c.text)}</li>`).join('')}</ul>`
        : `<div>${esc(f.evidence)}</div>`) + `<div class="meta">Rule: ${esc(f.rule)}</div><div class="meta">Paper: ${esc(f.paper)}</div>` +
      `${st.length ? provenanceHtml(st) : ''}</li>`);
  }
  parts.push('</ul></section>');
  for (const s of doc.sections) {
    parts.push(`<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>`);
    if (s.paper) parts.push(`<blockquote class="paper">Paper: ${esc(s.paper)}</blockquote>`);
    // Consecutive compact figures (the per-architecture heatmaps) share a wrapping grid.
    let grid: string[] | null = null;
    for (const b of s.blocks) {
      const compact = b.kind === 'figure' && !!b.figure.spec && !!b.figure.compact;
      if (compact) (grid ??= []).push(await blockHtml(b));
      else {
        if (grid) { parts.push(`<div class="fig-grid">\n${grid.join('\n')}\n</div>`); grid = null; }
        parts.push(await blockHtml(b));
      }
    }
    if (grid) parts.push(`<div class="fig-grid">\n${grid.join('\n')}\n</div>`);
    parts.push('</section>');
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${parts.join('\n')}
</main>
</body>
</html>
`;
}
