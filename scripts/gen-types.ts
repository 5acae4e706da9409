/**
 * Generates TypeScript types from every `schemas/*.schema.json` into `schemas/types/<name>.ts`
 * (json-schema-to-typescript). The generated files are committed; `tests/schemas.test.ts` fails when they are stale.
 *   npm run gen:types            write the files
 *   npm run gen:types -- --check exit 1 listing the stale files, write nothing
 */
import { readdirSync, readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, basename } from 'node:path';
import { compile } from 'json-schema-to-typescript';

const SCHEMAS = 'schemas';
const OUT = join(SCHEMAS, 'types');

export async function generate(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of readdirSync(SCHEMAS).filter((f) => f.endsWith('.schema.json')).sort()) {
    const name = basename(file, '.schema.json');
    const schema = JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8'));
    const ts = await compile(schema, schema.title ?? name, {
      bannerComment: `/* Generated from schemas/${file} by \`npm run gen:types\`. Do not edit by hand. */`,
      cwd: SCHEMAS,
      additionalProperties: false,
      strictIndexSignatures: true,
      style: { singleQuote: true, printWidth: 120 },
    });
    out.set(join(OUT, `${name}.ts`), ts);
  }
  return out;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const files = await generate();
  const stale = [...files].filter(([p, ts]) => !existsSync(p) || readFileSync(p, 'utf8') !== ts).map(([p]) => p);
  if (check) {
    if (stale.length) {
      console.error(`stale generated types (run \`npm run gen:types\`):\n  ${stale.join('\n  ')}`);
      process.exitCode = 1;
    }
    return;
  }
  mkdirSync(OUT, { recursive: true });
  for (const p of stale) writeFileSync(p, files.get(p)!);
  console.log(stale.length ? `wrote ${stale.join(', ')}` : 'generated types are up to date');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
