import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as vl from 'vega-lite';
import { renderHtml, renderMarkdown, buildReport, deterministicIds, renderSvg, type FigureSpec } from '../../src/report/index.ts';
import { FIXTURE_FIGURES, FIXTURE_OMITTED, fixture, fixtureRuns, study } from './fixture.ts';

const SECTIONS = [
  '## Findings (paper-setup.md §10.4)',
  '## AR accuracy (paper §6.1)',
  '## AR mechanisms (paper §5.2, §6.2)',
  '## Mamba short-conv ablation on AR (paper §6.3)',
  '## Mamba conv-internal patching (paper v3, §6.2)',
  '## ATR accuracy and mechanisms (paper §6.4)',
  '## Mamba without conv on ATR (paper v3, §6.5)',
  '## 1-layer models, variants and generalisation (paper App. D, §6.6)',
  '## Training curves and every run',
  '## Provenance: every stage, key and wall time',
];

const count = (s: string, sub: string | RegExp) => (typeof sub === 'string' ? s.split(sub).length - 1 : [...s.matchAll(sub)].length);

test('markdown: header with config, backend, versions and wall time; every section in order', () => {
  const md = renderMarkdown(fixture());
  assert.ok(md.startsWith('# mecheval report: fixture\n'));
  assert.match(md, /\| config \| fixture \|/);
  assert.match(md, /\| backend \| wasm \(@tensorflow\/tfjs-backend-wasm@4\.22\.0\) \|/);
  assert.match(md, /\| versions \| TensorFlow\.js 4\.22\.0, Node v20\.19\.0, linux-x64; charts: vega \d+\.\d+\.\d+, vega-lite \d+\.\d+\.\d+ \|/);
  assert.match(md, /\| wall time \| 8 min 38 s summed over 26 stages \(aggregate ×1: 40 ms, dataset ×2: 4\.6 s, evaluate ×8: 6\.4 s, intervene ×7: 14\.7 s, train ×8: 8 min 12 s;/);
  let at = -1;
  for (const s of SECTIONS) {
    const i = md.indexOf(`\n${s}\n`);
    assert.ok(i > at, `section ${s} missing or out of order`);
    at = i;
  }
  assert.ok(!md.includes('2026-01-01'), 'generatedBy must not be printed');
});

test('markdown: one findings line per finding with its status and numbers', () => {
  const md = renderMarkdown(fixture());
  const lines = md.split('\n').filter((l) => /^- \*\*F\d /.test(l));
  assert.deepEqual(lines.map((l) => l.match(/^- \*\*(F\d) ([a-z ]+)\*\*/)!.slice(1, 3).join(' ')), [
    'F1 reproduced', 'F2 reproduced', 'F3 not run', 'F4 reproduced', 'F5 reproduced', 'F6 not run', 'F7 reproduced', 'F8 not run', 'F9 not run',
  ]);
  assert.match(lines[3]!, /d_conv 0: Mamba d64 32\.0 %/);
});

test('markdown: a finding flips when the numbers change', () => {
  const runs = fixtureRuns();
  runs.find((r) => r.id === 'train/ar3/mamba-d64-L2-conv0-lr0.003-s0')!.evaluate.accuracy = 0.97;
  const md = renderMarkdown(study(runs));
  assert.match(md, /^- \*\*F4 partly\*\*: .*✗ d_conv 0: Mamba d64 97\.0 %/m);
  assert.match(md, /\| 0 \| 3e−3 \| 97\.0 % \|/);
});

test('markdown: tables carry the numbers, and provenance (ids + short keys) follows every table and figure', () => {
  const r = fixture();
  const md = renderMarkdown(r);
  assert.match(md, /\| Attention \| yes \| 64 \| 3e−4 \| 100\.0 % \| 100\.00 % \| 3e−4: 100\.0 %, 1e−3: 33\.0 % \|/);
  assert.match(md, /\| Mamba \| 64 \| 3e−3 \| 100\.0 % \| 0\.900 \| 0\.300 \| 0\.00 \| 0\.00 \| 0\.00 \| 0\.00 \| 1\.00 \| 0\.00 \| direct_retrieval \+ conv_next_key \|/);
  const doc = buildReport(r);
  const blocks = doc.sections.flatMap((s) => s.blocks);
  const tables = blocks.filter((b) => b.kind === 'table');
  const figures = blocks.filter((b) => b.kind === 'figure' && b.figure.spec);
  // Each table is followed by a Provenance (stages) or Source (paper) line, each drawn figure by a Provenance line.
  assert.equal(count(md, /^Provenance: /gm) + count(md, /^Source: /gm), tables.length + figures.length);
  for (const s of r.stages) if (!s.id.startsWith('dataset') && s.id !== 'aggregate') assert.ok(md.includes(`\`${s.id}\` \`${s.key.slice(0, 12)}\``), s.id);
  // Figures without data are omitted with a line, not drawn.
  assert.match(md, /\*Figure omitted: H3 \(AR\): not analysed .*no Attrib values to plot/);
  assert.match(md, /\*Figure omitted: Mamba without conv on ATR: Attrib at the last layer's block input vs d_conv: no Mamba ATR runs with two or more d_conv values\.\*/);
});

test('markdown and HTML are byte-identical for the same results', async () => {
  assert.equal(renderMarkdown(fixture()), renderMarkdown(fixture()));
  const a = await renderHtml(fixture());
  // Render something else in between: vega's process-wide id counters move on, the output must not.
  await renderHtml(study(fixtureRuns().slice(3)));
  const b = await renderHtml(fixture());
  assert.equal(a, b);
});

test('HTML: self-contained (no URL but the SVG namespaces, no script), one <svg> per figure with data, omitted ones say so', async () => {
  const html = await renderHtml(fixture());
  const stripped = html.replaceAll('http://www.w3.org/2000/svg', '').replaceAll('http://www.w3.org/1999/xlink', '');
  assert.ok(!/https?:\/\//.test(stripped), stripped.match(/.{40}https?:\/\/.{40}/)?.[0]);
  assert.ok(!/<script/i.test(html));
  assert.ok(!/<(link|img|iframe|object|embed)\b/i.test(html));
  assert.ok(!/\ssrc=/i.test(html));
  assert.equal(count(html, '<svg'), FIXTURE_FIGURES.length);
  for (const id of FIXTURE_FIGURES) assert.match(html, new RegExp(`<figure id="${id}"[^>]*>\\n<svg`), id);
  for (const id of FIXTURE_OMITTED) assert.match(html, new RegExp(`<p class="omitted" id="${id}">Figure omitted: `), id);
  assert.match(html, /<span class="badge s-reproduced">F1 · reproduced<\/span>/);
  assert.match(html, /<span class="badge s-not-run">F3 · not run<\/span>/);
});

test('HTML: ids are unique across the page, and every SVG reference points at an id in its own figure', async () => {
  const html = await renderHtml(fixture());
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(new Set(ids).size, ids.length, 'duplicate ids');
  for (const m of html.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]!), m[1]);
  for (const fig of FIXTURE_FIGURES) {
    const at = html.indexOf(`<figure id="${fig}"`);
    assert.ok(at >= 0, fig);
    const svg = html.slice(at, html.indexOf('</figure>', at));
    assert.ok(svg.includes('<svg'), fig);
    for (const m of svg.matchAll(/url\(#([^)]+)\)/g)) assert.ok(m[1]!.startsWith(`${fig}-`), `${fig}: ${m[1]}`);
  }
});

test('HTML: provenance lists stage ids with short keys and the full key in a title', async () => {
  const r = fixture();
  const html = await renderHtml(r);
  for (const s of r.stages) {
    assert.ok(html.includes(`<code>${s.id}</code> <code class="key" title="${s.key}">${s.key.slice(0, 12)}</code>`), s.id);
  }
  // Every table and drawn figure is directly followed by its provenance (inline, or folded when long).
  const followers = [...html.matchAll(/(?:<\/table><\/div>|<\/figcaption>)\n(<p class="prov">|<details class="prov">)?/g)];
  assert.equal(followers.length, count(html, '<table>') + FIXTURE_FIGURES.length);
  for (const m of followers) assert.ok(m[1], `no provenance after …${html.slice(m.index! - 80, m.index! + 20)}`);
  // The every-run table lists more than PROVENANCE_INLINE stages: folded, with the stage counts in the summary.
  assert.match(html, /<details class="prov"><summary>Provenance: 23 stages \(train ×8, evaluate ×8, intervene ×7\)<\/summary>/);
});

test('HTML escapes text from the results', async () => {
  const r = fixture();
  r.config.description = 'a <script>alert(1)</script> & "quoted"';
  const html = await renderHtml(r);
  assert.ok(html.includes('a &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;'));
  assert.ok(!/<script/i.test(html));
});

test('an empty study renders: no figures, a line for each omitted one', async () => {
  const html = await renderHtml(study([]));
  assert.equal(count(html, '<svg'), 0);
  assert.ok(count(html, 'class="omitted"') >= 6);
  const md = renderMarkdown(study([]));
  assert.match(md, /\*Figure omitted: AR accuracy, best over learning rate \(this study beside the paper\): no 2-layer AR runs in this study\.\*/);
});

test('every figure spec of the fixture compiles without Vega-Lite warnings', () => {
  const doc = buildReport(fixture());
  const figs: FigureSpec[] = doc.sections.flatMap((s) => s.blocks.flatMap((b) => (b.kind === 'figure' && b.figure.spec ? [b.figure] : [])));
  assert.equal(figs.length, FIXTURE_FIGURES.length);
  for (const f of figs) {
    const warnings: unknown[] = [];
    const logger = { level() { return this; }, error: (...a: unknown[]) => { warnings.push(a); return logger; }, warn: (...a: unknown[]) => { warnings.push(a); return logger; }, info: () => logger, debug: () => logger };
    vl.compile(f.spec as unknown as vl.TopLevelSpec, { logger: logger as never });
    assert.deepEqual(warnings, [], f.id);
  }
});

test('deterministicIds renames ids in order of appearance and rewrites url(#…) and href references', async () => {
  const svg = '<svg><defs><clipPath id="clip7"><rect/></clipPath><linearGradient id="gradient_3"/></defs>' +
    '<g clip-path="url(#clip7)"><rect fill="url(#gradient_3)"/><use href="#clip7"/></g></svg>';
  assert.equal(deterministicIds(svg, 'fig-x'),
    '<svg><defs><clipPath id="fig-x-1"><rect/></clipPath><linearGradient id="fig-x-2"/></defs>' +
    '<g clip-path="url(#fig-x-1)"><rect fill="url(#fig-x-2)"/><use href="#fig-x-1"/></g></svg>');
  const spec = { data: { values: [{ a: 1, b: 2 }] }, mark: 'rect', encoding: { x: { field: 'a' }, color: { field: 'b', type: 'quantitative' } } };
  const [one, two] = [await renderSvg(spec, 'p'), await renderSvg(spec, 'p')];
  assert.equal(one, two);
  assert.match(one, /id="p-1"/);
});
