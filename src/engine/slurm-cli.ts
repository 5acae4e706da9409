/**
 * @module slurm-cli — the four Slurm commands the executor uses, as small typed functions.
 *
 * `sbatch --parsable` to submit, `squeue` to follow (one call per poll for every tracked job),
 * `scontrol show job` for the final state of a job squeue no longer lists (sacct needs slurmdbd,
 * which small clusters and our test cluster lack), `scancel` to cancel. Each runs with a
 * timeout, so a hung controller slows the engine down instead of wedging it.
 */
import { execFile } from 'node:child_process';
import { EngineError } from './errors.ts';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function slurmCmd(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === 127 ? err.message : '') });
    });
  });
}

export async function sbatch(args: readonly string[]): Promise<string> {
  const r = await slurmCmd('sbatch', ['--parsable', ...args]);
  const id = r.stdout.trim().split(';')[0] ?? '';
  if (r.code !== 0 || !/^\d+$/.test(id)) {
    throw new EngineError({
      code: 'stage_failed',
      message: `sbatch refused the job: ${(r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`).split('\n')[0]}`,
      fields: { sbatch: args.filter((a) => a.startsWith('-')).join(' ') },
      hint: 'check the slurm settings in mecheval.config.json (partition, account, mem, time) against `sinfo`',
    });
  }
  return id;
}

/** Job id → state (PENDING, RUNNING, COMPLETED, …) for the ids squeue still lists; undefined if squeue failed. */
export async function squeue(ids: readonly string[]): Promise<Map<string, string> | undefined> {
  const out = new Map<string, string>();
  if (ids.length === 0) return out;
  const r = await slurmCmd('squeue', ['-h', '-o', '%i %T', '-j', ids.join(',')]);
  if (r.code !== 0) return /Invalid job id/i.test(r.stderr) ? out : undefined; // every id purged, or the controller is unreachable
  for (const line of r.stdout.split('\n')) {
    const [id, state] = line.trim().split(/\s+/);
    if (id && state) out.set(id, state);
  }
  return out;
}

export interface FinalState {
  state: string;
  exitCode: string;
  reason: string;
}

/** The final state of a job from `scontrol show job` (kept for MinJobAge after it ends); undefined once purged. */
export async function scontrolJob(id: string): Promise<FinalState | undefined> {
  const r = await slurmCmd('scontrol', ['show', 'job', '-o', id]);
  if (r.code !== 0) return undefined;
  const field = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(r.stdout)?.[1] ?? '';
  return { state: field('JobState'), exitCode: field('ExitCode'), reason: field('Reason') };
}

export async function scancel(ids: readonly string[]): Promise<void> {
  if (ids.length) await slurmCmd('scancel', [...ids]);
}

/** Job states in which a job may still run or is still being torn down. */
export const ACTIVE_STATES = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING', 'STAGE_OUT', 'SIGNALING', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'STOPPED']);
