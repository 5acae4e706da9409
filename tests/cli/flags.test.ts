import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, helpText, flags, commands, defaults } from '../../src/cli/flags.ts';
import { EngineError } from '../../src/engine/index.ts';

const usage = (re: RegExp) => (e: unknown) => e instanceof EngineError && e.code === 'usage' && e.exitCode === 2 && re.test(e.message + (e.hint ?? ''));

test('run flags: globs, -j N, -j4, --flag=value, booleans', () => {
  const a = parseArgs(['run', 'train/*', 'eval/**', '-j', '4', '--cpus=8', '--gpus', '1', '--keep-going', '--json', '--dry-run']);
  assert.equal(a.command, 'run');
  assert.deepEqual(a.positionals, ['train/*', 'eval/**']);
  assert.equal(a.options.jobs, 4);
  assert.equal(a.options.cpus, 8);
  assert.equal(a.options.gpus, 1);
  assert.equal(a.options.keepGoing, true);
  assert.equal(a.options.json, true);
  assert.equal(a.options.dryRun, true);
  assert.equal(parseArgs(['run', '-j4']).options.jobs, 4);
  assert.equal(parseArgs(['run', '-k', '-n']).options.dryRun, true);
});

test('global flags go anywhere', () => {
  const a = parseArgs(['--pipeline', 'p.ts', 'status', '--config', 'small', '--cache', '/tmp/c', '--json']);
  assert.deepEqual([a.command, a.options.pipeline, a.options.config, a.options.cache, a.options.json], ['status', 'p.ts', 'small', '/tmp/c', true]);
});

test('dag formats, verify --rerun (repeatable), show --n, gc --keep', () => {
  assert.equal(parseArgs(['dag', '--format', 'dot']).options.format, 'dot');
  assert.equal(parseArgs(['dag']).options.format, 'mermaid');
  assert.deepEqual(parseArgs(['verify', '--rerun', 'a/*', '--rerun', 'b']).options.rerun, ['a/*', 'b']);
  const s = parseArgs(['show', 'dataset/x', '--n', '3']);
  assert.deepEqual([s.positionals, s.options.n], [['dataset/x'], 3]);
  assert.equal(parseArgs(['gc', '--dry-run', '--keep', '2']).options.keep, 2);
});

test('errors quote the flag and the value received', () => {
  assert.throws(() => parseArgs(['run', '-j', 'many']), usage(/non-negative integer for -j, received "many"/));
  assert.throws(() => parseArgs(['run', '-j', '0']), usage(/at least 1/));
  assert.throws(() => parseArgs(['run', '--jobs']), usage(/--jobs needs a value/));
  assert.throws(() => parseArgs(['dag', '--format', 'png']), usage(/unknown value "png" for --format.*mermaid, dot, json/));
  assert.throws(() => parseArgs(['status', '--keep-going']), usage(/--keep-going does not apply to 'status'/));
  assert.throws(() => parseArgs(['run', '--frobnicate']), usage(/unknown flag --frobnicate/));
  assert.throws(() => parseArgs(['launch']), usage(/unknown command "launch".*run, (watch, )?status/));
  assert.throws(() => parseArgs(['show']), usage(/needs 1 argument/));
  assert.throws(() => parseArgs(['dag', 'extra']), usage(/takes no arguments/));
  assert.throws(() => parseArgs(['run', '--json=yes']), usage(/takes no value/));
});

test('help: every command has --help, and no args means help', () => {
  assert.equal(parseArgs([]).command, 'help');
  for (const c of Object.keys(commands)) {
    const a = parseArgs([c, '--help']);
    assert.equal(a.options.help, true, c);
  }
  assert.equal(parseArgs(['show', '--help']).options.help, true, 'help skips positional checks');
  const h = helpText('run');
  for (const f of ['--dry-run', '--json', '-j, --jobs <n>', '--cpus <n>', '--gpus <n>', '--keep-going', '--pipeline <file>']) assert.ok(h.includes(f), f);
  const all = helpText();
  for (const c of Object.keys(commands)) assert.ok(all.includes(`  ${commands[c as keyof typeof commands].usage}`), c);
});

test('the flag table covers every option; non-boolean flags declare an argument', () => {
  for (const k of Object.keys(defaults) as (keyof typeof defaults)[]) {
    const f = flags[k];
    assert.ok(f !== undefined, k);
    if (f && typeof defaults[k] !== 'boolean') assert.ok(f.argument, `${k} has an argument placeholder`);
  }
});
