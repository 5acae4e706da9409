#!/usr/bin/env node
/**
 * @module main — parse → command → exit code. Thin and importable: `main()` returns the code,
 * the `isMain` guard sets `process.exitCode` and exits once it has, so `finally` blocks still
 * clean up.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, helpText, type CommandName } from './flags.ts';
import { formatError, exitCodeOf } from '../engine/errors.ts';
import { makeCtx, line, type Io, type Ctx } from './context.ts';

const handlers: Record<Exclude<CommandName, 'help' | 'watch'>, () => Promise<(ctx: Ctx) => Promise<number>>> = {
  run: async () => (await import('./commands/run.ts')).runCommand,
  report: async () => (await import('./commands/run.ts')).reportCommand,
  status: async () => (await import('./commands/inspect.ts')).statusCommand,
  dag: async () => (await import('./commands/inspect.ts')).dagCommand,
  show: async () => (await import('./commands/inspect.ts')).showCommand,
  verify: async () => (await import('./commands/maintain.ts')).verifyCommand,
  gc: async () => (await import('./commands/maintain.ts')).gcCommand,
};

export async function main(argv: readonly string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  try {
    const parsed = parseArgs(argv);
    if (parsed.command === 'help' || parsed.options.help) {
      const topic = parsed.command === 'help' ? (parsed.positionals[0] as CommandName | undefined) : parsed.command;
      line(io.out, helpText(topic && (topic in handlers || topic === 'watch') ? topic : undefined));
      return 0;
    }
    // watch loads the pipeline itself, every cycle: a broken one at start-up is reported, then watched
    if (parsed.command === 'watch') return await (await import('./commands/watch.ts')).watchCommand(parsed.options, parsed.positionals, io);
    const ctx = await makeCtx(parsed.options, parsed.positionals, io);
    const handler = await handlers[parsed.command]();
    return await handler(ctx);
  } catch (e) {
    line(io.err, formatError(e));
    return exitCodeOf(e);
  }
}

const isMain = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (isMain) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // main's finally blocks have run (store lock released, workers and executors closed). What
    // would keep the process alive is V8 finishing optimised code, on background threads, for the
    // loops it just ran: Node drains those jobs before a natural exit, about 17 ms of CPU and a few
    // ms of wall time after a 1000-stage no-op `run`, for code nobody will call. So leave now,
    // unless stdout or stderr still holds output (pipes are asynchronous on some platforms).
    if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code);
  });
}
