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
          shareIdentityOnWasm();
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

/**
 * tfjs saves every tensor a gradient needs by cloning it (`Engine.clone` runs the Identity kernel), and the wasm
 * Identity kernel copies the buffer, where the cpu backend only shares it. A training step at the default study's size
 * runs 160–280 such clones (tf.profile), about as many as all the forward kernels together. tfjs never writes into a
 * kernel's input, and the wasm backend already reference-counts shared buffers (its Reshape shares), so Identity can
 * share too: the same values, without the copy. Measured, attention d 64 L 11 B 32, one training step: 70 → 53 ms
 * (interleaved A/B on a shared 2-core machine). tests/models/wasm-identity.test.ts checks bit-identical gradients.
 * `share = false` puts the copying kernel back (for that test).
 */
export function shareIdentityOnWasm(share = true): void {
  const config = tf.getKernel('Identity', 'wasm');
  if (!config) return;
  if (config.kernelFunc !== shareIdentity) copyIdentity = config.kernelFunc;
  const kernelFunc = share ? shareIdentity : copyIdentity!;
  if (config.kernelFunc === kernelFunc) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ ...config, kernelFunc });
}

/** The backend's own (copying) Identity, kept for strings and for the test's A/B. */
let copyIdentity: tf.KernelFunc | null = null;

const shareIdentity: tf.KernelFunc = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return copyIdentity!(args); // strings live outside the heap; keep the original path
  (args.backend as unknown as { incRef(id: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** One line for logs and reports: `wasm (@tensorflow/tfjs-backend-wasm@4.22.0, tfjs-core 4.22.0)`. */
export function describeBackend(b: BackendInfo): string {
  return `${b.name} (${b.package}, tfjs-core ${b.tfjsVersion})`;
}
