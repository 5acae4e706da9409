/**
 * @module flags — one typed table of flags; parsing and help are both generated from it.
 *
 * `Flags<Options>` requires an entry for every option (or an explicit `null` meaning "not on the
 * command line"), and makes every non-boolean flag declare its argument placeholder (vitest's
 * flag table idea). `parseArgs` is pure: tests call it directly.
 */
import { EngineError } from '../engine/errors.ts';

export type DagFormat = 'mermaid' | 'dot' | 'json';

export interface Options {
  pipeline: string | undefined;
  config: string | undefined;
  cache: string | undefined;
  artifacts: string | undefined;
  executor: 'local' | 'slurm' | undefined;
  help: boolean;
  dryRun: boolean;
  json: boolean;
  jobs: number | undefined;
  cpus: number | undefined;
  gpus: number | undefined;
  keepGoing: boolean;
  noWait: boolean;
  verbose: boolean;
  format: DagFormat;
  rerun: string[];
  n: number | undefined;
  keep: number;
}

type FlagSpec<V> = {
  description: string;
  short?: string;
} & (V extends boolean ? { argument?: never } : { argument: string; choices?: readonly string[] });
export type Flags<T> = { [K in keyof T]-?: FlagSpec<NonNullable<T[K]>> | null };

export const flags: Flags<Options> = {
  pipeline: { argument: '<file>', description: 'pipeline module to load (default: ./pipeline.ts)' },
  config: { argument: '<name|file>', description: 'config passed to the pipeline function' },
  cache: { argument: '<dir>', description: 'store directory (default: cache/ beside the pipeline)' },
  artifacts: { argument: '<dir>', description: 'workspace directory for stage outputs (default: artifacts/ beside the pipeline)' },
  executor: { argument: '<local|slurm>', choices: ['local', 'slurm'], description: 'where stage bodies run (default: mecheval.config.json, else local)' },
  help: { short: 'h', description: 'show help' },
  dryRun: { short: 'n', description: 'list what would run, restore or is fresh, with a time forecast' },
  json: { description: 'machine-readable output' },
  jobs: { short: 'j', argument: '<n>', description: 'most stages executing at once (default: CPU count)' },
  cpus: { argument: '<n>', description: 'CPU slots (default: CPU count)' },
  gpus: { argument: '<n>', description: 'GPU slots (default: $MECHEVAL_GPUS or 0)' },
  keepGoing: { short: 'k', description: 'after a failure, finish stages that do not depend on it' },
  noWait: { description: 'fail at once if another run holds the store lock (default: wait)' },
  verbose: { short: 'v', description: 'print stage log lines as they come' },
  format: { argument: '<mermaid|dot|json>', choices: ['mermaid', 'dot', 'json'], description: 'graph format (default: mermaid)' },
  rerun: { argument: '<glob>', description: 're-execute matching stages in a scratch store and compare outputs (repeatable)' },
  n: { argument: '<n>', description: 'how many items to show' },
  keep: { argument: '<n>', description: 'also keep what the last N runs produced (default: 5)' },
};

export const defaults: Options = {
  pipeline: undefined,
  config: undefined,
  cache: undefined,
  artifacts: undefined,
  executor: undefined,
  help: false,
  dryRun: false,
  json: false,
  jobs: undefined,
  cpus: undefined,
  gpus: undefined,
  keepGoing: false,
  noWait: false,
  verbose: false,
  format: 'mermaid',
  rerun: [],
  n: undefined,
  keep: 5,
};

export type CommandName = 'run' | 'watch' | 'status' | 'dag' | 'verify' | 'gc' | 'show' | 'report' | 'help';
const GLOBAL: (keyof Options)[] = ['pipeline', 'config', 'cache', 'artifacts', 'help'];

export interface CommandSpec {
  usage: string;
  summary: string;
  flags: (keyof Options)[];
  positionals: { min: number; max: number };
}

export const commands: Record<CommandName, CommandSpec> = {
  run: { usage: 'run [STAGE_GLOB...]', summary: 'build the targets (default: all) and their upstream', flags: ['dryRun', 'json', 'executor', 'jobs', 'cpus', 'gpus', 'keepGoing', 'noWait', 'verbose'], positionals: { min: 0, max: Infinity } },
  watch: { usage: 'watch [STAGE_GLOB...]', summary: 'rebuild what is stale among the targets whenever a source, config or schema changes', flags: ['json', 'jobs', 'cpus', 'gpus', 'verbose'], positionals: { min: 0, max: Infinity } },
  status: { usage: 'status [STAGE_GLOB...]', summary: 'every stage as fresh | stale | missing, with its causes', flags: ['json'], positionals: { min: 0, max: Infinity } },
  dag: { usage: 'dag', summary: 'print the stage graph', flags: ['format'], positionals: { min: 0, max: 0 } },
  verify: { usage: 'verify [--rerun GLOB]', summary: 'recompute every key and compare with the lock file (exit 1 if stale)', flags: ['rerun', 'json', 'jobs', 'cpus', 'gpus', 'noWait', 'verbose'], positionals: { min: 0, max: 0 } },
  gc: { usage: 'gc [--dry-run]', summary: 'delete store objects referenced neither by the lock file nor by the last runs', flags: ['dryRun', 'keep', 'noWait'], positionals: { min: 0, max: 0 } },
  show: { usage: 'show STAGE [--n N]', summary: "print a stage's outputs readably", flags: ['n'], positionals: { min: 1, max: 1 } },
  report: { usage: 'report', summary: "build the pipeline's report target(s) and print where the output is", flags: ['executor', 'jobs', 'cpus', 'gpus', 'keepGoing', 'noWait', 'verbose'], positionals: { min: 0, max: 0 } },
  help: { usage: 'help [COMMAND]', summary: 'show help', flags: [], positionals: { min: 0, max: 1 } },
};

export interface ParsedArgs {
  command: CommandName;
  positionals: string[];
  options: Options;
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const byLong = new Map<string, keyof Options>((Object.keys(flags) as (keyof Options)[]).map((k) => [kebab(k), k]));
const byShort = new Map<string, keyof Options>();
for (const k of Object.keys(flags) as (keyof Options)[]) {
  const s = flags[k]?.short;
  if (s) byShort.set(s, k);
}

function usageError(message: string, hint?: string): EngineError {
  return new EngineError({ code: 'usage', message, ...(hint ? { hint } : {}) });
}

function setValue(opts: Options, name: keyof Options, raw: string, flag: string): void {
  const spec = flags[name]!;
  const cur = defaults[name];
  if (typeof cur === 'number' || name === 'jobs' || name === 'cpus' || name === 'gpus' || name === 'n') {
    if (!/^\d+$/.test(raw)) throw usageError(`expected a non-negative integer for ${flag}, received ${JSON.stringify(raw)}`);
    const v = Number(raw);
    if (name === 'jobs' && v < 1) throw usageError(`expected at least 1 for ${flag}, received ${raw}`);
    (opts as unknown as Record<string, unknown>)[name] = v;
    return;
  }
  if ('choices' in spec && spec.choices && !spec.choices.includes(raw)) {
    throw usageError(`unknown value ${JSON.stringify(raw)} for ${flag}`, `use one of: ${spec.choices.join(', ')}`);
  }
  if (Array.isArray(cur)) (opts[name] as string[]).push(raw);
  else (opts as unknown as Record<string, unknown>)[name] = raw;
}

/** Pure: argv (without node and script) → command, positionals and options. Throws EngineError('usage'). */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const opts: Options = { ...defaults, rerun: [] };
  const positionals: string[] = [];
  let command: CommandName | undefined;
  const seen: (keyof Options)[] = [];
  let i = 0;
  const take = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) throw usageError(`${flag} needs a value`, `e.g. ${flag} ${flags[byLong.get(flag.replace(/^--/, '')) ?? byShort.get(flag.slice(1))!]?.argument ?? '<value>'}`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const longName = a.slice(2, eq < 0 ? undefined : eq);
      const name = byLong.get(longName);
      if (!name || !flags[name]) throw usageError(`unknown flag --${longName}`, `see \`pipeline ${command ?? ''} --help\``.replace('  ', ' '));
      seen.push(name);
      if (typeof defaults[name] === 'boolean') {
        if (eq >= 0) throw usageError(`--${longName} takes no value, received ${JSON.stringify(a.slice(eq + 1))}`);
        (opts as unknown as Record<string, unknown>)[name] = true;
      } else setValue(opts, name, eq >= 0 ? a.slice(eq + 1) : take(a), `--${longName}`);
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      const name = byShort.get(a[1]!);
      if (!name) throw usageError(`unknown flag ${a.slice(0, 2)}`);
      seen.push(name);
      if (typeof defaults[name] === 'boolean') {
        if (a.length > 2) throw usageError(`-${a[1]} takes no value (combine short flags separately), received ${JSON.stringify(a)}`);
        (opts as unknown as Record<string, unknown>)[name] = true;
      } else setValue(opts, name, a.length > 2 ? a.slice(2) : take(a.slice(0, 2)), `-${a[1]}`);
      continue;
    }
    if (command === undefined) {
      if (!(a in commands)) throw usageError(`unknown command ${JSON.stringify(a)}`, `use one of: ${Object.keys(commands).join(', ')}`);
      command = a as CommandName;
    } else positionals.push(a);
  }
  command ??= 'help';
  if (command === 'help') {
    opts.help = true;
    return { command, positionals, options: opts };
  }
  const spec = commands[command];
  for (const name of seen) {
    if (!GLOBAL.includes(name) && !spec.flags.includes(name)) {
      throw usageError(`--${kebab(name)} does not apply to '${command}'`, `'${command}' accepts: ${[...spec.flags, ...GLOBAL].map((f) => `--${kebab(f)}`).join(', ')}`);
    }
  }
  if (!opts.help) {
    if (positionals.length < spec.positionals.min) throw usageError(`'${command}' needs ${spec.positionals.min} argument(s): ${spec.usage}`);
    if (positionals.length > spec.positionals.max) throw usageError(`'${command}' takes ${spec.positionals.max === 0 ? 'no arguments' : `at most ${spec.positionals.max}`}, received ${JSON.stringify(positionals)}`, `usage: pipeline ${spec.usage}`);
  }
  return { command, positionals, options: opts };
}

function flagLine(name: keyof Options): string {
  const f = flags[name]!;
  const left = `${f.short ? `-${f.short}, ` : '    '}--${kebab(name)}${f.argument ? ` ${f.argument}` : ''}`;
  return `  ${left.padEnd(34)} ${f.description}`;
}

export function helpText(command?: CommandName): string {
  if (command && command !== 'help') {
    const c = commands[command];
    return [`usage: npm run pipeline -- ${c.usage} [options]`, '', c.summary, '', 'options:', ...c.flags.map(flagLine), '', 'global options:', ...GLOBAL.map(flagLine)].join('\n');
  }
  return [
    'usage: npm run pipeline -- <command> [options]',
    '',
    'commands:',
    ...(Object.keys(commands) as CommandName[]).map((c) => `  ${commands[c].usage.padEnd(24)} ${commands[c].summary}`),
    '',
    'global options:',
    ...GLOBAL.map(flagLine),
    '',
    'exit status: 0 ok, 1 a stage failed (or verify found stale stages), 2 usage or validation error, 130 interrupted',
    'every command has --help',
  ].join('\n');
}
