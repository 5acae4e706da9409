/**
 * @module stages/common — what every ML stage shares: the backend as an environment fact of its key, and the
 * run-time check that the backend that runs is the one the key names.
 */
import { probeBackend, backendChoiceFromEnv } from '../src/models/probe.ts';
import { initBackend, describeBackend, type BackendInfo } from '../src/models/tf.ts';
import type { StageContext } from '../src/engine/index.ts';

export async function startBackend(ctx: StageContext): Promise<BackendInfo> {
  const want = probeBackend();
  const info = await initBackend(backendChoiceFromEnv());
  if (info.name !== want.backend) {
    throw new Error(`stage '${ctx.id}': its key names backend ${want.backend} (${want.package}) but ${describeBackend(info)} started; ` +
      'set MECHEVAL_BACKEND to the backend you want');
  }
  ctx.log(`backend: ${describeBackend(info)}`);
  return info;
}
