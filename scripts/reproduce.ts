#!/usr/bin/env -S npx tsx
/**
 * CI reproducibility check (issue 7): build a study twice, each time in a fresh store and workspace, and fail unless
 * every stage has the same key and the same output digests both times (volatile outputs excepted).
 *   npx tsx scripts/reproduce.ts [--config smoke]
 */
import { $, fs, path, os, argv } from 'zx';

const config = (argv.config as string | undefined) ?? 'smoke';
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mecheval-reproduce-'));
$.verbose = false;

type Lock = { stages: Record<string, { key: string; outputs: Record<string, string> }> };
const locks: Lock[] = [];
for (const run of ['a', 'b']) {
  const dir = path.join(tmp, run);
  const started = Date.now();
  // Each run writes the pipeline's lock file; keep a copy and restore the committed one afterwards.
  await $`npx tsx src/cli/main.ts run --config ${config} --cache ${path.join(dir, 'cache')} --artifacts ${path.join(dir, 'artifacts')} --no-wait`.pipe(process.stderr);
  console.log(`run ${run}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const lockFile = config === 'default' ? 'pipeline.lock.json' : `pipeline.${config}.lock.json`;
  locks.push(await fs.readJson(lockFile) as Lock);
  await $`git checkout -- ${lockFile}`.nothrow();
}
const [a, b] = locks as [Lock, Lock];
const diffs: string[] = [];
for (const id of new Set([...Object.keys(a.stages), ...Object.keys(b.stages)])) {
  const x = a.stages[id], y = b.stages[id];
  if (!x || !y) diffs.push(`${id}: only in run ${x ? 'a' : 'b'}`);
  else if (x.key !== y.key) diffs.push(`${id}: key ${x.key.slice(0, 12)} vs ${y.key.slice(0, 12)}`);
  else if (JSON.stringify(x.outputs) !== JSON.stringify(y.outputs)) diffs.push(`${id}: outputs differ ${JSON.stringify(x.outputs)} vs ${JSON.stringify(y.outputs)}`);
}
await fs.remove(tmp);
if (diffs.length) {
  console.error(`not reproducible (${diffs.length} stages):\n  ${diffs.join('\n  ')}`);
  process.exit(1);
}
console.log(`reproducible: ${Object.keys(a.stages).length} stages, same keys and output digests in two fresh stores`);
