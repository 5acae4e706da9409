/**
 * A small project used by the build tests: `up → down`, an independent `other`, and optional
 * extra stages switched on through config.json (so tests change params without editing code).
 */
import { ENGINE, project, type Project } from './helpers.ts';

export interface Config {
  value: string;
  note: string;
  flavour: string;
  extra?: string[];
}

export function fixture(cfg: Config = { value: 'a', note: 'n1', flavour: 'vanilla' }): Project & { config(c: Partial<Config>): void; runs(): string[] } {
  const p = project({
    'config.json': JSON.stringify(cfg),
    'helper.mjs': `export const shout = (s) => s + '!';\n`,
    'stages.mjs': `
import { writeFile, readFile, appendFile, mkdir, access } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { shout } from './helper.mjs';
const RUNS = new URL('./runs.log', import.meta.url);
const note = (id) => appendFile(RUNS, id + '\\n');
export async function up(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'out.txt'), shout(ctx.params.value)); }
export async function down(ctx) {
  await note(ctx.id);
  const t = await readFile(join(ctx.inputs.src, 'out.txt'), 'utf8');
  await mkdir(join(ctx.outDir, 'dir/sub'), { recursive: true });
  await writeFile(join(ctx.outDir, 'dir/sub/x.txt'), t.toUpperCase());
  await writeFile(join(ctx.outDir, 'out.txt'), t.toUpperCase());
}
export async function showUp(ctx) { const t = await readFile(join(ctx.outDir, 'out.txt'), 'utf8'); return 'value=' + ctx.params.value + ' n=' + ctx.n + ' text=' + t; }
export async function other(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'o.txt'), 'other'); }
export async function boom(ctx) { await note(ctx.id); await writeFile(join(ctx.outDir, 'out.txt'), 'partial'); throw new Error('boom: deliberate failure'); }
export async function lazy(ctx) { await note(ctx.id); }
export async function suicide(ctx) {
  await note(ctx.id);
  await writeFile(join(ctx.outDir, 'out.txt'), 'partial');
  if (existsSync(new URL('./kill.flag', import.meta.url))) process.kill(process.pid, 'SIGKILL');
  await writeFile(join(ctx.outDir, 'out.txt'), 'complete');
}
const until = async (f) => { const t0 = Date.now(); while (!existsSync(f)) { if (Date.now() - t0 > 20000) throw new Error('no overlap: partner never started'); await new Promise((r) => setTimeout(r, 10)); } };
export async function slow(ctx) {
  await note(ctx.id);
  await writeFile(join(ctx.outDir, 'out.txt'), 'partial');
  await writeFile(new URL('./slow.started', import.meta.url), String(process.pid));
  await until(new URL('./slow.release', import.meta.url));
  await writeFile(join(ctx.outDir, 'out.txt'), 'done');
}
export async function meet(ctx) {
  const start = Date.now();
  await writeFile(new URL('./' + ctx.params.me + '.started', import.meta.url), '');
  await until(new URL('./' + ctx.params.partner + '.started', import.meta.url));
  await writeFile(join(ctx.outDir, 'times.json'), JSON.stringify({ start, end: Date.now() }));
}
`,
    'pipeline.ts': `
import { readFileSync } from 'node:fs';
import { stage, fn, cmd, sh, pipeline } from '${ENGINE}';
const cfg = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
const m = new URL('./stages.mjs', import.meta.url);
const up = stage({
  id: 'up', params: { value: cfg.value, note: cfg.note },
  schema: { type: 'object', properties: { value: { type: 'string' }, note: { type: 'string' } }, required: ['value'], additionalProperties: false },
  outputs: ['out.txt'], run: fn(m, 'up'), env: { flavour: cfg.flavour, probe: () => 'probe-' + cfg.flavour }, show: fn(m, 'showUp'),
});
const down = stage({ id: 'down', inputs: { src: up }, outputs: ['out.txt', 'dir/'], run: fn(m, 'down') });
const other = stage({ id: 'other', outputs: ['o.txt'], run: fn(m, 'other') });
const extra = [];
const x = new Set(cfg.extra ?? []);
if (x.has('boom')) extra.push(stage({ id: 'boom', outputs: ['out.txt'], run: fn(m, 'boom') }), stage({ id: 'after-boom', inputs: { b: 'boom' }, outputs: ['x'], run: fn(m, 'other') }));
if (x.has('lazy')) extra.push(stage({ id: 'lazy', outputs: ['never.txt'], run: fn(m, 'lazy') }));
if (x.has('suicide')) extra.push(stage({ id: 'suicide', outputs: ['out.txt'], run: fn(m, 'suicide') }));
if (x.has('slow')) extra.push(stage({ id: 'slow', outputs: ['out.txt'], run: fn(m, 'slow') }));
if (x.has('timeouts')) extra.push(
  stage({ id: 'hang/fn', outputs: ['out.txt'], run: fn(m, 'slow'), timeoutMs: 300 }),
  stage({ id: 'hang/cmd', outputs: ['o'], run: cmd(({ outDir }) => sh\`sleep 30 & echo $! > sleep.pid; wait; echo x > \${outDir}/o\`), timeoutMs: 300 }));
if (x.has('meet')) extra.push(
  stage({ id: 'meet/a', params: { me: 'a', partner: 'b' }, schema: { type: 'object' }, outputs: ['times.json'], run: fn(m, 'meet') }),
  stage({ id: 'meet/b', params: { me: 'b', partner: 'a' }, schema: { type: 'object' }, outputs: ['times.json'], run: fn(m, 'meet') }));
if (x.has('shell')) extra.push(stage({
  id: 'shell', params: { msg: cfg.msg }, schema: { type: 'object', properties: { msg: { type: 'string' } } },
  outputs: ['msg.txt', 'argc.txt'],
  run: cmd(({ params, outDir }) => sh\`printf '%s' \${params.msg} > \${outDir}/msg.txt; set -- \${params.msg}; echo $# > \${outDir}/argc.txt\`),
}));
export default pipeline({ stages: [up, down, other, ...extra] });
`,
  });
  return Object.assign(p, {
    config(c: Partial<Config> & Record<string, unknown>) {
      const cur = JSON.parse(p.read('config.json')) as Config;
      p.write('config.json', JSON.stringify({ ...cur, ...c }));
    },
    runs(): string[] {
      return p.exists('runs.log') ? p.read('runs.log').trim().split('\n').filter(Boolean) : [];
    },
  });
}
