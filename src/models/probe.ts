/**
 * @module probe — which TensorFlow.js backend a stage will run on, found WITHOUT loading TensorFlow.js, so the build
 * engine can put it in stage keys cheaply (a no-op `status` must not pay for a TF.js start-up).
 *
 * It mirrors initBackend's preference order (tfjs-node-gpu → tfjs-node → wasm → cpu), honouring MECHEVAL_BACKEND.
 * A native package counts only when its compiled binding is on disk (an install whose download failed leaves none).
 * Stages check at run time that initBackend picked the probed backend and fail otherwise, so a key never names a
 * backend other than the one that produced the bytes.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BackendChoice, BackendName } from './tf.ts';

const require = createRequire(import.meta.url);

export interface BackendFact {
  backend: BackendName;
  package: string;
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export function backendChoiceFromEnv(env: NodeJS.ProcessEnv = process.env): BackendChoice {
  const v = env.MECHEVAL_BACKEND ?? 'auto';
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new Error(`MECHEVAL_BACKEND=${JSON.stringify(v)} is not a backend; expected one of ${BACKENDS.join(', ')}`);
  }
  return v as BackendChoice;
}

function packageDir(pkg: string): string | null {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
}

function version(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

function hasBinding(dir: string, depth = 0): boolean {
  if (depth > 4 || !existsSync(dir)) return false;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name.endsWith('.node')) return true;
    if (name !== 'node_modules' && statSync(p).isDirectory() && hasBinding(p, depth + 1)) return true;
  }
  return false;
}

export function probeBackend(choice: BackendChoice = backendChoiceFromEnv()): BackendFact {
  const order: BackendName[] = choice === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [choice];
  for (const b of order) {
    const pkg = b === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : b === 'tensorflow' ? '@tensorflow/tfjs-node'
      : b === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu';
    const dir = packageDir(pkg);
    if (!dir) continue;
    if ((b === 'tensorflow-gpu' || b === 'tensorflow') && !hasBinding(join(dir, 'lib'))) continue;
    return { backend: b, package: `${pkg}@${version(dir)}` };
  }
  throw new Error(`backend '${choice}' is not installed (looked for ${order.join(', ')})`);
}
