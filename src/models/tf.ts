/**
 * @module tf — the one door through which TensorFlow.js enters the project, and the backend choice.
 *
 * Preference order (issue 4): tfjs-node-gpu → tfjs-node → wasm → cpu. The two native packages are optional
 * dependencies that cannot install on machines without internet (their install script downloads libtensorflow), so
 * each is tried and any error, not only MODULE_NOT_FOUND, means "not available" (tfjs-backends.md §Summary: an
 * install with --ignore-scripts leaves a package that throws a plain Error).
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { useFastWasmKernels } from './wasm-kernels.ts';

export { tf };
export type Tensor = tf.Tensor;
export type Tensor2D = tf.Tensor2D;
export type Tensor3D = tf.Tensor3D;

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;

export interface BackendInfo {
  /** What runs: the name the caller asked for resolved to a concrete backend. */
  name: BackendName;
  /** tfjs's own backend id (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Package that provides it and its version, e.g. `@tensorflow/tfjs-backend-wasm@4.22.0`. */
  package: string;
  tfjsVersion: string;
  /** Backends tried before this one and why each was skipped. */
  skipped: { name: BackendName; reason: string }[];
}

const require = createRequire(import.meta.url);

function packageVersion(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function tryNative(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? String(e);
  }
}

let current: BackendInfo | null = null;

/** Select and initialise a backend once per process. Later calls return the same info (or throw on a conflict). */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (current) {
    if (choice !== 'auto' && choice !== current.name) {
      throw new Error(`backend already initialised as '${current.name}', cannot switch to '${choice}' in the same process`);
    }
    return current;
  }
  const order: BackendName[] = choice === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [choice];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    if (name === 'tensorflow-gpu' || name === 'tensorflow') {
      const pkg = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      const err = await tryNative(pkg);
      if (err === null && (await tf.setBackend('tensorflow'))) {
        await tf.ready();
        current = { name, tfBackend: 'tensorflow', package: `${pkg}@${packageVersion(pkg)}`, tfjsVersion: tf.version_core, skipped };
        return current;
      }
      skipped.push({ name, reason: err ?? 'setBackend returned false' });
    } else if (name === 'wasm') {
      try {
        await import('@tensorflow/tfjs-backend-wasm');
        if (await tf.setBackend('wasm')) {
          await tf.ready();
          useFastWasmKernels(true);
          current = { name, tfBackend: 'wasm', package: `@tensorflow/tfjs-backend-wasm@${packageVersion('@tensorflow/tfjs-backend-wasm')}`, tfjsVersion: tf.version_core, skipped };
          return current;
        }
        skipped.push({ name, reason: 'setBackend returned false' });
      } catch (e) {
        skipped.push({ name, reason: (e as Error).message });
      }
    } else {
      await tf.setBackend('cpu');
      await tf.ready();
      current = { name, tfBackend: 'cpu', package: `@tensorflow/tfjs-backend-cpu@${packageVersion('@tensorflow/tfjs-backend-cpu')}`, tfjsVersion: tf.version_core, skipped };
      return current;
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** One line for logs and reports: `wasm (@tensorflow/tfjs-backend-wasm@4.22.0, tfjs-core 4.22.0)`. */
export function describeBackend(b: BackendInfo): string {
  return `${b.name} (${b.package}, tfjs-core ${b.tfjsVersion})`;
}
