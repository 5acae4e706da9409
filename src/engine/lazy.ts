/**
 * @module lazy — public entry points whose modules load on first call.
 *
 * Every pipeline module imports the engine's index, so whatever the index imports statically is
 * loaded (resolved, read, compiled) by every CLI run, a no-op `run` included. Watch mode is a
 * long-lived command of its own; its module waits until someone starts it.
 */
import type * as W from './watch.ts';

export function watch(...args: Parameters<typeof W.watch>): ReturnType<typeof W.watch> {
  return import('./watch.ts').then((m) => m.watch(...args));
}

export function loadPipelineTracked(...args: Parameters<typeof W.loadPipelineTracked>): ReturnType<typeof W.loadPipelineTracked> {
  return import('./watch.ts').then((m) => m.loadPipelineTracked(...args));
}
