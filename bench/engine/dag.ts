/**
 * The benchmark DAG: N trivial function stages in chains of 10 (stage i reads stage i-1 unless
 * i is a multiple of 10), written as a plain-JS pipeline module that imports the compiled engine,
 * plus the same DAG as a Snakefile for the comparison.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHAIN = 10;
export const id = (i: number): string => `s/${String(i).padStart(4, '0')}`;

export function writeEngineProject(dir: string, n: number, engineIndexJs: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(
    join(dir, 'stages.mjs'),
    `import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
export function touch(ctx) {
  const up = ctx.inputs.up ? readFileSync(join(ctx.inputs.up, 'out.txt'), 'utf8').length : 0;
  writeFileSync(join(ctx.outDir, 'out.txt'), ctx.id + ' ' + up + '\\n');
}
`,
  );
  writeFileSync(
    join(dir, 'pipeline.mjs'),
    `import { stage, fn, pipeline } from ${JSON.stringify(pathToFileURL(engineIndexJs).href)};
const body = fn(new URL('./stages.mjs', import.meta.url), 'touch');
const stages = [];
for (let i = 0; i < ${n}; i++) {
  const id = 's/' + String(i).padStart(4, '0');
  const inputs = i % ${CHAIN} === 0 ? {} : { up: stages[i - 1] };
  stages.push(stage({ id, inputs, outputs: ['out.txt'], run: body }));
}
export default pipeline({ stages });
`,
  );
  return join(dir, 'pipeline.mjs');
}

export function writeSnakefile(dir: string, n: number): void {
  mkdirSync(dir, { recursive: true });
  const rules: string[] = [`rule all:\n    input: [${Array.from({ length: n }, (_, i) => `"out/${i}.txt"`).join(', ')}]\n`];
  for (let i = 0; i < n; i++) {
    const input = i % CHAIN === 0 ? '' : `    input: "out/${i - 1}.txt"\n`;
    rules.push(`rule r${i}:\n${input}    output: "out/${i}.txt"\n    shell: "echo ${i} > {output}"\n`);
  }
  writeFileSync(join(dir, 'Snakefile'), rules.join('\n'));
}
