/**
 * @module progress — what a build shows while it runs.
 *
 * A `Reporter` receives stage events. `consoleReporter` draws bars with ETA for running stages
 * on a TTY, and prints plain lines (throttled progress) when stderr is not a TTY or CI=true.
 * With `json`, stdout carries exactly one JSON object per stage and nothing else.
 */
import { formatError } from './errors.ts';

export type Action = 'ran' | 'restored' | 'fresh' | 'failed' | 'cancelled';
/** Shake's named early-cutoff outcome, for stages that ran. */
export type RunChanged = 'new' | 'recomputedSame' | 'recomputedDiff';

export interface StageOutcome {
  stage: string;
  /** null when the key could not be computed (an upstream stage failed) */
  key: string | null;
  action: Action;
  ms: number;
  change?: RunChanged;
  error?: unknown;
}

export interface Reporter {
  begin?(info: { total: number; toRun: number }): void;
  stageStart(id: string, what: 'run' | 'restore', forecastMs?: number): void;
  progress(id: string, step: number, total: number, info?: string): void;
  log(id: string, line: string): void;
  stageEnd(o: StageOutcome): void;
  warn(msg: string): void;
  close(): void;
}

export const silentReporter: Reporter = {
  stageStart() {},
  progress() {},
  log() {},
  stageEnd() {},
  warn() {},
  close() {},
};

/**
 * Monotonic milliseconds, for durations. `performance.now()` would do, but the `performance`
 * global loads perf_hooks and ten internal modules on first use, compiled at start-up in a
 * short-lived CLI; process.hrtime is already loaded.
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

interface Live {
  id: string;
  started: number;
  step: number;
  total: number;
  info: string;
  firstAt?: number;
  firstStep?: number;
  lastPrintedPct: number;
  lastPrintedAt: number;
  announce?: NodeJS.Timeout;
}

export interface ConsoleReporterOptions {
  json?: boolean;
  /** force plain lines even on a TTY */
  plain?: boolean;
  verbose?: boolean;
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export function consoleReporter(opts: ConsoleReporterOptions = {}): Reporter {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = !opts.plain && !!err.isTTY && process.env.CI !== 'true' && !opts.json;
  const live = new Map<string, Live>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const eta = (l: Live): string => {
    if (l.firstAt === undefined || l.total <= 0 || l.step >= l.total || l.step <= (l.firstStep ?? 0)) return '';
    const rate = (Date.now() - l.firstAt) / (l.step - l.firstStep!);
    return ` ETA ${fmtMs(rate * (l.total - l.step))}`;
  };
  const clear = () => {
    if (!tty || drawn === 0) return;
    err.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    if (!tty) return;
    clear();
    const width = Math.max(40, (err.columns ?? 80) - 1);
    const lines: string[] = [];
    for (const l of live.values()) {
      const el = fmtMs(Date.now() - l.started);
      if (l.total > 0) {
        const frac = Math.min(1, l.step / l.total);
        const bar = '█'.repeat(Math.round(frac * 20)).padEnd(20, '░');
        lines.push(`  ${bar} ${l.id} ${l.step}/${l.total} ${el}${eta(l)} ${l.info}`.slice(0, width));
      } else lines.push(`  ${'·'.repeat(20)} ${l.id} ${el} ${l.info}`.slice(0, width));
    }
    if (lines.length) err.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  // Plain mode batches lines into one write per 100 ms: a thousand quick stages would otherwise
  // pay a thousand synchronous writes to a pipe.
  let pending: string[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    flushTimer = undefined;
    if (pending.length) err.write(`${pending.join('\n')}\n`);
    pending = [];
  };
  const above = (s: string) => {
    if (!tty) {
      pending.push(s);
      flushTimer ??= setTimeout(flush, 100);
      return;
    }
    clear();
    err.write(`${s}\n`);
    draw();
  };

  return {
    begin() {
      if (tty) timer = setInterval(draw, 100).unref();
    },
    stageStart(id, what, forecastMs) {
      const l: Live = { id, started: Date.now(), step: 0, total: 0, info: what === 'restore' ? 'restoring' : '', lastPrintedPct: -1, lastPrintedAt: 0 };
      live.set(id, l);
      // Plain mode announces a stage only once it has run for a second: a thousand quick stages
      // should not print two thousand lines.
      if (!tty && !opts.json && what === 'run') {
        l.announce = setTimeout(() => above(`▶ ${id} running${forecastMs !== undefined ? ` (≈ ${fmtMs(forecastMs)})` : ''}`), 1000);
        l.announce.unref();
      }
    },
    progress(id, step, total, info) {
      const l = live.get(id);
      if (!l) return;
      if (l.firstAt === undefined) {
        l.firstAt = Date.now();
        l.firstStep = step;
      }
      l.step = step;
      l.total = total;
      l.info = info ?? '';
      if (!tty && !opts.json) {
        const pct = total > 0 ? Math.floor((step / total) * 10) : 0;
        if (pct > l.lastPrintedPct || Date.now() - l.lastPrintedAt > 10_000) {
          l.lastPrintedPct = pct;
          l.lastPrintedAt = Date.now();
          above(`  ${id} ${step}/${total}${eta(l)}${info ? ` ${info}` : ''}`);
        }
      }
    },
    log(id, line) {
      if (opts.verbose) above(`  [${id}] ${line}`);
    },
    stageEnd(o) {
      clearTimeout(live.get(o.stage)?.announce);
      live.delete(o.stage);
      if (opts.json) {
        out.write(`${JSON.stringify({ stage: o.stage, key: o.key, action: o.action, ms: Math.round(o.ms) })}\n`);
        return;
      }
      if (o.action === 'fresh') return;
      const mark = o.action === 'failed' ? '✗' : o.action === 'cancelled' ? '–' : '✓';
      const cut = o.change === 'recomputedSame' ? ' (same output: dependents cut off)' : '';
      let s = `${mark} ${o.action.padEnd(9)} ${o.stage} ${fmtMs(o.ms)}${cut}`;
      if (o.action === 'failed' && o.error) s += `\n${formatError(o.error).replace(/^/gm, '    ')}`;
      above(s);
    },
    warn(msg) {
      above(`warning: ${msg}`);
    },
    close() {
      if (timer) clearInterval(timer);
      clearTimeout(flushTimer);
      flush();
      clear();
    },
  };
}
